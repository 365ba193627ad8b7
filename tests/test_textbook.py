"""Textbook instances against the optima worked by hand in instances/textbook/README.md."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import INSTANCES

from layerdef.cli import main
from layerdef.core.evaluate import evaluate
from layerdef.errors import InfeasibleError
from layerdef.io.reader import load
from layerdef.solve import solve

TEXTBOOK = INSTANCES / "textbook"

# name: (coverage, substitute cost, moves)
OPTIMA = {
    "move-beats-staying": (20.0, 0.0, 1),
    "depth": (15.0, 0.0, 1),
    "substitute-worth": (21.0, 2.0, 0),
    "min-cost-needs-substitute": (24.0, 1.5, 0),
    "min-cost-no-substitute": (21.0, 0.0, 0),
    "move-limit": (10.0, 0.0, 1),
    "hosts": (24.0, 0.0, 2),
}


@pytest.mark.parametrize("name", sorted(OPTIMA))
def test_hand_worked_optimum(name):
    inst = load(TEXTBOOK / f"{name}.yaml")
    plan = solve(inst)
    coverage, cost, moves = OPTIMA[name]
    assert plan.status == "optimal"
    assert plan.objective["coverage"] == pytest.approx(coverage)
    assert plan.objective["substitute_cost"] == pytest.approx(cost)
    assert plan.objective["moves"] == moves
    check = evaluate(inst, plan.posture)
    assert check.feasible and check.total == pytest.approx(coverage)
    assert check.substitute_cost == pytest.approx(cost) and check.moves_total == moves


def test_move_beats_staying_moves_to_the_hq_at_once():
    plan = solve(load(TEXTBOOK / "move-beats-staying.yaml"))
    assert plan.moves.to_dict("records") == [{"period": "1", "unit": "u1", "from": "p-depot", "to": "p-hq"}]


def test_substitute_stays_as_long_as_it_may():
    plan = solve(load(TEXTBOOK / "substitute-worth.yaml"))
    assert plan.substitutes[["offer", "first", "last", "periods"]].to_dict("records") == [
        {"offer": "sub", "first": "2", "last": "3", "periods": 2}]


def test_hosts_restriction_is_kept():
    plan = solve(load(TEXTBOOK / "hosts.yaml"))
    at_pa = set(plan.assignments.loc[plan.assignments["position"] == "pa", "unit"])
    assert at_pa == {"r1"}


def test_infeasible_names_site_layer_and_periods():
    inst = load(TEXTBOOK / "infeasible.yaml")
    with pytest.raises(InfeasibleError) as caught:
        solve(inst)
    text = "\n".join(caught.value.explanation)
    assert "site hq, layer lower, periods 2..3" in text
    assert "substitute_budget" in text and "absence of u1" in text


def test_infeasible_exit_code_3_through_the_cli():
    result = CliRunner().invoke(main, ["solve", "-q", str(TEXTBOOK / "infeasible.yaml")])
    assert result.exit_code == 3
    assert "site hq, layer lower, periods 2..3" in result.output
    assert "Traceback" not in result.output


def test_min_cost_target_out_of_reach_is_explained(tmp_path):
    text = (TEXTBOOK / "min-cost-needs-substitute.yaml").read_text()
    text = text.replace("coverage: min-cost.coverage.csv", f"coverage: {TEXTBOOK / 'min-cost.coverage.csv'}")
    path = tmp_path / "no-budget.yaml"
    path.write_text(text + "limits: {substitute_budget: 1.0}\n")
    with pytest.raises(InfeasibleError) as caught:
        solve(load(path))
    text = "\n".join(caught.value.explanation)
    assert "coverage target not met: period 2, short by 3" in text
    assert "raising substitute_budget" in text
