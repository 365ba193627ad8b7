"""The greedy starting plan: feasible, never worse than doing nothing, using later periods
when a per-period move limit stops it in the first, and requesting substitutes within budget."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import load_document, rows_and_bounds_hold
from test_brute_force import random_document

from layerdef.core.evaluate import evaluate
from layerdef.model.formulation import formulate, posture_solution
from layerdef.solve import solve
from layerdef.solve.heuristic import (
    _relocate,
    _request,
    greedy_plan,
    greedy_posture,
    improve_plan,
    search_plan,
)

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


@pytest.mark.parametrize("seed", range(1, 60, 3))
def test_the_greedy_plan_is_a_start_the_model_accepts(seed, tmp_path):
    """As column values (rotation ends included), the greedy plan meets every row, bound and
    integrality of the model whenever it meets every requirement and limit."""
    inst = load_document(random_document(seed, tmp_path), tmp_path)
    where, rotations = greedy_plan(inst)
    if not evaluate(inst, posture(inst, where, rotations)).feasible:
        return
    form = formulate(inst, "coverage")
    assert rows_and_bounds_hold(form, posture_solution(form, where, rotations))


SWAP = {
    "layerdef": 1, "name": "swap", "horizon": {"labels": ["1"]},
    "layers": {"lower": {"weight": 1.0}, "upper": {"weight": 1.0}}, "depth_weights": [1.0],
    "sites": [{"id": "a", "lat": 36.0, "lon": 127.0, "weight": 10},
              {"id": "b", "lat": 37.0, "lon": 127.0, "weight": 1}],
    "positions": [{"id": "pa", "at": "a"}, {"id": "pb", "at": "b"}],
    "units": [{"id": "two-tier", "system": "PAC-3", "owner": "US", "home": "pb"},
              {"id": "one-tier", "system": "KM-SAM", "owner": "US", "home": "pa"}],
    "systems": {"PAC-3": {"covers": {"lower": 10, "upper": 10}}, "KM-SAM": {"covers": {"lower": 10}}},
    "limits": {"moves_total": 2},
}


def test_two_units_at_full_positions_swap(tmp_path):
    """Worked by hand: both positions hold one unit, so no single move is possible; swapping
    puts the two-tier unit at the heavy site: 10 x 2 + 1 = 21 against 10 + 1 x 2 = 12."""
    inst = load_document(SWAP, tmp_path)
    where, rotations = greedy_plan(inst)
    plan = evaluate(inst, posture(inst, where, rotations))
    assert plan.total == pytest.approx(21.0) and plan.moves_total == 2
    assert evaluate(inst, inst.current_posture()).total == pytest.approx(12.0)


LATER = {
    "layerdef": 1, "name": "later", "horizon": {"labels": ["1", "2", "3"]},
    "layers": {"lower": {"weight": 1.0}}, "depth_weights": [1.0],
    "sites": [{"id": "a", "lat": 36.0, "lon": 127.0, "weight": 10},
              {"id": "b", "lat": 37.0, "lon": 127.0, "weight": 4},
              {"id": "c", "lat": 38.0, "lon": 127.0, "weight": 1}],
    "positions": [{"id": "pa", "at": "a", "capacity": 2}, {"id": "pb", "at": "b"}, {"id": "pc", "at": "c"}],
    "units": [{"id": "u", "system": "PAC-3", "owner": "US", "home": "pc"},
              {"id": "v", "system": "PAC-3", "owner": "US", "home": "pa", "fixed": True, "away": [["2", "3"]]}],
    "systems": {"PAC-3": {"covers": {"lower": 10}}},
    "limits": {"moves_total": 1},
}


def test_trading_a_relocation_for_a_later_one(tmp_path):
    """By hand: v covers a (10) in period 1 only. The greedy's first period takes u to a at
    once (-1 then +9 +9 = 17, better than b's 3 x 3 = 9) and has no move left; moving u to a
    in period 2 instead gains 18: coverage 11 + 10 + 10 = 31, the optimum."""
    inst = load_document(LATER, tmp_path)
    assert evaluate(inst, posture(inst, greedy_posture(inst))).total == pytest.approx(30.0)
    where, rotations = greedy_plan(inst)
    assert [inst.position_ids[p] for p in where[0]] == ["pc", "pa", "pa"]
    assert evaluate(inst, posture(inst, where, rotations)).total == pytest.approx(31.0)
    assert solve(inst).objective["coverage"] == pytest.approx(31.0)


DEARER = {
    "layerdef": 1, "name": "dearer", "horizon": {"labels": ["1"]},
    "layers": {"lower": {"weight": 5.0}, "air": {"weight": 3.0}}, "depth_weights": [1.0],
    "sites": [{"id": "s", "lat": 36.0, "lon": 127.0}, {"id": "far", "lat": 39.0, "lon": 127.0}],
    "positions": [{"id": "ps", "at": "s", "capacity": 2}, {"id": "pfar", "at": "far"}],
    "units": [{"id": "u", "system": "PAC-3", "owner": "US", "home": "pfar", "fixed": True}],
    "systems": {"PAC-3": {"covers": {"lower": 10}}, "CAP": {"covers": {"air": 10}}},
    "substitutes": [{"id": "cap", "system": "CAP", "owner": "US", "earliest": "1", "cost": 1.0},
                    {"id": "pac", "system": "PAC-3", "owner": "US", "earliest": "1", "cost": 2.0}],
    "limits": {"substitute_budget": 2},
}


def test_trading_a_rotation_for_a_dearer_one_that_adds_more(tmp_path):
    """By hand: at s the fighters add 3 for 1 (3 per cost), the Patriot 5 for 2 (2.5 per
    cost). By cost-effectiveness the fighters come first and the Patriot no longer fits the
    budget of 2; trading them for the Patriot gives 5, the optimum."""
    inst = load_document(DEARER, tmp_path)
    _, state = _relocate(inst, 1.0)
    assert [inst.offer_ids[f] for f, _, _ in _request(state, 1.0)] == ["cap"]
    where, rotations = greedy_plan(inst)
    assert [inst.offer_ids[f] for f, _, _ in rotations] == ["pac"]
    assert evaluate(inst, posture(inst, where, rotations)).total == pytest.approx(5.0 + 5.0)
    assert solve(inst).objective["coverage"] == pytest.approx(10.0)


@pytest.mark.parametrize("seed", range(1, 60, 4))
def test_the_local_search_never_loses_coverage(seed, tmp_path):
    inst = load_document(random_document(seed, tmp_path), tmp_path)
    where, state = _relocate(inst, 5.0)
    rotations = _request(state, 1.0)
    before = evaluate(inst, posture(inst, where, rotations))
    after = evaluate(inst, posture(inst, *improve_plan(inst, where, rotations, state, 5.0)))
    assert after.total >= before.total - 1e-9
    assert not after.violations, after.violations


@pytest.mark.parametrize("seed", range(6))
def test_searching_a_plan_made_without_search_is_the_searched_greedy_plan(seed, tmp_path):
    """`search_plan` (the fallback when the root step could not run) starts from the greedy plan
    made without search and ends where `greedy_plan` with its search does, without making the
    greedy plan again."""
    inst = load_document(random_document(seed, tmp_path), tmp_path)
    searched = evaluate(inst, posture(inst, *greedy_plan(inst, 30.0)))
    resumed = evaluate(inst, posture(inst, *search_plan(inst, *greedy_plan(inst, 30.0, search=False), 30.0)))
    assert resumed.feasible == searched.feasible
    assert resumed.total == pytest.approx(searched.total, abs=1e-9)


def test_a_start_with_no_time_left_is_the_greedy_plan_unsearched(monkeypatch):
    """When the root step fails with the time limit spent (the build and the LP took it), the
    local search is not run past the limit: the greedy plan comes back as it is."""
    import importlib
    import time

    from conftest import INSTANCES

    from layerdef.io.reader import load
    from layerdef.solve.backend import HighsBackend, SolverOptions
    from layerdef.solve.deterministic import starting_plan

    deterministic = importlib.import_module("layerdef.solve.deterministic")
    searched = []
    monkeypatch.setattr(deterministic, "search_plan", lambda *args, **kwargs: searched.append(1) or args[1:3])
    inst = load(INSTANCES / "korea-2025.yaml")
    form = formulate(inst)
    backend = HighsBackend(form, SolverOptions(time_limit=5.0))
    monkeypatch.setattr(backend, "sharpen", lambda *args, **kwargs: None)  # the root LP not solved
    current = evaluate(inst, inst.current_posture())
    greedy = posture_solution(form, *greedy_plan(inst, 1.0, search=False))
    spent = starting_plan(inst, form, 5.0, current, backend, started=time.perf_counter() - 5.0)
    assert not searched and np.array_equal(spent, greedy)
    starting_plan(inst, form, 5.0, current, backend, started=time.perf_counter())
    assert searched == [1]


@pytest.mark.parametrize("seed", range(12))
def test_with_kill_probabilities_the_search_values_plans_by_them(seed, tmp_path):
    """The greedy search scores a kill-probability instance by the probability of defeat (it
    scored by depth weights, and Korea's start at a 20 s limit was 3.5% short of the plan found
    at 60 s): the value it keeps for its plan is the evaluator's, and its plan is no worse than
    the current posture."""
    from test_kill_probability import kill_document

    from layerdef.solve.heuristic import _place, _state_of

    inst = load_document(kill_document(seed, tmp_path), tmp_path)
    assert inst.kill_probability
    where, rotations = greedy_plan(inst, 30.0)
    state = _state_of(inst, where)
    _place(state, rotations, 1)
    plan = evaluate(inst, posture(inst, where, rotations))
    assert state.total() == pytest.approx(plan.total, abs=1e-9)
    current = evaluate(inst, inst.current_posture())
    if current.feasible:
        assert plan.total >= current.total - 1e-9
