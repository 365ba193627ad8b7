"""Shared fixtures: a small valid instance document and helpers to load variations of it."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from layerdef.io.reader import loads
from layerdef.solve.backend import share_of_cores, use_threads

# pytest-xdist's workers solve at once: each HiGHS takes its share of the cores, as a pool's
# workers do (on two cores, back to back: the suite 132 -> 118 s, CPU time 239 -> 214 s)
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    use_threads(share_of_cores(int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))

ROOT = Path(__file__).resolve().parent.parent
INSTANCES = ROOT / "instances"

SMALL = {
    "layerdef": 1,
    "name": "small",
    "horizon": {"start": "2025-01", "periods": 3},
    "layers": {"lower": {"weight": 1.0}, "air": {"weight": 0.5}},
    "depth_weights": [1.0, 0.5],
    "sites": [
        {"id": "a", "lat": 36.0, "lon": 127.0, "weight": 2, "require": {"lower": 1}},
        {"id": "b", "lat": 36.5, "lon": 127.0, "weight": 1},
    ],
    "positions": [
        {"id": "pa", "at": "a", "capacity": 1, "hosts": ["US"]},
        {"id": "pb", "at": "b", "capacity": 2},
    ],
    "units": [
        {"id": "u1", "system": "PAC-3", "owner": "US", "home": "pa"},
        {"id": "u2", "system": "PAC-2", "owner": "ROK", "home": "pb",
         "away": [["2025-02", "2025-02"]]},
    ],
    "substitutes": [
        {"id": "sub", "system": "PAC-3", "owner": "US", "count": 1, "earliest": "2025-02",
         "min_periods": 1, "max_periods": 2, "cost": 1.0},
    ],
    "limits": {"substitute_budget": 5, "moves_per_period": 1, "moves_total": 2},
}


@pytest.fixture
def small_document() -> dict:
    return copy.deepcopy(SMALL)


def load_document(document: dict, directory: Path, name: str = "instance.yaml"):
    """Write a document as YAML in `directory` and load it."""
    path = directory / name
    text = yaml.safe_dump(document, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return loads(text.encode(), path)


def rows_and_bounds_hold(form, values: np.ndarray) -> bool:
    """`values` meets every row, bound and integrality of the formulation."""
    lower, upper, integer = form.bounds()
    row_lower, row_upper = form.row_bounds()
    rows = np.concatenate([row for row, _, _ in form.entries])
    activity = np.bincount(rows, weights=np.concatenate(
        [value * values[col] for _, col, value in form.entries]), minlength=form.n_rows)
    return bool(np.all(values >= lower - 1e-9) and np.all(values <= upper + 1e-9)
                and np.all(np.abs(values[integer] - np.round(values[integer])) <= 1e-9)
                and np.all(activity >= row_lower - 1e-7) and np.all(activity <= row_upper + 1e-7))
