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
    "min-cost-no-gap-total": (21.0, 0.0, 1),
    "min-cost-no-gap-site": (16.0, 1.5, 0),
    "move-limit": (10.0, 0.0, 1),
    "hosts": (24.0, 0.0, 2),
    "threats-must-turn": (30.0, 0.0, 0),
    "downtime-not-worth-it": (30.0, 0.0, 0),
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


def test_a_site_left_bare_is_explained_per_site(tmp_path):
    """Site scope with no budget: site b, layer lower, period 1 falls short by its whole
    reference coverage (3), and the budget is what binds."""
    text = (TEXTBOOK / "min-cost-no-gap-site.yaml").read_text()
    text = text.replace("coverage: min-cost-no-gap.coverage.csv",
                        f"coverage: {TEXTBOOK / 'min-cost-no-gap.coverage.csv'}")
    path = tmp_path / "no-budget.yaml"
    path.write_text(text + "limits: {substitute_budget: 0}\n")
    result = CliRunner().invoke(main, ["solve", "-q", str(path)])
    assert result.exit_code == 3
    assert "coverage target not met: site b, layer lower, periods 1: short by up to 3 " in result.output
    assert "raising substitute_budget" in result.output
    assert "Traceback" not in result.output


def test_the_battery_turns_once_and_not_at_all_when_turns_are_not_allowed(tmp_path):
    import yaml
    inst = load(TEXTBOOK / "threats-must-turn.yaml")
    plan = solve(inst)
    assert plan.objective["turns"] == 1
    assert plan.assignments["heading"].tolist() == [0.0, 0.0, 0.0]
    assert plan.tables["turns"][["period", "from_heading", "to_heading"]].values.tolist() == [["1", 90.0, 0.0]]
    document = yaml.safe_load((TEXTBOOK / "threats-must-turn.yaml").read_text())
    document["limits"] = {"turns_total": 0}
    (tmp_path / "no-turns.yaml").write_text(yaml.safe_dump(document))
    still = solve(load(tmp_path / "no-turns.yaml"))
    assert still.objective["coverage"] == 0.0 and still.objective["turns"] == 0


def test_no_heading_sees_both_launch_areas(capsys):
    inst = load(TEXTBOOK / "threats-two-areas.yaml")
    with pytest.raises(InfeasibleError) as raised:
        solve(inst)
    text = "\n".join(raised.value.explanation)
    assert "site base, layer lower, launch area" in text and "periods 1..2" in text
    assert "against all of north, east-sea at once" in text
    result = CliRunner().invoke(main, ["solve", "-q", str(TEXTBOOK / "threats-two-areas.yaml")])
    assert result.exit_code == 3


def test_without_downtime_the_move_pays(tmp_path):
    import yaml
    document = yaml.safe_load((TEXTBOOK / "downtime-not-worth-it.yaml").read_text())
    document["systems"]["PAC-3"]["relocation_days"] = 0
    (tmp_path / "instant.yaml").write_text(yaml.safe_dump(document))
    plan = solve(load(tmp_path / "instant.yaml"))
    assert plan.objective["coverage"] == pytest.approx(36.0) and plan.objective["moves"] == 1
