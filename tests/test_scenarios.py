"""Scenarios of return dates: validation, and `replay` of a plan where units return at other dates.
(The hedged plans are tested in test_hedge.py.)"""

from __future__ import annotations

import copy

import pytest
import yaml
from click.testing import CliRunner
from conftest import load_document

import layerdef
from layerdef.cli import main
from layerdef.core.replay import replay

BASE = {
    "layerdef": 1, "name": "returns", "horizon": {"labels": ["1", "2", "3", "4"]},
    "layers": {"lower": {"weight": 1.0}}, "depth_weights": [1.0],
    "sites": [{"id": "a", "lat": 36.0, "lon": 127.0, "weight": 5},
              {"id": "b", "lat": 36.5, "lon": 127.5, "weight": 3}],
    "positions": [{"id": "pa", "at": "a", "capacity": 1}, {"id": "pb", "at": "b", "capacity": 1}],
    "units": [{"id": "u1", "system": "PAC-3", "owner": "US", "home": "pa"},
              {"id": "u2", "system": "PAC-3", "owner": "US", "home": "pb", "away": [["2", "3"]]}],
    "systems": {"PAC-3": {"covers": {"lower": 10}}},
}
SCENARIOS = [{"id": "early", "probability": 0.4, "away": {"u2": [["2", "2"]]}},
             {"id": "late", "probability": 0.6, "away": {"u2": [["2", "4"]]}}]


def test_scenarios_load(tmp_path):
    inst = load_document({**BASE, "scenarios": SCENARIOS}, tmp_path)
    assert inst.scenario_ids == ["early", "late"]
    assert inst.scenario_probability.tolist() == [0.4, 0.6]
    assert inst.scenario_present[0, 1].tolist() == [True, False, True, True]
    assert inst.scenario_present[1, 1].tolist() == [True, False, False, False]
    assert inst.scenario_present[1, 0].tolist() == [True] * 4  # u1 keeps its (empty) away


@pytest.mark.parametrize("mutate, expected", [
    (lambda s: s[0].update(probability=0.5), "probabilities sum to 1.1"),
    (lambda s: s[0].update(probability=1.5), "scenarios[0] (id=early).probability: 1.5"),
    (lambda s: s[1].update(away={"ghost": [["2", "2"]]}), "scenarios[1] (id=late).away.ghost: unit 'ghost'"),
    (lambda s: s[1].update(away={"u2": [["3", "2"]]}), "scenarios[1] (id=late).away.u2.0: range [3, 2] is reversed"),
    (lambda s: s[1].update(away={"u2": [["2", "9"]]}), "period '9' is not in the horizon"),
    (lambda s: s[1].update(id="early"), "duplicate id 'early'"),
])
def test_scenario_problems_are_located(tmp_path, mutate, expected):
    scenarios = copy.deepcopy(SCENARIOS)
    mutate(scenarios)
    with pytest.raises(layerdef.InstanceError) as caught:
        load_document({**BASE, "scenarios": scenarios}, tmp_path)
    assert any(expected in str(p) for p in caught.value.problems), caught.value.problems


def test_a_duplicate_scenario_is_the_only_problem_when_the_probabilities_add_up(tmp_path):
    """The rows' probabilities are what the user summed, the duplicate's included."""
    scenarios = copy.deepcopy(SCENARIOS)
    scenarios[1]["id"] = "early"
    with pytest.raises(layerdef.InstanceError) as caught:
        load_document({**BASE, "scenarios": scenarios}, tmp_path)
    assert len(caught.value.problems) == 1 and "duplicate id" in str(caught.value.problems[0])


def test_replay_by_hand(tmp_path):
    plan = layerdef.solve(load_document(BASE, tmp_path))
    assert plan.summary["plan"].tolist() == [8.0, 5.0, 5.0, 8.0]
    inst = load_document({**BASE, "scenarios": SCENARIOS}, tmp_path, "with-scenarios.yaml")
    _, early = replay(inst, plan.posture, "early")  # u2 back in 3: the plan did not expect it; home
    assert early.value_by_period.tolist() == [8.0, 5.0, 8.0, 8.0] and not early.violations
    _, late = replay(inst, plan.posture, "late")  # u2 still away in 4: absent
    assert late.value_by_period.tolist() == [8.0, 5.0, 5.0, 5.0] and not late.violations


def test_replay_and_solve_through_the_cli(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(BASE))
    plan = tmp_path / "plan.json"
    assert CliRunner().invoke(main, ["solve", "-q", str(base), "-o", str(plan)]).exit_code == 0
    hedged = tmp_path / "hedged.yaml"
    hedged.write_text(yaml.safe_dump({**BASE, "scenarios": SCENARIOS}))
    result = CliRunner().invoke(main, ["replay", str(hedged), str(plan), "--scenario", "early"])
    assert result.exit_code == 0 and "coverage 29," in result.output
    result = CliRunner().invoke(main, ["replay", str(hedged), str(plan), "--scenario", "nope"])
    assert result.exit_code == 2 and "scenario 'nope' does not exist (scenarios: early, late)" in result.output
    result = CliRunner().invoke(main, ["solve", "-q", str(hedged), "--objective", "min-cost"])
    assert result.exit_code == 2 and "coverage objective only" in result.output
