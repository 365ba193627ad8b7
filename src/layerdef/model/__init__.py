"""The formulation: blocks of columns and rows over labelled index arrays, and the Pyomo model."""
