"""The greedy starting plan: feasible, never worse than doing nothing, using later periods
when a per-period move limit stops it in the first, and requesting substitutes within budget."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import load_document
from layerdef.evaluate import evaluate
from layerdef.heuristic import greedy_plan, greedy_posture
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


GAP = {
    "layerdef": 1, "name": "gap", "horizon": {"labels": ["1", "2", "3", "4"]},
    "layers": {"lower": {"weight": 1.0}}, "depth_weights": [1.0],
    "sites": [{"id": "a", "lat": 36.0, "lon": 127.0, "weight": 10}],
    "positions": [{"id": "pa", "at": "a", "capacity": 2}],
    "units": [{"id": "u", "system": "PAC-3", "owner": "US", "home": "pa", "away": [["2", "3"]]}],
    "systems": {"PAC-3": {"covers": {"lower": 10}}},
    "substitutes": [{"id": "sub", "system": "PAC-3", "owner": "US", "earliest": "2",
                     "min_periods": 1, "max_periods": 3, "cost": 1.0}],
}


def posture(instance, where: np.ndarray, rotations=()) -> pd.DataFrame:
    rows = [(instance.periods[t], instance.unit_ids[u], instance.position_ids[where[u, t]])
            for u in range(len(instance.unit_ids)) for t in range(instance.T) if instance.present[u, t]]
    sent = {}
    for offer, periods, positions in rotations:
        sent[offer] = sent.get(offer, 0) + 1
        unit = instance.substitute_unit_ids(offer)[sent[offer] - 1]
        rows += [(instance.periods[t], unit, instance.position_ids[p]) for t, p in zip(periods, positions)]
    return pd.DataFrame(rows, columns=["period", "unit", "position"])


@pytest.mark.parametrize("budget, stay", [(1, [1]), (2, [1, 2]), (5, [1, 2])])
def test_substitutes_fill_the_gap_within_the_budget(budget, stay, tmp_path):
    """By hand: u is away in 2 and 3; each period the substitute covers is worth 10 at a cost
    of 1. A budget of 1 buys period 2 (the first of equals), 2 or more buy both."""
    inst = load_document({**GAP, "limits": {"substitute_budget": budget}}, tmp_path)
    where, rotations = greedy_plan(inst)
    assert rotations == [(0, stay, [0] * len(stay))]
    assert evaluate(inst, posture(inst, where, rotations)).total == pytest.approx(20 + 10 * len(stay))


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
    plan = evaluate(inst, posture(inst, *greedy_plan(inst)))
    assert not plan.violations, plan.violations
    assert plan.total >= current.total - 1e-9
    if current.feasible:
        assert plan.feasible
