"""Shared fixtures: a small valid instance document and helpers to load variations of it."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from layerdef.instance import loads

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
