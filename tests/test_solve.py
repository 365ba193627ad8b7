"""Solving: the Korea plan, the solution contract, the CLI around it, and the Pyomo path."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from brute_force import brute_force
from click.testing import CliRunner
from conftest import INSTANCES, load_document
from test_brute_force import random_document

import layerdef
from layerdef.cli import main
from layerdef.io.solution import TABLE_COLUMNS, TABLE_NAMES, Solution

KOREA = INSTANCES / "korea-2025.yaml"


@pytest.fixture(scope="module")
def korea_run(tmp_path_factory):
    """Solve Korea once through the CLI, keeping the JSON and CSV tables."""
    directory = tmp_path_factory.mktemp("korea")
    result = CliRunner().invoke(main, ["solve", str(KOREA), "-o", str(directory / "plan.json"),
                                       "--csv", str(directory / "tables"), "--quiet"])
    assert result.exit_code == 0, result.output
    return directory


def test_korea_is_proven_optimal_and_meets_the_no_gap_requirement(korea_run):
    plan = Solution.read(korea_run / "plan.json")
    inst = layerdef.load(KOREA)
    assert plan.status == "optimal" and plan.gap == 0.0
    summary = plan.summary
    assert (summary["plan"] >= summary["current"] - 1e-9).all()
    assert (summary["unmet_requirements"] == 0).all()
    coverage = plan.coverage
    for site in ("humphreys", "osan"):
        rows = coverage[(coverage["site"] == site) & (coverage["layer"] == "lower")]
        assert len(rows) == inst.T and (rows["units"] >= 1).all()
    check = layerdef.evaluate(inst, plan.posture)
    assert check.feasible
    assert check.total == pytest.approx(plan.objective["coverage"])
    assert check.substitute_cost == pytest.approx(plan.objective["substitute_cost"])
    assert check.moves_total == plan.objective["moves"]
    assert plan.objective["substitute_cost"] <= inst.substitute_budget
    assert plan.objective["moves"] <= inst.moves_total


def test_solution_json_contract(korea_run):
    document = json.loads((korea_run / "plan.json").read_text())
    for key in ("status", "objective", "bound", "gap", "solver", "wall_s", "instance", "current",
                "reference", "tables"):
        assert key in document
    assert set(document["objective"]) == {"coverage", "substitute_cost", "moves"}
    assert {"name", "version", "options"} <= set(document["solver"])
    inst = layerdef.load(KOREA)
    assert document["instance"] == {"name": "korea-2025", "sha256": inst.sha256,
                                    "path": str(KOREA.resolve())}
    assert document["current"]["coverage"] == pytest.approx(
        layerdef.evaluate(inst, inst.current_posture()).total)
    assert document["reference"]["coverage"] == pytest.approx(
        layerdef.evaluate(inst, inst.reference_posture()).total)
    assert not (korea_run / "tables" / "turns.csv").exists()  # no headings, no turns table
    for name in TABLE_NAMES:
        columns = TABLE_COLUMNS[name]
        table = pd.read_csv(korea_run / "tables" / f"{name}.csv")
        assert list(table.columns) == columns
        assert len(table) == len(document["tables"][name])


@pytest.mark.parametrize("fmt", ["text", "csv", "json", "markdown"])
def test_show_formats(korea_run, fmt):
    result = CliRunner().invoke(main, ["show", str(korea_run / "plan.json"), "--table", "moves",
                                       "--format", fmt])
    assert result.exit_code == 0, result.output
    if fmt == "json":
        assert isinstance(json.loads(result.output), list)
    if fmt == "markdown":
        assert result.output.startswith("| period | unit | from | to |")
    if fmt == "csv":
        assert result.output.startswith("period,unit,from,to")


def test_solve_without_output_prints_the_comparison_on_stdout_only(tmp_path):
    result = CliRunner().invoke(main, ["solve", str(INSTANCES / "textbook" / "depth.yaml")])
    assert result.exit_code == 0
    assert "optimal" in result.stdout and "reference" in result.stdout
    assert "layerdef: stage" in result.stderr and "layerdef: stage" not in result.stdout
    quiet = CliRunner().invoke(main, ["solve", "-q", str(INSTANCES / "textbook" / "depth.yaml")])
    assert quiet.stderr == ""


def test_write_model(tmp_path):
    path = tmp_path / "model.lp"
    result = CliRunner().invoke(main, ["solve", "-q", str(INSTANCES / "textbook" / "depth.yaml"),
                                       "-o", str(tmp_path / "p.json"), "--write-model", str(path)])
    assert result.exit_code == 0 and path.stat().st_size > 0
    bad = CliRunner().invoke(main, ["solve", "-q", str(INSTANCES / "textbook" / "depth.yaml"),
                                    "--write-model", str(tmp_path / "model.txt")])
    assert bad.exit_code == 2


@pytest.mark.parametrize("name", ["depth", "move-beats-staying", "kill-probability-spreads"])
def test_the_written_model_carries_the_first_stage_objective(name, tmp_path):
    """Another solver handed the file finds the plan's own value of the stage that decides it
    (the file had no objective before: every plan was optimal in it, at 0)."""
    import importlib

    import highspy

    from layerdef.model.formulation import formulate, plan_solution

    path = tmp_path / "model.mps"
    inst = layerdef.load(INSTANCES / "textbook" / f"{name}.yaml")
    plan = layerdef.solve(inst, write_model=str(path))
    backend_module = importlib.import_module("layerdef.solve.backend")
    form = formulate(inst)
    backend = backend_module.HighsBackend(form, backend_module.SolverOptions())
    stage, sense = backend_module.lexicographic_stages(form)[0]
    backend.set_objective(stage, sense)
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.readModel(str(path))
    highs.run()
    ours = float(form.objectives[stage] @ plan_solution(form, plan.posture)) * backend.scale
    assert highs.getInfo().objective_function_value == pytest.approx(ours, abs=1e-6)
    assert abs(ours) > 0


def test_evaluate_cli_scores_a_hand_made_posture(tmp_path):
    inst = layerdef.load(INSTANCES / "textbook" / "move-limit.yaml")
    posture = inst.current_posture()
    path = tmp_path / "posture.csv"
    posture.to_csv(path, index=False)
    result = CliRunner().invoke(main, ["evaluate", str(INSTANCES / "textbook" / "move-limit.yaml"), str(path)])
    assert result.exit_code == 0 and "coverage 2," in result.output
    moved = posture.copy()
    moved.loc[:, "position"] = "pa"
    moved.to_csv(path, index=False)
    result = CliRunner().invoke(main, ["evaluate", str(INSTANCES / "textbook" / "move-limit.yaml"), str(path)])
    assert result.exit_code == 0
    assert "coverage 8," in result.output and "2 moves exceed moves_total 1" in result.output


def test_evaluate_cli_locates_bad_rows(tmp_path):
    path = tmp_path / "posture.csv"
    path.write_text("period,unit,position\n1,u1,pa\n7,u1,pa\n1,ghost,pa\n1,u2,nowhere\n")
    result = CliRunner().invoke(main, ["evaluate", str(INSTANCES / "textbook" / "move-limit.yaml"), str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 3
    assert f"{path}:3: posture[1] (id=u1).period: '7'" in lines[0]
    assert "posture[2] (id=ghost).unit" in lines[1] and "posture[3] (id=u2).position" in lines[2]
    path.write_text("when,who\n1,u1\n")
    result = CliRunner().invoke(main, ["evaluate", str(INSTANCES / "textbook" / "move-limit.yaml"), str(path)])
    assert result.exit_code == 2 and "missing column(s) period, unit, position" in result.output


def test_api_as_in_the_design():
    inst = layerdef.load(INSTANCES / "textbook" / "substitute-worth.yaml")
    plan = layerdef.solve(inst, objective="coverage", time_limit=60)
    for table in (plan.assignments, plan.coverage, plan.summary):
        assert isinstance(table, pd.DataFrame) and len(table)
    current = layerdef.evaluate(inst, inst.current_posture())
    assert list(current.coverage.columns) == TABLE_COLUMNS["coverage"]
    assert plan.summary["current"].sum() == pytest.approx(current.total)


@pytest.mark.parametrize("seed", range(0, 60, 6))
def test_pyomo_model_solves_to_the_same_optimum(seed, tmp_path):
    inst = load_document(random_document(seed, tmp_path), tmp_path)
    expected = brute_force(inst, inst.objective)
    if expected is None:
        return
    model = layerdef.build_model(inst)
    plan = layerdef.solve(inst, model=model)
    assert plan.solver["interface"] == "pyomo.appsi"
    assert plan.objective["substitute_cost"] == pytest.approx(expected[1], abs=1e-6)
    assert plan.objective["moves"] == expected[2]
    if inst.objective == "coverage":
        assert plan.objective["coverage"] == pytest.approx(expected[0], abs=1e-6)


def test_a_user_constraint_on_the_pyomo_model_is_honoured():
    import pyomo.environ as pyo

    inst = layerdef.load(INSTANCES / "textbook" / "move-limit.yaml")
    model = layerdef.build_model(inst)
    pa = inst.position_ids.index("pa")
    model.keep_pa_free = pyo.Constraint(expr=sum(v for (p, c, t), v in model.z.items() if p == pa) == 0)
    plan = layerdef.solve(inst, model=model)
    assert "pa" not in set(plan.assignments["position"])
    assert plan.objective["coverage"] == pytest.approx(8.0)  # one unit to pb instead


def test_time_limit_returns_a_plan_with_bound_and_gap(tmp_path):
    from layerdef.io.generate import generate_document
    from layerdef.io.reader import dump_document

    path = tmp_path / "g.yaml"
    path.write_text(dump_document(generate_document(60, 60, 20, 6, seed=3)))
    inst = layerdef.load(path)
    current = layerdef.evaluate(inst, inst.current_posture()).total
    for limit in (0.2, 1.0):
        plan = layerdef.solve(inst, time_limit=limit)
        assert plan.status in ("optimal", "time_limit")
        assert plan.wall_s < limit + 1.0
        assert plan.objective["coverage"] >= current - 1e-6  # it starts from "nobody acts"
        if plan.bound is not None:
            assert plan.bound >= plan.objective["coverage"] - 1e-6
            assert plan.gap >= 0 and np.isfinite(plan.gap)
        else:
            assert plan.status == "time_limit" and plan.gap is None


@pytest.mark.parametrize("seed", [1, 3, 5, 7, 11, 13])
def test_a_solved_plan_as_columns_is_feasible_and_worth_the_same(seed, tmp_path):
    """plan_solution (the start handed to HiGHS) maps a posture onto the model exactly."""
    from layerdef.model.formulation import formulate, plan_solution

    inst = load_document(random_document(seed, tmp_path), tmp_path)
    try:
        plan = layerdef.solve(inst)
    except layerdef.InfeasibleError:
        return
    form = formulate(inst)
    x = plan_solution(form, plan.posture)
    lower, upper, integer = form.bounds()
    assert (x >= lower - 1e-9).all() and (x <= upper + 1e-9).all()
    start, index, value = form.csr()
    activity = np.add.reduceat(value * x[index], start[:-1]) if len(index) else np.zeros(0)
    activity[start[:-1] == start[1:]] = 0.0
    row_lower, row_upper = form.row_bounds()
    assert (activity >= row_lower - 1e-7).all() and (activity <= row_upper + 1e-7).all()
    assert form.objectives["coverage"] @ x == pytest.approx(plan.objective["coverage"])
    assert form.objectives["substitute_cost"] @ x == pytest.approx(plan.objective["substitute_cost"])
    assert form.objectives["moves"] @ x == pytest.approx(plan.objective["moves"])


def test_a_plan_cut_short_before_the_moves_stage_is_checked_against_an_overcount(tmp_path):
    """When the time runs out before moves are minimized, the model may count more moves than
    the plan makes (its move rows are >=): the check accepts that, and only that."""
    from layerdef.core.evaluate import evaluate
    from layerdef.errors import PlanCheckError
    from layerdef.model.formulation import formulate, plan_solution
    from layerdef.solve.deterministic import check_plan

    inst = load_document(random_document(3, tmp_path), tmp_path)
    plan = layerdef.solve(inst)
    form = formulate(inst)
    x = plan_solution(form, plan.posture)
    evaluation = evaluate(inst, plan.posture)
    check_plan(form, x, evaluation, None)
    x[form.columns["move_in"].ids[0]] += 1.0  # a relocation counted that does not happen
    check_plan(form, x, evaluation, None, moves_minimized=False)
    with pytest.raises(PlanCheckError, match="moves: evaluation"):
        check_plan(form, x, evaluation, None)
    x[form.columns["move_in"].ids[0]] -= 2.0  # a relocation not counted is always a bug
    with pytest.raises(PlanCheckError, match="moves: evaluation"):
        check_plan(form, x, evaluation, None, moves_minimized=False)


@pytest.mark.parametrize("scenarios", [False, True])
def test_a_plan_whose_tie_break_stage_ran_out_of_time_is_not_called_optimal(scenarios, tmp_path,
                                                                              monkeypatch):
    """Coverage proven, the cost-then-moves stage cut short (faked: it returns its start):
    the status is time_limit, not optimal, though coverage is the optimum and its gap 0."""
    import importlib

    from test_hedge import random_scenario_document

    from layerdef.model import formulation as model

    solve_module = importlib.import_module("layerdef.solve.backend")
    document = random_scenario_document(5, tmp_path) if scenarios else random_document(5, tmp_path)
    document["objective"] = "coverage"
    inst = load_document(document, tmp_path)
    optimum = layerdef.solve(inst, values=False)
    assert optimum.status == "optimal"
    monkeypatch.setattr(model, "coverage_first_weight", lambda *args: None)  # stages apart
    original = solve_module.HighsBackend.run

    def cut_short(self, time_limit, retry=True):
        if self.objective == "cost_then_moves":
            return solve_module.StageResult("time_limit", self.start, None, 0.0)
        return original(self, time_limit, retry)

    monkeypatch.setattr(solve_module.HighsBackend, "run", cut_short)
    plan = layerdef.solve(inst, values=False)
    assert plan.status == "time_limit"
    assert plan.objective["coverage"] == pytest.approx(optimum.objective["coverage"], abs=1e-6)


def test_counts_within_the_integrality_tolerance_pass_the_check(tmp_path):
    """HiGHS takes an integer column within 1e-6 of an integer: three move columns off by
    6.7e-7 each (as a random hedged instance's were, their sum 1.3e-6 past a count) are the
    plan's own moves, while one move more or less is still caught."""
    from layerdef.core.evaluate import evaluate
    from layerdef.errors import PlanCheckError
    from layerdef.model.formulation import formulate, plan_solution
    from layerdef.solve.deterministic import check_plan

    inst = load_document(random_document(3, tmp_path), tmp_path)
    plan = layerdef.solve(inst)
    form = formulate(inst)
    x = plan_solution(form, plan.posture)
    evaluation = evaluate(inst, plan.posture)
    moves = form.columns["move_in"].ids
    idle = moves[x[moves] == 0][:3]
    assert len(idle) == 3
    x[idle] += 6.7e-7
    check_plan(form, x, evaluation, None)
    x[idle[0]] += 1.0
    with pytest.raises(PlanCheckError, match="moves: evaluation"):
        check_plan(form, x, evaluation, None)


def test_hedged_solve_cut_short_returns_its_plan(tmp_path):
    inst = layerdef.load(INSTANCES / "korea-2025-replay.yaml")
    plan = layerdef.solve(inst, time_limit=3.0, values=False)
    assert plan.status in ("optimal", "time_limit") and plan.hedged
    if plan.bound is None:  # stopped before HiGHS had a bound: no gap is claimed either
        assert plan.status == "time_limit" and plan.gap is None
    else:
        assert plan.bound >= plan.objective["coverage"] - 1e-6 and plan.gap >= 0


class _RecordingBackend:
    """Stands in for HighsBackend in `run_stages`: each stage returns the plan it started
    from with the status it is told, and the time it was given is recorded."""

    def __init__(self, form, gap, statuses):
        self.form, self.gap, self.statuses, self.given = form, gap, list(statuses), []
        self.start = None

    def set_objective(self, name, sense):
        pass

    def start_from(self, solution):
        self.start = solution

    def hold(self, name, sense, value):
        pass

    def run(self, time_limit):
        from layerdef.solve.backend import StageResult

        self.given.append(time_limit)
        return StageResult(self.statuses.pop(0), self.start, 0.0, 2.0)


@pytest.mark.parametrize("gap", [0.0, 0.05])
def test_a_tie_break_cut_short_leaves_the_plan_unfinished_and_a_gap_caps_it(gap):
    """A later stage at its best does not make up for an earlier one that stopped at the time
    limit (the plan read `optimal`); with a gap allowed, a tie-break stage gets at most
    max(LATER_STAGE_SECONDS_WITH_GAP, the first stage's time), with no time limit too."""
    import time

    from layerdef.model.formulation import formulate, plan_solution
    from layerdef.solve import deterministic

    inst = layerdef.load(INSTANCES / "textbook" / "move-limit.yaml")
    form = formulate(inst)
    plan = layerdef.solve(inst)
    assert plan.objective["moves"] > 0 and plan.objective["substitute_cost"] == 0
    backend = _RecordingBackend(form, gap, ["optimal", "time_limit"])
    stages = [("coverage", -1), ("moves", 1), ("substitute_cost", 1)]
    first, _, finished = deterministic.run_stages(backend, stages, plan_solution(form, plan.posture),
                                                  None, time.perf_counter(), lambda: [])
    assert first.status == "optimal" and not finished  # cost at 0 was at its best: not run
    assert len(backend.given) == 2 and backend.given[0] is None
    assert backend.given[1] == (None if gap == 0 else deterministic.LATER_STAGE_SECONDS_WITH_GAP)
    assert deterministic.lexicographic_status(first, finished) == "time_limit"


def test_a_plan_within_the_gap_asked_for_reports_that_gap():
    """`--gap` lets HiGHS stop short of a proof: the plan says how far from the bound it
    stopped (it claimed gap 0 with the bound at the plan's own value; hedged plans:
    `test_hedge.py`)."""
    inst = layerdef.load(INSTANCES / "korea-2025.yaml")
    plan = layerdef.solve(inst, gap=0.01)
    # the root step's plan is 0.06% from the LP bound: HiGHS stops at once, nothing proven
    assert plan.status == "optimal" and 0.0 < plan.gap <= 0.01
    assert plan.bound > plan.objective["coverage"]
    assert plan.gap == pytest.approx((plan.bound - plan.objective["coverage"]) / plan.objective["coverage"])
