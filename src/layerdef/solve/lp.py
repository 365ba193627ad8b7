"""A highspy LP from row-wise arrays, rows and objectives scaled by exact powers of two where their coefficients are large; shared by the back-end and the Lagrangian bound."""

from __future__ import annotations

import math

import numpy as np

#: objectives with a larger coefficient go to HiGHS scaled down by a power of two (exact),
#: as HiGHS itself advises: the hedged Korea replay's weighted stage (3e7) 75 -> 57 s over
#: three seeds
LARGEST_COST = 1e6


def highs_lp(lower: np.ndarray, upper: np.ndarray, row_lower: np.ndarray, row_upper: np.ndarray,
             csr: tuple[np.ndarray, np.ndarray, np.ndarray]):
    """A highspy LP (zero costs) from column and row bounds and row-wise matrix arrays. A row
    whose largest coefficient exceeds `LARGEST_COST` (a min-cost target row at site and layer
    weights of 1e9 carries 1e18, which HiGHS refuses) goes scaled by an exact power of two."""
    import highspy

    start, index, value = csr
    n_cols, n_rows = len(lower), len(row_lower)
    if len(value) and np.abs(value).max() > LARGEST_COST:
        row_of = np.repeat(np.arange(n_rows), np.diff(start))
        largest = np.zeros(n_rows)
        np.maximum.at(largest, row_of, np.abs(value))
        scale = np.array([_power_of_two_scale(float(v), LARGEST_COST) for v in largest])
        value, row_lower, row_upper = value * scale[row_of], row_lower * scale, row_upper * scale
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n_cols, n_rows
    lp.col_cost_ = np.zeros(n_cols)
    lp.col_lower_, lp.col_upper_ = lower, upper
    lp.row_lower_, lp.row_upper_ = row_lower, row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = start.astype(np.int32)
    lp.a_matrix_.index_ = index.astype(np.int32)
    lp.a_matrix_.value_ = value
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = n_cols, n_rows
    return lp


def _power_of_two_scale(largest: float, ceiling: float) -> float:
    """An exact power of two that brings `largest` to at most `ceiling` (1 when it already is):
    scaling by it changes no solution and loses no bit."""
    return 2.0 ** -math.ceil(math.log2(largest / ceiling)) if largest > ceiling else 1.0
