"""The greedy starting plan: feasible, never worse than doing nothing, and using later periods
when a per-period move limit stops it in the first."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import load_document
from layerdef.evaluate import evaluate
from layerdef.heuristic import greedy_posture
from test_brute_force import random_document

STAGGERED = {
    "layerdef": 1, "name": "staggered", "horizon": {"labels": ["1", "2", "3"]},
    "layers": {"lower": {"weight": 1.0}}, "depth_weights": [1.0],
    "sites": [{"id": "a", "lat": 36.0, "lon": 127.0, "weight": 10},
              {"id": "b", "lat": 37.0, "lon": 127.0, "weight": 5},
              {"id": "c", "lat": 38.0, "lon": 127.0, "weight": 1}],
    "positions": [{"id": "pa", "at": "a"}, {"id": "pb", "at": "b"}, {"id": "pc", "at": "c", "capacity": 2}],
    "units": [{"id": "u1", "system": "PAC-3", "owner": "US", "home": "pc"},
              {"id": "u2", "system": "PAC-3", "owner": "US", "home": "pc"}],
    "systems": {"PAC-3": {"covers": {"lower": 10}}},
    "limits": {"moves_per_period": 1, "moves_total": 2},
}


def posture(instance, where: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame([(instance.periods[t], instance.unit_ids[u], instance.position_ids[where[u, t]])
                         for u in range(len(instance.unit_ids)) for t in range(instance.T)
                         if instance.present[u, t]], columns=["period", "unit", "position"])


def test_a_per_period_limit_moves_the_second_unit_a_period_later(tmp_path):
    """By hand: one move a period. Period 1: u1 to a (+10 a period, 30). Period 2: u2 to b
    (+5 - 1 for c, two periods: 8). Coverage 11 + 15 + 15 = 41, which is optimal."""
    inst = load_document(STAGGERED, tmp_path)
    where = greedy_posture(inst)
    assert [[inst.position_ids[p] for p in row] for row in where] == [["pa", "pa", "pa"],
                                                                       ["pc", "pb", "pb"]]
    assert evaluate(inst, posture(inst, where)).total == pytest.approx(41.0)


@pytest.mark.parametrize("seed", range(0, 60, 3))
def test_the_greedy_plan_is_feasible_and_never_worse_than_doing_nothing(seed, tmp_path):
    inst = load_document(random_document(seed, tmp_path), tmp_path)
    current = evaluate(inst, inst.current_posture())
    plan = evaluate(inst, posture(inst, greedy_posture(inst)))
    assert not plan.violations, plan.violations
    assert plan.total >= current.total - 1e-9
    if current.feasible:
        assert plan.feasible
