"""Hedged plans: equal to the deterministic solve with one scenario, non-anticipative on the
output, hand-worked prices of a lead time and of the risk measure, values of information, the
command line, and the explanations when no hedged plan exists."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from brute_force import brute_force_hedged
from conftest import INSTANCES, load_document, rows_and_bounds_hold
from test_brute_force import random_document

import layerdef
from layerdef.core.replay import replay
from layerdef.solve.hedged import solve_hedged

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


def random_scenario_document(seed: int, tmp_path) -> dict:
    """A tiny random instance with 2-3 scenarios: one or two movable units away over random
    ranges (possibly from the first period, possibly never), probabilities on a grid of tenths
    or thirds, and a lead of 0-2 periods on the offer."""
    rng = np.random.default_rng(5000 + seed)
    document = random_document(seed, tmp_path)
    document["objective"] = "coverage"
    labels = document["horizon"]["labels"]
    movable = [unit for unit in document["units"] if not unit["fixed"]] or document["units"][:1]
    movable[0]["fixed"] = False
    chosen = movable[:int(rng.integers(1, min(2, len(movable)) + 1))]
    count = int(rng.integers(2, 4))
    probabilities = ([1 / 3] * 3 if count == 3 and rng.random() < 0.3
                     else list(rng.multinomial(10 - count, [1 / count] * count) / 10 + 0.1))
    scenarios = []
    for n in range(count):
        away = {}
        for unit in chosen:
            first = int(rng.integers(0, 3))
            last = int(rng.integers(first, 3))
            away[unit["id"]] = [] if rng.random() < 0.3 else [[labels[first], labels[last]]]
        scenarios.append({"id": f"s{n}", "probability": float(probabilities[n]), "away": away})
    document["scenarios"] = scenarios
    document["substitutes"][0]["lead"] = int(rng.integers(0, 3))
    return document


def check_against_hedged_enumeration(inst, risk: str) -> None:
    """The hedged optimum (risk measure of coverage, expected cost, expected moves) is the
    enumeration's, or both find no plan; every scenario's posture passes the evaluator."""
    expected = brute_force_hedged(inst, risk)
    if expected is None:
        with pytest.raises(layerdef.InfeasibleError):
            solve_hedged(inst, risk)
        return
    plan = solve_hedged(inst, risk)
    got = (plan.risk_value, plan.expected["substitute_cost"], plan.expected["moves"])
    assert got == pytest.approx(expected, abs=1e-6)
    assert all(evaluation.feasible for evaluation in plan.evaluations)


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("risk", ["expected", "worst"])
def test_hedged_optimum_equals_enumeration(seed, risk, tmp_path):
    """The hedged lexicographic optimum (expected or worst coverage, then expected cost and
    moves) equals an enumeration of per-unit plans over the tree of histories
    (`brute_force_hedged`, written without model.py or hedge.py). Over 200 such instances it
    tells apart plans that ignore a lead time (17 differ) or see one period ahead (113), and
    it found `--risk worst` maximizing worst plus expected coverage (73 differed in cost or
    moves); every scenario's posture meets its requirements and limits."""
    check_against_hedged_enumeration(
        load_document(random_scenario_document(seed, tmp_path), tmp_path), risk)


@pytest.mark.parametrize("seed", [*range(8), 16, 20, 22])  # 16, 20, 22 failed the check
def test_a_scenario_of_probability_zero_binds_but_weighs_nothing(seed, tmp_path):
    """A scenario of probability 0 must still be met (requirements, limits, decisions alike
    where histories agree) but its coverage, cost and moves weigh nothing: the optimum equals
    the enumeration's, and its posture, not optimized, still passes the evaluator (it had
    failed the moves check: nothing made its model count its moves exactly)."""
    document = random_scenario_document(seed, tmp_path)
    document["scenarios"][0]["probability"] += document["scenarios"][-1]["probability"]
    document["scenarios"][-1]["probability"] = 0.0
    check_against_hedged_enumeration(load_document(document, tmp_path), "expected")


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


def test_waiting_for_the_information_is_worth_it(tmp_path):
    """Worked by hand: without a lead time the request for period 2 or 3 is made when it is
    known whether u is there; the hedged plan pays for one period in each scenario, as with
    perfect information (1.0), where the two-period lead forced 1.5."""
    document = copy.deepcopy(LEAD)
    document["substitutes"][0]["lead"] = 0
    plan = layerdef.solve(load_document(document, tmp_path))
    assert plan.objective["coverage"] == pytest.approx(40.0)
    assert plan.objective["substitute_cost"] == pytest.approx(1.0)
    assert plan.values["evpi"] == pytest.approx(0.0) and plan.values["evpi_cost"] == pytest.approx(0.0)
    assert plan.substitutes[["scenario", "first", "last"]].values.tolist() == [["early", "2", "2"],
                                                                                 ["late", "3", "3"]]


def test_hedged_solve_through_the_cli(tmp_path):
    """The lead instance by hand: the plan for `early` (most likely of equals) replayed in
    `late` covers 30 (u leaves in 3 and nothing replaces it), so VSS = 40 - (40 + 30) / 2 = 5;
    perfect foresight covers 40 at cost 1 in both: EVPI 0 in coverage, 0.5 in cost."""
    import pandas as pd
    import yaml
    from click.testing import CliRunner

    from layerdef.cli import main

    path = tmp_path / "lead.yaml"
    path.write_text(yaml.safe_dump(LEAD))
    runner = CliRunner()
    result = runner.invoke(main, ["solve", "-q", str(path), "-o", str(tmp_path / "plan.json"),
                                  "--csv", str(tmp_path / "tables")])
    assert result.exit_code == 0, result.output
    plan = layerdef.Solution.read(tmp_path / "plan.json")
    assert plan.hedged and plan.risk == "expected"
    assert plan.objective == pytest.approx({"coverage": 40.0, "substitute_cost": 1.5, "moves": 0.0})
    values = plan.values
    assert values["plan_for"] == "early" and values["deterministic_replayed"] == pytest.approx(35.0)
    assert values["vss"] == pytest.approx(5.0) and values["evpi"] == pytest.approx(0.0)
    assert values["evpi_cost"] == pytest.approx(0.5)
    assert [row["deterministic"] for row in values["by_scenario"]] == pytest.approx([40.0, 30.0])
    substitutes = pd.read_csv(tmp_path / "tables" / "substitutes.csv", dtype=str)
    assert substitutes[["scenario", "first", "last", "request_by"]].values.tolist() == [
        ["early", "2", "2", "1"], ["late", "2", "3", "1"]]
    shown = runner.invoke(main, ["show", str(tmp_path / "plan.json")]).output
    assert shown.index("what to do now") < shown.index("by scenario")
    assert "1: substitute sub#1 (sub): request it to arrive in 2, staying through 2 (early); 3 (late)" in shown
    assert "value of the stochastic solution: +5 coverage" in shown
    replayed = runner.invoke(main, ["replay", str(path), str(tmp_path / "plan.json"), "--scenario", "late"])
    assert replayed.exit_code == 0 and "coverage 40, substitute cost 2," in replayed.output
    compared = runner.invoke(main, ["compare", str(path), str(tmp_path / "plan.json"), "--format", "json"])
    expected = {row["posture"]: row for row in json.loads(compared.output)["expected"]}
    assert expected["plan"]["expected_coverage"] == pytest.approx(40.0)
    assert expected["current"]["expected_coverage"] == pytest.approx(30.0)
    assert runner.invoke(main, ["report", str(tmp_path / "plan.json"), "-o",
                                str(tmp_path / "r.html")]).exit_code == 0
    assert 'id="scenarios"' in (tmp_path / "r.html").read_text()
    single = runner.invoke(main, ["solve", "-q", str(path), "--scenario", "late"])
    assert single.exit_code == 0 and "substitute cost 1, moves 0" in single.output


CHOICE = {
    "layerdef": 1, "name": "choice", "horizon": {"labels": ["1", "2", "3"]},
    "layers": {"lower": {"weight": 1.0}}, "depth_weights": [1.0],
    "sites": [{"id": "a", "lat": 36.0, "lon": 127.0, "weight": 1},
              {"id": "b", "lat": 38.0, "lon": 127.0, "weight": 3}],
    "positions": [{"id": "pa", "at": "a", "capacity": 2, "hosts": ["US", "JP"]},
                  {"id": "pb", "at": "b", "capacity": 2, "hosts": ["US", "KR"]}],
    "units": [{"id": "ua", "system": "PAC-3", "owner": "US", "home": "pa", "fixed": True},
              {"id": "ub", "system": "PAC-3", "owner": "US", "home": "pb", "fixed": True}],
    "systems": {"PAC-3": {"covers": {"lower": 10}}},
    "substitutes": [{"id": "japan", "system": "PAC-3", "owner": "JP", "cost": 1.0, "lead": 2},
                    {"id": "korea", "system": "PAC-3", "owner": "KR", "cost": 1.0, "lead": 2}],
    "limits": {"substitute_budget": 1},
    "scenarios": [{"id": "a-leaves", "probability": 0.8, "away": {"ua": [["3", "3"]]}},
                  {"id": "b-leaves", "probability": 0.2, "away": {"ub": [["3", "3"]]}}],
}


def test_worst_case_risk_trades_expectation_for_the_worst_scenario(tmp_path):
    """Worked by hand: the budget buys one substitute-period, chosen two periods ahead, before
    it is known whether ua (site a, weight 1) or ub (site b, weight 3) leaves in period 3; the
    Japanese one can only stand at a, the Korean one only at b. Full coverage is 4 a period,
    12 in all. Japanese: 12 and 9, expected 11.4, worst 9; Korean: 11 and 12, expected 11.2,
    worst 11. The expectation takes the Japanese offer, the worst case the Korean one."""
    inst = load_document(CHOICE, tmp_path)
    expected = solve_hedged(inst, risk="expected")
    assert expected.expected["coverage"] == pytest.approx(11.4)
    assert [e.substitutes["offer"].tolist() for e in expected.evaluations] == [["japan"], ["japan"]]
    worst = solve_hedged(inst, risk="worst")
    assert [e.total for e in worst.evaluations] == pytest.approx([11.0, 12.0])
    assert [e.substitutes["offer"].tolist() for e in worst.evaluations] == [["korea"], ["korea"]]
    assert worst.risk_value == pytest.approx(11.0) and expected.risk_value == pytest.approx(11.4)


@pytest.mark.parametrize("seed", [1, 4, 6, 8])
@pytest.mark.parametrize("objective, module, weight", [
    ("cost_then_moves", "layerdef.model.scenarios", "cost_then_moves_weight"),  # and then coverage alone
    ("coverage_cost_moves", "layerdef.model.formulation", "coverage_first_weight")])
def test_weighted_stage_equals_the_stages(seed, objective, module, weight, tmp_path, monkeypatch):
    """A weighted stage (expected cost + moves; expected coverage, cost and moves) is exact:
    the same figures as the stages one after the other (forced by pretending no decimal grid
    exists)."""
    import importlib

    from layerdef.model import scenarios as hedge

    inst = load_document(scenario_document(seed, tmp_path), tmp_path)
    assert objective in hedge.formulate_hedged(inst).form.objectives
    one = solve_hedged(inst)
    monkeypatch.setattr(importlib.import_module(module), weight, lambda *args: None)
    assert objective not in hedge.formulate_hedged(inst).form.objectives
    two = solve_hedged(inst)
    assert one.expected == pytest.approx(two.expected, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 2, 5, 9])
@pytest.mark.parametrize("risk", ["expected", "worst"])
def test_tying_what_follows_the_decisions_keeps_the_optimum(seed, risk, tmp_path, monkeypatch):
    """Coverage levels, unit counts and moves tied wherever histories agree (`FOLLOWING`) give
    the same expected (or worst) coverage, expected cost and moves as the model without those
    rows (under `worst`, expected coverage is no objective and may differ)."""
    from layerdef.model import scenarios as hedge

    inst = load_document(scenario_document(seed, tmp_path), tmp_path)
    tied_rows = hedge.formulate_hedged(inst, risk).form.rows["nonanticipativity"].size
    try:
        tied = solve_hedged(inst, risk)
    except layerdef.InfeasibleError:
        return
    monkeypatch.setattr(hedge, "FOLLOWING", ())
    assert hedge.formulate_hedged(inst, risk).form.rows["nonanticipativity"].size < tied_rows
    free = solve_hedged(inst, risk)
    for name in ("substitute_cost", "moves"):
        assert tied.expected[name] == pytest.approx(free.expected[name], abs=1e-6)
    assert tied.risk_value == pytest.approx(free.risk_value, abs=1e-6)


def test_no_hedged_plan_is_explained(tmp_path):
    """Each scenario alone can be covered with one one-period rotation, but it must be requested
    two periods ahead, before it is known which period it is needed in: no hedged plan. And a
    scenario with no plan even alone is explained in its own terms."""
    document = copy.deepcopy(LEAD)
    document["sites"][0]["require"] = {"lower": 1}
    document["substitutes"][0]["max_periods"] = 1
    inst = load_document(document, tmp_path)
    for scenario in inst.scenario_ids:
        layerdef.solve(inst.in_scenario(scenario))
    with pytest.raises(layerdef.InfeasibleError) as error:
        layerdef.solve(inst)
    assert "no single plan does in all of them" in " ".join(error.value.explanation)
    document["substitutes"][0]["earliest"] = "3"
    with pytest.raises(layerdef.InfeasibleError) as error:
        layerdef.solve(load_document(document, tmp_path))
    assert error.value.explanation[1].startswith(
        "in scenario early: requirement not met: site a, layer lower, periods 2:")


def test_a_budget_frontier_of_hedged_plans(tmp_path):
    """By hand on the lead instance: nothing buys nothing (30); one period of budget covers the
    early scenario only, as the request is made before it is known (35); two cover both (40)."""
    from layerdef.studies.frontier import frontier

    table = frontier(load_document(LEAD, tmp_path), [0, 1, 2])
    assert table["coverage"].tolist() == pytest.approx([30.0, 35.0, 40.0])
    assert table["substitutes_used"].tolist() == pytest.approx([0.0, 1.0, 1.0])


@pytest.mark.parametrize("cores", [1, 2])
def test_values_of_information_alongside_or_afterwards(cores, tmp_path, monkeypatch):
    """The scenarios alone are solved in a second process while the hedged plan is solved when
    there are cores for it, here afterwards on one core: the same values either way (the lead
    instance by hand: VSS 5 in coverage, EVPI 0 in coverage and 0.5 in cost)."""
    import os

    from layerdef.solve import hedged as hedge

    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    inst = load_document(LEAD, tmp_path)
    alone = hedge._Alone(inst, None, 0.0, None)
    assert (alone.worker is not None) == (cores > 1)
    alone.cancel()
    values = layerdef.solve(inst).values
    assert values["evpi"] == pytest.approx(0.0) and values["evpi_cost"] == pytest.approx(0.5)
    assert values["vss"] == pytest.approx(5.0)
    assert values["perfect_cost"] == pytest.approx(1.0)


def test_a_solve_alone_stopped_short_leaves_evpi_at_least_zero(tmp_path):
    """A scenario's solve alone that stopped at its time limit below the hedged plan's posture
    there (each branch is a plan of its scenario alone) does not make EVPI negative: the
    branch counts instead, and the row says so."""
    from layerdef.solve.hedged import solve_alone, values_of_information

    inst = load_document(LEAD, tmp_path)
    plan = solve_hedged(inst)
    perfect = solve_alone(inst, None, 0.0, None, report=False)
    short = copy.deepcopy(perfect[0])
    short.objective["coverage"] -= 10.0
    short.objective["substitute_cost"] = 0.0
    values = values_of_information(inst, plan, [short, perfect[1]], "early")
    assert values["evpi"] == pytest.approx(0.0) and values["evpi"] >= -1e-9
    first = values["by_scenario"][0]
    assert first["perfect_from"] == "hedged" and first["perfect"] == pytest.approx(plan.evaluations[0].total)
    assert first["perfect_cost"] == pytest.approx(plan.evaluations[0].substitute_cost)
    assert values["by_scenario"][1]["perfect_from"] == "alone"
    assert values_of_information(inst, plan, perfect, "early")["evpi"] == pytest.approx(0.0)


@pytest.mark.parametrize("status, allowed, bound, gap", [
    ("time_limit", 0.0, None, None), ("time_limit", 0.0, 41.0, 0.025),
    ("optimal", 0.05, 41.0, 0.025), ("optimal", 0.0, 40.0, 0.0)])
def test_a_hedged_plan_stopped_before_a_bound_claims_no_gap(status, allowed, bound, gap,
                                                            tmp_path, monkeypatch):
    """A hedged solve that ran out of time before HiGHS had a bound has no bound and no gap
    (it claimed gap 0: the bound fell back to the plan's own value); with a bound, the gap is
    measured from it, also where HiGHS stopped within a gap asked for (`optimal` then proves
    nothing); the lead instance: expected coverage 40."""
    import dataclasses

    from layerdef.solve import hedged as hedge

    real = hedge.solve_hedged
    monkeypatch.setattr(hedge, "solve_hedged", lambda *args, **kwargs: dataclasses.replace(
        real(*args, **kwargs), status=status, bound=bound))
    plan = hedge.solve_scenarios(load_document(LEAD, tmp_path), gap=allowed, values=False)
    assert plan.status == status and plan.objective["coverage"] == pytest.approx(40.0)
    assert plan.bound == (None if bound is None else pytest.approx(bound))
    assert plan.gap == (None if gap is None else pytest.approx(gap))


def test_a_script_without_a_main_guard_runs_once(tmp_path):
    """The scenarios alone are solved in a fresh interpreter that imports only layerdef:
    multiprocessing's spawn had run such a script again in its child (which printed a
    traceback, then the values were solved afterwards)."""
    import os
    import subprocess
    import sys

    import yaml

    (tmp_path / "lead.yaml").write_text(yaml.safe_dump(LEAD))
    (tmp_path / "plan.py").write_text(
        "import layerdef\n"
        "print('top-level ran')\n"
        "plan = layerdef.solve(layerdef.load('lead.yaml'), log=True)\n"
        "print('vss', plan.values['vss'])\n")
    run = subprocess.run([sys.executable, "plan.py"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("top-level ran") == 1 and "vss 5.0" in run.stdout
    assert "Traceback" not in run.stderr
    if (os.cpu_count() or 1) > 1:
        assert "solved alone alongside" in run.stderr


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGTERM"])
def test_the_second_process_stops_when_the_first_is_killed(signal_name):
    """Killed before it can cancel its second process (SIGKILL, or SIGTERM, which runs no
    `finally`), the first process leaves no orphan solving on: the second notices within a
    second or two and exits."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = ("import time, layerdef; from layerdef.solve.hedged import _Alone\n"
              f"inst = layerdef.load({str(INSTANCES / 'korea-2025-replay.yaml')!r})\n"
              "alone = _Alone(inst, None, 0.0, None)\n"
              "print(alone.worker.process.pid if alone.worker else -1, flush=True)\n"
              "time.sleep(60)\n")
    if not os.path.isdir("/proc"):
        pytest.skip("needs /proc to see whether a process has exited")
    first = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    second = int(first.stdout.readline())
    if second < 0:
        first.kill()
        first.wait()
        pytest.skip("one core: no second process")
    time.sleep(1.0)  # solving by now
    os.kill(first.pid, getattr(signal, signal_name))
    first.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(second, 0)
            with open(f"/proc/{second}/stat") as stat:
                gone = stat.read().split()[2] == "Z"  # exited, not yet reaped
        except (ProcessLookupError, FileNotFoundError):
            gone = True
        if gone:
            return
        time.sleep(0.2)
    os.kill(second, signal.SIGKILL)
    pytest.fail("the second process outlived the first by 10 s")


@pytest.mark.parametrize("seed", [15, 21, 51])  # moves and requests in different periods
def test_what_to_do_now_is_in_period_order(seed, tmp_path):
    """`show` lists the common moves and substitute requests period by period (requests had
    come after every move, a request due in the first period after a move in the third)."""
    from layerdef.report.text import hedged_summary

    inst = load_document(random_scenario_document(seed, tmp_path), tmp_path)
    plan = layerdef.solve(inst, values=False)
    now = hedged_summary(plan).split("by scenario")[0]
    actions = [line.strip() for line in now.splitlines() if line.startswith("  ")]
    assert any(" move " in line for line in actions) and any("substitute" in line for line in actions)
    periods = [inst.periods.index(line.split(":")[0]) for line in actions]
    assert periods == sorted(periods)


def test_an_infeasibility_survives_the_trip_between_processes():
    import pickle

    from layerdef.errors import InfeasibleError

    error = pickle.loads(pickle.dumps(InfeasibleError(["requirement a: short in 1-2", "lift the budget"])))
    assert error.explanation == ["requirement a: short in 1-2", "lift the budget"]


def test_the_scenarios_alone_are_solved_here_when_the_second_process_dies(tmp_path, monkeypatch):
    """A second process killed before it answers (out of memory, say) must not hang the solve."""
    import os

    from layerdef.solve import hedged as hedge

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    inst = load_document(LEAD, tmp_path)
    alone = hedge._Alone(inst, None, 0.0, None)
    alone.worker.process.kill()
    perfect = alone.result(0.0)
    assert [p.objective["substitute_cost"] for p in perfect] == [1.0, 1.0]
    assert alone.worker is None


@pytest.mark.parametrize("seed", [0, 2, 5, 9, 13, 21])
@pytest.mark.parametrize("risk", ["expected", "worst"])
def test_hedged_start_is_a_plan_of_the_hedged_model(seed, risk, tmp_path):
    """The start handed to HiGHS (each scenario's greedy plan played in every scenario, or the
    first period's greedy moves) meets every row of the hedged model, non-anticipativity
    included, and scores at least what the first period's moves alone do."""
    from layerdef.core.evaluate import evaluate
    from layerdef.model.scenarios import formulate_hedged
    from layerdef.solve.hedged import hedged_start

    inst = load_document(scenario_document(seed, tmp_path), tmp_path)
    hedged = formulate_hedged(inst, risk)
    start = hedged_start(inst, hedged, risk, 2.0)
    if start is None:
        assert not all(evaluate(w, w.current_posture()).feasible for w in hedged.scenarios)
        return
    assert rows_and_bounds_hold(hedged.form, start)
    first_period_only = hedged_start(inst, hedged, risk, 0.0)
    assert rows_and_bounds_hold(hedged.form, first_period_only)
    assert hedged.form.objectives["coverage"] @ start >= hedged.form.objectives["coverage"] @ first_period_only - 1e-9


def test_korea_replay_start_plays_a_scenario_plan_without_extra_moves():
    """In the 2025 replay, a plan made for one return date, played where the batteries come
    back earlier, puts them where the plan first wants them (returns are not moves): every
    scenario's plan is then playable everywhere, and the start beats the first period's moves."""
    from layerdef.model.scenarios import formulate_hedged
    from layerdef.solve.hedged import hedged_start

    inst = layerdef.load(INSTANCES / "korea-2025-replay.yaml")
    hedged = formulate_hedged(inst)
    start = hedged_start(inst, hedged, "expected", 5.0)
    first_period_only = hedged_start(inst, hedged, "expected", 0.0)
    assert rows_and_bounds_hold(hedged.form, start)
    objective = hedged.form.objectives["coverage"]
    assert objective @ start > objective @ first_period_only + 20


@pytest.mark.parametrize("seed", [1, 4])
def test_hedged_bound_is_reported_in_expected_coverage(seed, tmp_path):
    """The one weighted stage's bound is reported as expected coverage (what a time-limited
    plan's gap is computed from): at the optimum, the plan's own expected coverage, within the
    grid step, never the weighted objective's number."""
    from layerdef.model.scenarios import formulate_hedged

    inst = load_document(scenario_document(seed, tmp_path), tmp_path)
    form = formulate_hedged(inst).form
    assert "coverage_cost_moves" in form.objectives
    plan = solve_hedged(inst)
    assert plan.risk_value - 1e-6 <= plan.bound <= plan.risk_value + 1.0 / form.coverage_weight * (form.most_tie_break + 1)
