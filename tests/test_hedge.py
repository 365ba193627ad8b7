"""Hedged plans (library groundwork): equal to the deterministic solve with one scenario,
non-anticipative on the output, and the hand-worked price of a lead time."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import layerdef
from conftest import load_document
from layerdef.hedge import solve_hedged
from layerdef.replay import replay
from test_brute_force import random_document

LEAD = {
    "layerdef": 1, "name": "lead", "horizon": {"labels": ["1", "2", "3", "4"]},
    "layers": {"lower": {"weight": 1.0}}, "depth_weights": [1.0],
    "sites": [{"id": "a", "lat": 36.0, "lon": 127.0, "weight": 10}],
    "positions": [{"id": "pa", "at": "a", "capacity": 2}],
    "units": [{"id": "u", "system": "PAC-3", "owner": "US", "home": "pa"}],
    "systems": {"PAC-3": {"covers": {"lower": 10}}},
    "substitutes": [{"id": "sub", "system": "PAC-3", "owner": "US", "count": 1, "earliest": "2",
                     "min_periods": 1, "max_periods": 3, "cost": 1.0, "lead": 2}],
    "scenarios": [{"id": "early", "probability": 0.5, "away": {"u": [["2", "2"]]}},
                  {"id": "late", "probability": 0.5, "away": {"u": [["3", "3"]]}}],
}


def test_a_lead_time_makes_the_substitute_come_before_it_is_needed(tmp_path):
    """Worked by hand: a start in period 2 or 3 is decided two periods ahead, when the scenarios
    still look alike, and the one battery may do one rotation. Covering both scenarios it
    must arrive in 2 everywhere; it leaves after 2 where u is back in 3 (early) and stays
    through 3 where u leaves in 3 (late). Expected coverage 40, expected cost 0.5 x 1 + 0.5 x 2
    = 1.5; with perfect information each scenario needs one period: 1.0."""
    inst = load_document(LEAD, tmp_path)
    plan = solve_hedged(inst)
    assert plan.expected["coverage"] == pytest.approx(40.0)
    assert plan.expected["substitute_cost"] == pytest.approx(1.5)
    early, late = plan.evaluations
    assert early.substitutes[["first", "last"]].values.tolist() == [["2", "2"]]
    assert late.substitutes[["first", "last"]].values.tolist() == [["2", "3"]]
    perfect = [layerdef.solve(inst.in_scenario(s)).objective["substitute_cost"] for s in inst.scenario_ids]
    assert perfect == [1.0, 1.0]


def test_one_scenario_equals_the_deterministic_solve(tmp_path):
    for seed in range(0, 40, 4):
        document = random_document(seed, tmp_path)
        document["objective"] = "coverage"
        document["scenarios"] = [{"id": "only", "probability": 1.0}]
        inst = load_document(document, tmp_path)
        try:
            deterministic = layerdef.solve(inst.in_scenario("only"))
        except layerdef.InfeasibleError:
            with pytest.raises(layerdef.InfeasibleError):
                solve_hedged(inst)
            continue
        hedged = solve_hedged(inst)
        for name in ("coverage", "substitute_cost", "moves"):
            assert hedged.expected[name] == pytest.approx(deterministic.objective[name], abs=1e-6), (seed, name)


def scenario_document(seed: int, tmp_path) -> dict:
    document = random_document(seed, tmp_path)
    document["objective"] = "coverage"
    labels = document["horizon"]["labels"]
    unit = document["units"][0]["id"]
    document["units"][0]["fixed"] = False
    document["scenarios"] = [
        {"id": "stays", "probability": 0.5, "away": {unit: []}},
        {"id": "leaves", "probability": 0.3, "away": {unit: [[labels[1], labels[2]]]}},
        {"id": "briefly", "probability": 0.2, "away": {unit: [[labels[1], labels[1]]]}},
    ]
    return document


@pytest.mark.parametrize("seed", [0, 2, 5, 9, 13, 21])
def test_nonanticipativity_on_the_output_and_hedging_beats_replayed_plans(seed, tmp_path):
    inst = load_document(scenario_document(seed, tmp_path), tmp_path)
    try:
        plan = solve_hedged(inst)
    except layerdef.InfeasibleError:
        return
    present = inst.scenario_present
    for t, period in enumerate(inst.periods):
        for a in range(len(plan.postures)):
            for b in range(a + 1, len(plan.postures)):
                if np.array_equal(present[a, :, :t + 1], present[b, :, :t + 1]):
                    left = plan.postures[a][plan.postures[a]["period"] == period].reset_index(drop=True)
                    right = plan.postures[b][plan.postures[b]["period"] == period].reset_index(drop=True)
                    assert left.equals(right), (period, inst.scenario_ids[a], inst.scenario_ids[b])
    for name in inst.scenario_ids:  # each scenario's own plan, replayed everywhere
        try:
            own = layerdef.solve(inst.in_scenario(name))
        except layerdef.InfeasibleError:
            continue
        replayed = [replay(inst, own.posture, other)[1] for other in inst.scenario_ids]
        if all(r.feasible for r in replayed):
            expected = sum(p * r.total for p, r in zip(inst.scenario_probability, replayed))
            assert plan.expected["coverage"] >= expected - 1e-6
