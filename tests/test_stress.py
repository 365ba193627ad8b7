"""Further withdrawals (`layerdef stress`): criticality and the robust plan against an
enumeration over plans, withdrawal sets and reactions (tests/brute_force.py, which shares no
code with the model or the search), hand-worked textbook cases, and the options' checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import yaml
from brute_force import brute_force, brute_force_hedged, reaction_value
from click.testing import CliRunner
from conftest import INSTANCES
from test_brute_force import load_document, random_document

from layerdef.cli import main
from layerdef.errors import InfeasibleError
from layerdef.io.reader import load
from layerdef.solve import solve
from layerdef.studies.stress import (
    ABOVE_TARGET,
    eligible_units,
    react,
    stress,
    withdrawal_sets,
    withdrawal_window,
    withdrawn_world,
)

TEXTBOOK = INSTANCES / "textbook"


def withdrawal_scenarios(document: dict, units: list[str], lose: int, first: int,
                         leave_out: frozenset = frozenset()) -> dict:
    """The document with one scenario per set of at most `lose` of `units` (none included;
    not the sets of ids in `leave_out`), each set away from period `first` to the end on top
    of its own absences: written here from DESIGN.md, not by the study's code."""
    import itertools

    labels = document["horizon"]["labels"]
    by_id = {unit["id"]: unit for unit in document["units"]}
    scenarios = []
    for size in range(lose + 1):
        for chosen in itertools.combinations(sorted(units), size):
            if chosen in leave_out:
                continue
            away = {}
            for name in chosen:
                own = [t for span in by_id[name].get("away", [])
                       for t in range(labels.index(span[0]), labels.index(span[1]) + 1)]
                periods = sorted(set(own) | set(range(first, len(labels))))
                away[name] = [[labels[t], labels[t]] for t in periods]
            scenarios.append({"id": "+".join(chosen) or "none", "probability": 0.0, "away": away})
    for scenario in scenarios:
        scenario["probability"] = 1.0 / len(scenarios)
    return {**document, "scenarios": scenarios}


def tiny(seed: int, tmp_path):
    document = random_document(seed, tmp_path)
    document["objective"] = "coverage"
    document.pop("target", None)
    document.pop("target_scope", None)
    return document, load_document(document, tmp_path)


@pytest.mark.parametrize("seed", range(16))
def test_criticality_and_the_robust_plan_equal_the_enumeration(seed, tmp_path):
    """Every criticality row's reaction, and the robust plan's worst coverage, against the
    enumeration: K = 1 or 2, notice 0 or 1 (withdrawals from the second period)."""
    check_against_the_enumeration(seed, tmp_path)


@pytest.mark.parametrize("seed", [1, 3, 6])
def test_with_workers_the_oracle_beside_the_master_agrees_with_the_enumeration(seed, tmp_path, caplog):
    """With two workers each round's oracle begins on the master's plan beside its proof
    (`_OracleAhead`); the answers are the enumeration's all the same."""
    with caplog.at_level("INFO", logger="layerdef"):
        check_against_the_enumeration(seed, tmp_path, workers=2)
    assert "beside the master's proof" in caplog.text


def check_against_the_enumeration(seed: int, tmp_path, workers: int = 1) -> None:
    document, inst = tiny(seed, tmp_path)
    eligible = eligible_units(inst, None)
    if not eligible:
        pytest.skip("no movable unit to withdraw")
    lose, notice = min(1 + seed % 2, len(eligible)), (seed // 2) % 2
    window = withdrawal_window(inst, None, None, notice)
    # a set no plan meets the requirements of is left out of the robust plan, and said
    unmeetable = {units for units in withdrawal_sets(inst, eligible, lose)
                  if brute_force(withdrawn_world(inst, units, window)) is None}
    names = frozenset(tuple(sorted(inst.unit_ids[u] for u in units)) for units in unmeetable)
    hedged = load_document(withdrawal_scenarios(document, [inst.unit_ids[u] for u in eligible], lose, 1, names),
                           tmp_path)
    robust = (None if brute_force(inst) is None
              else brute_force_hedged(dataclasses.replace(hedged, scenario_notice=notice), "worst"))
    try:
        result = stress(inst, lose, window, eligible, tmp_path / "out", {}, workers=workers)
    except InfeasibleError:  # no trunk leaves every meetable set a reaction: the enumeration agrees
        assert robust is None
        return
    assert robust is not None
    assert set(result.robust.left_out) == unmeetable
    for row in result.criticality.itertuples():
        units = tuple(inst.unit_ids.index(name) for name in row.withdrawn.split(";"))
        world = withdrawn_world(inst, units, window)
        expected = reaction_value(world, result.plan.posture, window.announced)
        if expected is None:
            assert row.status == "infeasible"
        else:
            assert row.coverage == pytest.approx(expected, abs=1e-6), row.withdrawn
    assert result.robust.worst == pytest.approx(robust[0], abs=1e-6)
    assert result.robust.bound >= result.robust.worst - 1e-6
    # the robust plan holds up at least as well as the plain plan whatever is withdrawn
    plain_worst = min([result.plan.objective["coverage"], *result.criticality["coverage"].dropna()])
    assert result.robust.worst >= plain_worst - 1e-6


@pytest.mark.parametrize("seed", [1, 4, 11])
def test_the_worst_coverage_never_rises_with_k_and_lose_0_is_solve(seed, tmp_path):
    _, inst = tiny(seed, tmp_path)
    eligible = eligible_units(inst, None)
    window = withdrawal_window(inst, None, None, 0)
    plain = solve(inst, objective="coverage")
    nothing = stress(inst, 0, window, eligible, tmp_path / "k0", {})
    assert nothing.criticality.empty
    assert nothing.robust.worst == pytest.approx(plain.objective["coverage"], abs=1e-6)
    worst = [nothing.robust.worst]
    for lose in range(1, min(2, len(eligible)) + 1):
        worst.append(stress(inst, lose, window, eligible, tmp_path / f"k{lose}", {}).robust.worst)
    assert all(later <= earlier + 1e-6 for earlier, later in zip(worst, worst[1:]))


def test_a_rerun_skips_the_solved_sets(tmp_path, caplog):
    inst = load(TEXTBOOK / "stress-reaction-halves-loss.yaml")
    window = withdrawal_window(inst, None, None, 0)
    first = stress(inst, 1, window, eligible_units(inst, None), tmp_path, {})
    with caplog.at_level("INFO", logger="layerdef"):
        again = stress(inst, 1, window, eligible_units(inst, None), tmp_path, {})
    assert "criticality: 2 sets, 2 already solved, 0 to run" in caplog.text
    assert again.criticality.equals(first.criticality)


def test_a_reaction_by_moves_halves_the_loss(tmp_path):
    """instances/textbook/README.md: losing u1 from period 2 costs 8 unreacted (the current
    posture's loss); u2 moving to pa takes it to 4."""
    inst = load(TEXTBOOK / "stress-reaction-halves-loss.yaml")
    result = stress(inst, 1, withdrawal_window(inst, None, None, 0), eligible_units(inst, None),
                    tmp_path, {})
    table = result.criticality.set_index("withdrawn")
    assert result.plan.objective["coverage"] == pytest.approx(18.0)
    assert table.loc["u1", ["coverage", "loss", "current_loss"]].tolist() == pytest.approx([14.0, 4.0, 8.0])
    assert table.loc["u2", ["coverage", "loss", "current_loss"]].tolist() == pytest.approx([14.0, 4.0, 4.0])
    assert result.criticality["loss"].is_monotonic_decreasing  # worst first
    assert result.robust.worst == pytest.approx(14.0)


def test_a_reaction_asked_for_a_target_stops_there_and_one_above_its_best_is_solved_whole():
    """Losing u1 (textbook README): 10 unreacted, 14 reacting. Asked for 10, the plan met it
    before HiGHS ran; asked for more than 14, the reaction is the proven best."""
    inst = load(TEXTBOOK / "stress-reaction-halves-loss.yaml")
    window = withdrawal_window(inst, None, None, 0)
    plan = solve(inst, objective="coverage").posture
    u1 = (inst.unit_ids.index("u1"),)
    reached = react(inst, u1, plan, window, {}, target=10.0)
    assert reached["status"] == ABOVE_TARGET and reached["coverage"] >= 10.0
    whole = react(inst, u1, plan, window, {}, target=14.5)
    assert whole["status"] == "optimal" and whole["coverage"] == pytest.approx(14.0)


def test_the_backend_stops_a_stage_at_the_first_plan_reaching_stop_at():
    """The MIP callback's decision, at a plan below and at one reaching the target."""
    from types import SimpleNamespace

    from layerdef.model.formulation import formulate
    from layerdef.solve.backend import HighsBackend, SolverOptions, lexicographic_stages

    form = formulate(load(TEXTBOOK / "stress-reaction-halves-loss.yaml"), "coverage")
    backend = HighsBackend(form, SolverOptions())
    backend.set_objective(*lexicographic_stages(form)[0])
    backend.stop_at = 16.0

    def event(coverage: float):
        value = -coverage * getattr(form, "coverage_weight", 1.0) if backend.objective == "coverage_cost_moves" \
            else coverage
        return SimpleNamespace(data_out=SimpleNamespace(mip_primal_bound=value * backend.scale,
                                                        mip_dual_bound=value * backend.scale),
                               data_in=SimpleNamespace(user_interrupt=False))

    below, reaching = event(15.0), event(16.0)
    backend._on_progress(below)
    assert not below.data_in.user_interrupt and not backend.reached
    backend._on_progress(reaching)
    assert reaching.data_in.user_interrupt and backend.reached


def test_a_move_limit_forbids_the_reaction(tmp_path):
    """The same case with moves_total 0: no reaction, the loss stays 8."""
    inst = load(TEXTBOOK / "stress-reaction-halves-loss.yaml")
    inst = dataclasses.replace(inst, moves_total=0)
    result = stress(inst, 1, withdrawal_window(inst, None, None, 0), eligible_units(inst, None),
                    tmp_path, {})
    table = result.criticality.set_index("withdrawn")
    assert table.loc["u1", ["coverage", "loss"]].tolist() == pytest.approx([10.0, 8.0])


@pytest.mark.parametrize("arguments, expected", [
    (["--lose", "1", "--eligible", "nobody"], "--eligible: unit 'nobody' does not exist"),
    (["--lose", "3"], "--lose: 3 is more than the 2 eligible unit(s)"),
    (["--lose", "1", "--from", "9"], "--from: period '9' is not in the horizon"),
    (["--lose", "1", "--for", "5"], "--for: 5 periods from 2 run past the horizon's end"),
])
def test_bad_options_are_located_exit_2(arguments, expected, tmp_path):
    result = CliRunner().invoke(main, ["stress", str(TEXTBOOK / "stress-reaction-halves-loss.yaml"),
                                       *arguments, "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output


def test_the_cli_writes_criticality_and_a_robust_plan_that_show_and_replay_read(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["stress", str(TEXTBOOK / "stress-reaction-halves-loss.yaml"),
                                       "--lose", "1", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "u1: plan 14 (loses 4), current posture 10 (loses 8)" in result.output
    header = (out / "criticality.csv").read_text().splitlines()[0]
    assert header == "withdrawn,coverage,loss,current_coverage,current_loss,status,gap"
    shown = CliRunner().invoke(main, ["show", str(out / "robust.json")])
    assert shown.exit_code == 0, shown.output
    scenarios = yaml.safe_load((out / "robust-scenarios.yaml").read_text())["scenarios"]
    assert scenarios[0]["id"] == "none"
    replayed = CliRunner().invoke(main, ["replay", str(out / "robust-scenarios.yaml"), str(out / "robust.json"),
                                         "--scenario", scenarios[-1]["id"]])
    assert replayed.exit_code == 0, replayed.output


def test_withdrawal_sets_are_every_set_up_to_k_in_id_order():
    inst = load(TEXTBOOK / "stress-reaction-halves-loss.yaml")
    sets = withdrawal_sets(inst, eligible_units(inst, None), 2)
    assert [[inst.unit_ids[u] for u in units] for units in sets] == [["u1"], ["u2"], ["u1", "u2"]]
    assert eligible_units(inst, "US") == [0, 1] and eligible_units(inst, "u2") == [1]
    world = withdrawn_world(inst, (0,), withdrawal_window(inst, "2", 1, 0))
    assert world.present[0].tolist() == [True, False, True]
    assert np.array_equal(world.present[1], inst.present[1])


def test_the_python_api_runs_the_same_study_and_locates_every_problem(tmp_path):
    """`layerdef.stress` is `layerdef stress` from Python: the textbook case's hand-worked
    loss (4, the current posture 8), every problem with the request at once, and never a
    write over a file of the instance."""
    import shutil

    import layerdef

    inst = layerdef.load(TEXTBOOK / "stress-reaction-halves-loss.yaml")
    result = layerdef.stress(inst, lose=1, output=tmp_path / "out")
    table = result.criticality.set_index("withdrawn")
    assert table.loc["u1", ["loss", "current_loss"]].tolist() == pytest.approx([4.0, 8.0])
    assert (tmp_path / "out" / "robust.json").exists()
    with pytest.raises(layerdef.UsageError) as caught:
        layerdef.stress(inst, lose=3, output=tmp_path / "out", first="9")
    assert {problem.file for problem in caught.value.problems} == {"--lose", "--from"}
    table = tmp_path / "criticality.csv"  # the instance's coverage table, named as the study writes
    shutil.copy(TEXTBOOK / "min-cost.coverage.csv", table)
    (tmp_path / "i.yaml").write_text((TEXTBOOK / "stress-reaction-halves-loss.yaml").read_text()
                                     .replace("min-cost.coverage.csv", "criticality.csv"))
    with pytest.raises(layerdef.UsageError, match="refusing to write over a file this command reads"):
        layerdef.stress(layerdef.load(tmp_path / "i.yaml"), lose=1, output=tmp_path)
    assert table.read_text() == (TEXTBOOK / "min-cost.coverage.csv").read_text()


def test_the_summary_says_which_figures_are_estimates(tmp_path):
    """All proven: no caveat; a plain plan or reactions stopped at the time limit: the summary
    says its losses and price of robustness are measured against a plan that may not be the
    optimum (a generated theater at 5 s a solve showed a price of robustness of -21.9)."""
    from layerdef.studies.stress import summary_lines

    inst = load(TEXTBOOK / "stress-reaction-halves-loss.yaml")
    result = stress(inst, 1, withdrawal_window(inst, None, None, 0), eligible_units(inst, None),
                    tmp_path, {})
    assert not any(line.startswith("(") for line in summary_lines(result, inst))
    table = result.criticality.copy()
    table.loc[0, "status"] = "time_limit"
    cut_short = dataclasses.replace(result, plan=dataclasses.replace(result.plan, status="time_limit", gap=0.012),
                                    criticality=table)
    caveats = [line for line in summary_lines(cut_short, inst) if line.startswith("(")]
    assert caveats[0].startswith("(the plain plan stopped at its time limit, gap 1.200%")
    assert caveats[1].startswith(f"(1 of {len(table)} reactions stopped short")


@pytest.mark.parametrize("seed", [46, 59])
def test_a_set_no_plan_can_meet_is_left_out_of_the_robust_plan_and_said(seed, tmp_path):
    """Withdrawing a unit some requirement cannot do without: criticality lists it first as
    infeasible, the robust plan holds against the other sets (the enumeration's over them) and
    the summary names the set and the requirement, exit 0 with every file written."""
    check_against_the_enumeration(seed, tmp_path)
    document, inst = tiny(seed, tmp_path)
    path = tmp_path / "instance.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    result = CliRunner().invoke(main, ["stress", str(path), "--lose", str(1 + seed % 2), "-q",
                                       "-o", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert "left out of the robust plan: withdrawing" in result.output
    assert ": no reaction meets every requirement, current posture" in result.output
    assert "requirement not met: site" in result.output
    table = pd.read_csv(tmp_path / "cli" / "criticality.csv")
    assert table["status"].iloc[0] == "infeasible" and np.isnan(table["coverage"].iloc[0])
    assert all((tmp_path / "cli" / name).exists() for name in ("robust.json", "robust-scenarios.yaml"))


def test_a_set_the_plain_plan_leaves_no_reaction_joins_the_master(tmp_path):
    """Seed 141: withdrawing u0 and u1 leaves the plain plan's trunk no reaction that meets
    the requirements (criticality: infeasible), though another trunk has one: the set joins
    the robust search's master, not the sets left out, and the robust value is the
    enumeration's."""
    check_against_the_enumeration(141, tmp_path)
    _, inst = tiny(141, tmp_path)
    eligible = eligible_units(inst, None)
    result = stress(inst, 2, withdrawal_window(inst, None, None, 0), eligible, tmp_path / "again", {})
    row = result.criticality.set_index("withdrawn").loc["u0;u1"]
    assert row["status"] == "infeasible"
    assert not result.robust.left_out and "u0+u1" in result.robust.master.scenario_ids
