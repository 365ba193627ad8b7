"""The root step (`HighsBackend.sharpen`): its reduced-cost bounds by hand, and on random tiny
instances and Korea, that every optimal plan survives them and its plan still meets the model.
The Lagrangian bound (`layerdef.bound`): never below the LP relaxation, equal to it at the LP's
duals, and reported where the root LP is slow."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import load_document, rows_and_bounds_hold
from test_brute_force import random_document

import layerdef
from layerdef.core.evaluate import evaluate
from layerdef.io.reader import load
from layerdef.model.formulation import formulate
from layerdef.solve import progress_on_stderr
from layerdef.solve.backend import (
    HighsBackend,
    SolverOptions,
    lexicographic_stages,
    reduced_cost_bounds,
)
from layerdef.solve.deterministic import starting_plan

KOREA = Path(__file__).resolve().parents[1] / "instances" / "korea-2025.yaml"


def test_reduced_cost_bounds_by_hand():
    """min x + 2y + 3z, x + y + z >= 1, x, y, z integer in [0, 3]: the LP optimum is x = 1
    (objective 1), reduced costs (0, 1, 2). From an incumbent worth 1 no plan as good has
    y or z above 0; from one worth 3, y <= 2 and z <= 1 (2 x 1 and 1 x 2 over the LP)."""
    lower, upper, integer = np.zeros(3), np.full(3, 3.0), np.ones(3, bool)
    reduced = np.array([0.0, 1.0, 2.0])
    low, up = reduced_cost_bounds(lower, upper, integer, reduced, 1.0, 1.0)
    assert low.tolist() == [0, 0, 0] and up.tolist() == [3, 0, 0]
    low, up = reduced_cost_bounds(lower, upper, integer, reduced, 1.0, 3.0)
    assert up.tolist() == [3, 2, 1]
    # a column at its upper bound with a negative reduced cost is held up from below
    low, up = reduced_cost_bounds(lower, upper, integer, np.array([0.0, -1.0, 0.0]), 1.0, 2.0)
    assert low.tolist() == [0, 2, 0] and up.tolist() == [3, 3, 3]
    # continuous columns and an incumbent under the LP bound (tolerances) are left alone
    low, up = reduced_cost_bounds(lower, upper, np.zeros(3, bool), reduced, 1.0, 1.0)
    assert up.tolist() == [3, 3, 3]
    low, up = reduced_cost_bounds(lower, upper, integer, reduced, 1.0, 0.5)
    assert up.tolist() == [3, 3, 3]
    # reduced costs within the LP's tolerance bound nothing, even an unbounded column
    tiny = np.array([0.0, 1e-12, 2.0])
    low, up = reduced_cost_bounds(lower, np.array([3.0, np.inf, 3.0]), integer, tiny, 1.0, 1.0, 1e-9)
    assert up.tolist() == [3, np.inf, 0]
    low, up = reduced_cost_bounds(lower, np.array([3.0, np.inf, 3.0]), integer, tiny, 1.0, 1.0)
    assert up[1] > 1e5  # without the tolerance: a finite bound far out, what HiGHS warned of


def optimum_and_root(inst) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, object] | None:
    """The first stage's optimum solved without the root step, and the column bounds, plan and
    backend after the root step from the greedy start (None without a start)."""
    form = formulate(inst)
    start = starting_plan(inst, form, None, evaluate(inst, inst.current_posture()))  # searched
    if start is None:
        return None
    name, sense = lexicographic_stages(form)[0]
    plain = HighsBackend(form, SolverOptions())
    plain.set_objective(name, sense)
    optimum = plain.run(None)
    if optimum.status == "infeasible":  # min-cost with a target the start misses
        return None
    assert optimum.status == "optimal"
    rooted = HighsBackend(form, SolverOptions())
    rooted.set_objective(name, sense)
    better = rooted.sharpen(start, None)
    assert better is not None
    lp = rooted.highs.getLp()
    assert rows_and_bounds_hold(form, better)
    assert sense * (form.objectives[name] @ better) <= sense * (form.objectives[name] @ start) + 1e-9
    return optimum.solution, np.array(lp.col_lower_), np.array(lp.col_upper_), better, rooted


def check_optimum_survives(inst) -> bool:
    found = optimum_and_root(inst)
    if found is None:
        return False
    check_survival(*found)
    return True


def check_survival(optimum, lower, upper, better, rooted) -> None:
    assert np.all(optimum >= lower - 1e-5) and np.all(optimum <= upper + 1e-5)
    assert np.all(better >= lower - 1e-9) and np.all(better <= upper + 1e-9)
    result = rooted.run(None)
    name_cost = rooted.cost
    assert result.status == "optimal"
    assert name_cost @ result.solution == pytest.approx(name_cost @ optimum, rel=1e-9, abs=1e-6)
    assert rooted.sense * result.bound <= rooted.sense * (name_cost @ optimum) + 1e-6


@pytest.mark.parametrize("seed", range(40))
def test_every_optimal_plan_survives_the_root_step(seed, tmp_path):
    """The optimum solved without the root step lies inside the bounds the root step sets
    (any optimum does, since none is worse than the start), and the bounded model reaches
    the same objective with a bound no better than it."""
    check_optimum_survives(load_document(random_document(seed, tmp_path), tmp_path))


def test_korea_root_step_fixes_columns_and_keeps_the_optimum():
    found = optimum_and_root(load(KOREA))
    _, lower, upper, _, rooted = found
    fixed = rooted.integer & (lower == upper) & (rooted.lower < rooted.upper)
    check_survival(*found)
    assert fixed.sum() > 0.25 * rooted.integer.sum()
    # the root step's rounding was RENS: HiGHS does not repeat it (HIGHS_HEURISTICS_OFF_AFTER_ROOT)
    assert rooted.highs.getOptionValue("mip_heuristic_run_rens")[1] is False
    assert HighsBackend(rooted.form, SolverOptions()).highs.getOptionValue(
        "mip_heuristic_run_rens")[1] is True


def test_the_root_step_reports_progress_on_stderr(monkeypatch, capfd):
    """Long root LPs and sub-MIPs (medium's LP takes 18 s) still show a line every few
    seconds; here every line is due."""
    import importlib

    monkeypatch.setattr(importlib.import_module("layerdef.solve.backend"), "PROGRESS_EVERY_S", 0.0)
    inst = load(KOREA)
    form = formulate(inst)
    start = starting_plan(inst, form, None, evaluate(inst, inst.current_posture()))
    backend = HighsBackend(form, SolverOptions())
    backend.set_objective(*lexicographic_stages(form)[0])
    with progress_on_stderr(True):
        assert backend.sharpen(start, None) is not None
    captured = capfd.readouterr()
    assert "root: LP relaxation" in captured.err and "root: LP bound" in captured.err
    assert "root: LP" not in captured.out


def lp_relaxation_coverage(form) -> float | None:
    backend = HighsBackend(form, SolverOptions())
    backend.set_objective("coverage", -1)
    relaxation = backend._relaxation(None)
    return None if relaxation is None else relaxation[2]


def test_the_lagrangian_bound_is_never_below_the_lp_relaxation(tmp_path):
    """Any multipliers >= 0 give a bound at least the LP relaxation's coverage (and so at least
    every plan's): from the start's multipliers, from zero and from random ones, each checked
    at its first evaluation (no time for steps) and after a few volume steps; Korea and random
    tiny instances (those whose LP is feasible)."""
    from layerdef.solve.bound import depth_bound, start_multipliers

    checked = 0
    for seed in range(16):
        inst = (load(KOREA) if seed == 0 else
                load_document(random_document(seed, tmp_path), tmp_path, f"tiny-{seed}.yaml"))
        form = formulate(inst, "coverage")
        lp = lp_relaxation_coverage(form)
        if lp is None:
            continue
        start = starting_plan(inst, form, None, evaluate(inst, inst.current_posture()))
        plan_value = form.objectives["coverage"] @ start if start is not None else 0.0
        rng = np.random.default_rng(seed)
        size = form.rows["depth"].size
        candidates = [np.zeros(size), rng.uniform(0, 5, size)]
        if start is not None:
            candidates.append(start_multipliers(form, start))
            assert candidates[-1].min() >= 0
        for initial in candidates:
            for seconds in (0.0, 0.1):
                bound = depth_bound(form, plan_value, initial, seconds)
                assert bound is not None and bound >= lp - 1e-6 * max(1.0, abs(lp)), (seed, seconds)
        checked += 1
    assert checked >= 10


def test_the_lagrangian_bound_closes_in_on_korea():
    """From the start's multipliers the volume steps bring Korea's bound within 1% of its LP."""
    from layerdef.solve.bound import depth_bound, start_multipliers

    inst = load(KOREA)
    form = formulate(inst, "coverage")
    lp = lp_relaxation_coverage(form)
    start = starting_plan(inst, form, None, evaluate(inst, inst.current_posture()))
    first = depth_bound(form, form.objectives["coverage"] @ start, start_multipliers(form, start), 0.0)
    stepped = depth_bound(form, form.objectives["coverage"] @ start, start_multipliers(form, start), 3.0)
    assert lp <= stepped < first
    assert stepped <= 1.01 * lp


def test_at_the_lp_duals_the_lagrangian_bound_is_the_lp_bound():
    """Strong duality: with the LP relaxation's own duals on the depth rows as multipliers,
    the Lagrangian relaxation's value is the LP's (a wrong sign or a lost term would not be)."""
    from layerdef.solve.bound import depth_bound

    form = formulate(load(KOREA), "coverage")
    backend = HighsBackend(form, SolverOptions())
    backend.set_objective("coverage", -1)
    _, _, lp = backend._relaxation(None)
    depth = form.rows["depth"]
    duals = np.abs(np.array(backend.highs.getSolution().row_dual)[depth.start:depth.start + depth.size])
    assert duals.max() > 0
    assert depth_bound(form, 0.0, duals, 0.0) == pytest.approx(lp, rel=1e-7)
    assert depth_bound(form, 0.0, 2 * duals, 0.0) > lp + 1e-3


def _korea_made_large(monkeypatch, beyond_root: bool):
    """Korea's solve made to look large: coverage in its own stage, its LP "slow" (the
    Lagrangian bound beside the root LP) or, `beyond_root`, above the root step's size (the
    root LP with all the time left, the bound beside it)."""
    import importlib

    backend = importlib.import_module("layerdef.solve.backend")
    monkeypatch.setattr(backend, "IPM_ABOVE_NONZEROS", 0)
    if beyond_root:
        monkeypatch.setattr(backend, "ROOT_MAX_NONZEROS", 0)
    monkeypatch.setattr(importlib.import_module("layerdef.model.formulation"), "ONE_STAGE_MAX_NONZEROS", 0)
    monkeypatch.setattr(backend, "LAGRANGIAN_SECONDS", 1.0)
    return backend


@pytest.mark.parametrize("beyond_root", [False, True])
def test_where_the_root_lp_is_slow_the_lagrangian_bound_is_reported(beyond_root, monkeypatch, capfd):
    """Korea made to look large, the bound beside the root LP, which gets a share of the time
    or all of it: the solve reports the Lagrangian bound and the LP bound on stderr and still ends
    with the proven optimum."""
    _korea_made_large(monkeypatch, beyond_root)
    plan = layerdef.solve(load(KOREA), time_limit=60, log=True)
    assert plan.status == "optimal"
    assert plan.objective["coverage"] == pytest.approx(3974.55, abs=1e-6)
    err = capfd.readouterr().err
    assert "root: Lagrangian bound" in err and "root: LP bound" in err


def test_a_root_lp_that_takes_all_the_time_returns_the_start_with_the_lagrangian_bound(monkeypatch,
                                                                                       capfd):
    """Korea beyond the root step's size, its root LP never solved within the limit: HiGHS's
    MIP is not started; the searched plan comes back, status time_limit, with the Lagrangian
    bound, which holds against the optimum. Meanwhile progress lines show the incumbent and
    bound found so far."""
    solve_module = _korea_made_large(monkeypatch, beyond_root=True)
    monkeypatch.setattr(solve_module, "PROGRESS_EVERY_S", 0.2)
    calls = []

    def out_of_reach(self, time_limit):
        with self._ticking("root: LP relaxation"):  # as the LP's own run is watched
            time.sleep(max(time_limit, 0.0))
        return None

    monkeypatch.setattr(solve_module.HighsBackend, "_relaxation", out_of_reach)
    original_run = solve_module.HighsBackend.run
    monkeypatch.setattr(solve_module.HighsBackend, "run",
                        lambda self, *args, **kwargs: calls.append(args) or original_run(self, *args, **kwargs))
    plan = layerdef.solve(load(KOREA), time_limit=4, log=True)
    assert plan.status == "time_limit"
    assert re.search(r"root: LP relaxation; incumbent [0-9.]+  bound [0-9.]+  gap", capfd.readouterr().err)
    assert len(calls) == 1 and calls[0][0] <= 0  # the first stage, out of time
    assert plan.objective["coverage"] <= 3974.55 + 1e-6 <= plan.bound
    assert plan.gap == pytest.approx((plan.bound - plan.objective["coverage"]) / plan.objective["coverage"])


def korea_and_its_searched_plan() -> tuple[object, np.ndarray]:
    """Korea's model and the greedy plan the solve starts from (it meets every row)."""
    inst = load(KOREA)
    form = formulate(inst)
    return form, starting_plan(inst, form, None, evaluate(inst, inst.current_posture()))


def test_a_start_that_breaks_no_row_is_returned_when_no_time_is_left():
    """`HighsBackend.run` out of time: a start that meets the model comes back as the plan
    (`Formulation.violation` 0, as the tests' own check says); one that breaks a row does
    not, and HiGHS runs for its least time instead."""
    form, first = korea_and_its_searched_plan()
    backend = HighsBackend(form, SolverOptions(time_limit=10))
    backend.set_objective(*lexicographic_stages(form)[0])
    assert rows_and_bounds_hold(form, first) and form.violation(first) <= 1e-6
    backend.start_from(first)
    again = backend.run(0.0)
    assert again.status == "time_limit" and again.wall_s == 0.0
    assert np.array_equal(again.solution, first)
    broken = first.copy()
    broken[form.columns["z"].start] += 0.5
    assert form.violation(broken) >= 0.5 and not rows_and_bounds_hold(form, broken)
    backend.start_from(broken)
    assert backend.run(0.0).wall_s > 0.0


def test_a_start_that_holds_is_the_plan_when_highs_ends_without_one(monkeypatch):
    """HiGHS out of time before it took the start in (Korea's searched plan, 0.05 s left):
    a start that meets the model and the bounds comes back as the plan, status time_limit;
    one that breaks a row does not."""
    from layerdef.solve import backend as backend_module

    form, plan = korea_and_its_searched_plan()
    backend = HighsBackend(form, SolverOptions(time_limit=10))
    backend.set_objective(*lexicographic_stages(form)[0])
    monkeypatch.setattr(backend_module, "stage_status", lambda optimal, infeasible, has_solution: "no_solution")
    backend.start_from(plan)
    ended = backend.run(0.05, retry=False)
    assert ended.status == "time_limit" and np.array_equal(ended.solution, plan)
    broken = plan.copy()
    broken[form.columns["z"].start] += 0.5
    backend.start_from(broken)
    assert backend.run(0.05, retry=False).status == "no_solution"


def test_an_objective_with_huge_coefficients_is_scaled_for_highs_and_read_back_unscaled():
    """Korea's weighted objective times 64 (coefficients above `LARGEST_COST`) goes to HiGHS
    scaled by a power of two; the plan is the same and the bound, the objective HiGHS reports,
    its progress trace and the root step's LP bound come back in the objective's own units,
    the root step fixing as many columns (its reduced costs are read back unscaled)."""
    from layerdef.solve.lp import LARGEST_COST

    inst = load(KOREA)
    form = formulate(inst)
    name, _ = lexicographic_stages(form)[0]
    start = starting_plan(inst, form, None, evaluate(inst, inst.current_posture()))
    results = []
    for factor in (1.0, 64.0):
        backend = HighsBackend(form, SolverOptions(time_limit=60))
        backend.set_vector_objective(factor * form.objectives[name])
        assert (backend.scale < 1.0) == (factor * np.abs(form.objectives[name]).max() > LARGEST_COST)
        backend.sharpen(start, 60)
        lp = backend.highs.getLp()
        bounds = np.array(lp.col_lower_), np.array(lp.col_upper_)
        backend.loosen()
        results.append((backend, bounds))
    (plain_backend, plain_bounds), (scaled_backend, scaled_bounds) = results
    assert scaled_backend.scale < 1.0 == plain_backend.scale
    assert scaled_backend.lp_bound == pytest.approx(64.0 * plain_backend.lp_bound, rel=1e-9)
    lower, upper, _ = form.bounds()
    fixed = [int(np.sum((low == up) & (lower < upper))) for low, up in (plain_bounds, scaled_bounds)]
    assert fixed[0] > 1000 and abs(fixed[0] - fixed[1]) <= 0.05 * fixed[0]  # 2,019 and 2,013:
    # the LP is degenerate, and its two solves may end at different duals
    scaled = scaled_backend.run(60)  # only the scaled MIP: Korea's optimum is known, 3974.55
    assert scaled.status == "optimal"
    assert abs(float(form.objectives["coverage"] @ scaled.solution)) == pytest.approx(3974.55, abs=1e-6)
    value = float(form.objectives[name] @ scaled.solution)
    assert scaled.bound == pytest.approx(64.0 * value, rel=1e-4)
    assert scaled_backend.trace[-1][1] == pytest.approx(64.0 * value, rel=1e-9)


THREATS = KOREA.parent / "korea-2025-threats.yaml"


@pytest.mark.parametrize("seed", range(12))
def test_the_rounding_keeps_the_lps_integral_decisions(seed, tmp_path):
    """The root step's rounding (RENS) returns a plan that meets every row and holds each
    decision the LP relaxation set to an integer at that integer, and no other column."""
    from test_threats import threat_document

    inst = load_document(threat_document(seed, tmp_path), tmp_path)
    form = formulate(inst)
    start = starting_plan(inst, form, None, evaluate(inst, inst.current_posture()))
    if start is None:
        pytest.skip("no feasible start")
    backend = HighsBackend(form, SolverOptions())
    backend.set_objective(*lexicographic_stages(form)[0])
    values, _, _ = backend._relaxation(None)
    rounded = backend._rounding(start, values, 10.0)
    integral = backend.integer & form.decisions() & (np.abs(values - np.round(values)) <= 1e-6)
    if rounded.solution is None:
        return  # no plan keeps them: the root step falls back on RINS from the start
    assert rows_and_bounds_hold(form, rounded.solution)
    assert np.allclose(rounded.solution[integral], np.round(values[integral]))
    lp = backend.highs.getLp()
    assert np.array_equal(np.array(lp.col_lower_), backend.lower)  # the bounds are put back
    assert np.array_equal(np.array(lp.col_upper_), backend.upper)


def test_decisions_are_where_units_stand_face_and_rotate_in_every_scenario():
    from layerdef.model.formulation import DECISION_BLOCKS
    from layerdef.model.scenarios import formulate_hedged

    form = formulate(load(THREATS))
    mask = form.decisions()
    for name, block in form.columns.items():
        assert mask[block.ids].all() == (name in DECISION_BLOCKS) and mask[block.ids].any() == (
            name in DECISION_BLOCKS and block.size > 0)
    hedged = formulate_hedged(load(KOREA.parent / "korea-2025-replay.yaml"), "expected")
    stacked = hedged.form.decisions()
    assert stacked.sum() == sum(part.decisions().sum() for part in hedged.forms)


def test_a_last_stage_already_at_its_best_is_not_solved(monkeypatch, capfd):
    """Korea with launch areas: the first stage's plan makes no turn, which no plan beats, so
    the turns stage is not handed to HiGHS (and the plan is still optimal)."""
    from layerdef.solve import backend as backend_module
    from layerdef.solve.deterministic import at_its_best

    calls = []
    run = backend_module.HighsBackend.run

    def counted(self, *args, **kwargs):
        calls.append(self.objective)
        return run(self, *args, **kwargs)

    monkeypatch.setattr(backend_module.HighsBackend, "run", counted)
    inst = load(THREATS)
    with progress_on_stderr(True):
        solution = layerdef.solve(inst)
    assert solution.status == "optimal" and solution.objective["turns"] == 0
    assert "turns" not in calls
    assert "stage 2 (turns): optimal, no plan could do better" in capfd.readouterr().err
    form = formulate(inst)
    turns = form.objectives["turns"]
    assert at_its_best(form, turns, 1, np.zeros(form.n_cols))
    some = np.zeros(form.n_cols)
    some[np.nonzero(turns)[0][0]] = 1.0
    assert not at_its_best(form, turns, 1, some)
    assert not at_its_best(form, form.objectives["coverage"], -1, np.zeros(form.n_cols))


def test_the_lagrangian_bound_stops_inside_an_inner_lp():
    """Beside the root LP the Lagrangian bound is stopped as soon as the LP is solved: the
    stop is asked inside each inner LP, not only between steps (on the 3,000-site theater one
    inner LP had outlasted a 120 s limit by minutes), and a stop during the first inner LP
    gives no bound rather than a late one."""
    from layerdef.solve.bound import depth_bound

    form = formulate(load(KOREA), "coverage")
    asked = []

    def stopped() -> bool:
        asked.append(time.perf_counter())
        return len(asked) > 1  # the first ask comes from inside the first inner LP, the second stops it

    assert depth_bound(form, 0.0, np.ones(form.rows["depth"].size), 60.0, stopped=stopped) is None
    assert len(asked) >= 2
