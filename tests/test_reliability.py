"""What a fuzz campaign of hostile instances and files broke (issue 21), each kept from coming
back: nothing to decide is a plan, extreme magnitudes stay exact, names cannot collide, YAML and
CSV are read with bounds, validation is linear, and no command writes over what the user wrote."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from click.testing import CliRunner

from brute_force import brute_force
from conftest import SMALL, load_document
from layerdef.cli import main
from layerdef.solve import solve
from test_brute_force import random_document


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


# ----------------------------------------------------------------------------- nothing to decide


def everyone_away(document: dict) -> dict:
    document = copy.deepcopy(document)
    periods = ["2025-01", "2025-03"]
    for unit in document["units"]:
        unit["away"] = [periods]
    document["substitutes"] = []
    return document


def test_every_unit_away_is_a_plan_not_exit_4(tmp_path):
    document = everyone_away(SMALL)
    for site in document["sites"]:
        site.pop("require", None)
    inst = load_document(document, tmp_path)
    plan = solve(inst)
    assert plan.status == "optimal"
    assert plan.objective == {"coverage": 0.0, "substitute_cost": 0.0, "moves": 0}
    assert plan.current["coverage"] == 0.0 and plan.reference["coverage"] > 0
    result = run("solve", tmp_path / "instance.yaml", "-q")
    assert result.exit_code == 0, result.output
    assert "of the reference" in result.output


def test_every_unit_away_with_a_requirement_is_infeasible_with_its_reason(tmp_path):
    load_document(everyone_away(SMALL), tmp_path)
    result = run("solve", tmp_path / "instance.yaml", "-q")
    assert result.exit_code == 3
    assert "site a, layer lower" in result.output and "absence of u1" in result.output


@pytest.mark.parametrize("other", [{}, {"u1": [["2025-01", "2025-03"]], "u2": [["2025-01", "2025-03"]]}])
def test_a_scenario_with_every_unit_away_is_hedged(tmp_path, other):
    document = copy.deepcopy(SMALL)
    for site in document["sites"]:
        site.pop("require", None)
    document["scenarios"] = [
        {"id": "gone", "probability": 0.5,
         "away": {"u1": [["2025-01", "2025-03"]], "u2": [["2025-01", "2025-03"]]}},
        {"id": "other", "probability": 0.5, "away": other}]
    document["substitutes"] = []
    plan = solve(load_document(document, tmp_path), values=False)
    assert plan.status == "optimal"
    gone = plan.in_scenario("gone")
    assert gone.objective == {"coverage": 0.0, "substitute_cost": 0.0, "moves": 0}
    assert len(gone.assignments) == 0
    assert (plan.in_scenario("other").objective["coverage"] > 0) == (not other)


# ----------------------------------------------------------------------------- magnitudes


@pytest.mark.parametrize("weights, costs", [(1e9, 1.0), (1.0, 1e6), (1.0, 3e4), (1e9, 2e8)])
def test_extreme_weights_and_costs_keep_the_enumerated_optimum(tmp_path, weights, costs):
    """Site and layer weights times 1e9 (coefficients of 1e18) and costs and budget times 1e9
    give the plan of the unscaled instance: PlanCheckError or extra moves before."""
    checked = 0
    for seed in (18, 35, 39, 49, 3, 7):
        document = random_document(seed, tmp_path)
        expected = brute_force(load_document(copy.deepcopy(document), tmp_path))
        if expected is None:
            continue
        for site in document["sites"]:  # weights 0..5 and 0.5..1: within the documented 1e9
            site["weight"] *= weights / 8
        for layer in document["layers"].values():
            layer["weight"] *= weights
        scale = costs  # costs up to 2 and budgets up to 4: within the documented 1e9
        for offer in document["substitutes"]:
            offer["cost"] *= scale
        if "substitute_budget" in document["limits"]:
            document["limits"]["substitute_budget"] *= scale
        inst = load_document(document, tmp_path)
        plan = solve(inst)
        unscaled = solve(load_document(random_document(seed, tmp_path), tmp_path))
        assert plan.objective["moves"] == unscaled.objective["moves"] == expected[2]
        assert plan.objective["substitute_cost"] == pytest.approx(
            unscaled.objective["substitute_cost"] * scale)
        checked += 1
    assert checked >= 4


def test_min_cost_with_weights_of_1e9_is_solved(tmp_path):
    document = copy.deepcopy(SMALL)
    for site in document["sites"]:
        site["weight"] = 1e9
    document["layers"]["lower"]["weight"] = 1e9
    document["objective"] = "min-cost"
    plan = solve(load_document(document, tmp_path))
    assert plan.status == "optimal"
    assert plan.objective["coverage"] >= plan.reference["coverage"] * (1 - 1e-9)
