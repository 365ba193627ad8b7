"""Files in and out: the instance reader, CSV tables, the catalog, generated theaters, the solution document."""
