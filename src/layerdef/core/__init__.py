"""The instance as arrays, geometry, scoring, evaluate and replay: no solver."""
