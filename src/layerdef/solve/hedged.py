"""Hedged plans across return-date scenarios, and what hedging is worth.

One copy of the deterministic formulation per scenario, built on the same classes of
interchangeable units (formed over every scenario's presence, so that class c means the same
units in every copy), stacked block-diagonally and linked by non-anticipativity: in scenarios
whose history (who is present in every period so far) is the same up to t, the decisions of t
are the same (`z`, the positions and stays of substitute cohorts), and a substitute rotation
starting in t is the same wherever the histories agree up to t - lead. Objective: expected
coverage (`risk="expected"`) or the worst scenario's (`risk="worst"`), then expected cost, then
expected moves, in exact stages (cost and moves in one when the expected costs lie on a grid)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from layerdef.core.evaluate import Evaluation, evaluate, expected
from layerdef.core.instance import Instance
from layerdef.core.replay import replay_posture
from layerdef.io.solution import Solution
from layerdef.model.formulation import (
    plan_solution,
    posture_solution,
)
from layerdef.model.scenarios import Hedged, formulate_hedged
from layerdef.solve.backend import (
    HighsBackend,
    SolverOptions,
    lexicographic_stages,
    progress,
    share_of_cores,
    solver_log,
    time_left,
)
from layerdef.solve.deterministic import (
    check_plan,
    claimed_gap,
    coverage_bound,
    lexicographic_status,
    restore_posture,
    run_lexicographic,
    run_stages,
    sharpen_start,
)
from layerdef.solve.explain import explain_infeasibility
from layerdef.solve.heuristic import greedy_plan, greedy_posture
from layerdef.solve.workers import Worker, WorkerDied, can_start_workers

INF = float("inf")


@dataclass
class HedgedPlan:
    """One checked posture per scenario; `bound` is the first stage's (expected or worst coverage)."""

    status: str
    scenario_ids: list[str]
    probability: np.ndarray
    postures: list  # one posture DataFrame per scenario
    evaluations: list[Evaluation]
    bound: float | None = None
    risk: str = "expected"
    solver_version: str = ""

    @property
    def expected(self) -> dict[str, float]:
        return expected([e.figures for e in self.evaluations], self.probability)

    @property
    def risk_value(self) -> float:
        """The coverage the plan was optimized for: expected, or the worst scenario's."""
        return risk_measure([e.total for e in self.evaluations], self.probability, self.risk)


def risk_measure(coverage: list[float], probability: np.ndarray, risk: str) -> float:
    """Expected coverage over the scenarios, or the worst scenario's."""
    if risk == "worst":
        return float(min(coverage))
    return float(np.dot(probability, coverage))


def hedged_start(instance: Instance, hedged: Hedged, risk: str, seconds: float,
                 report: Callable[[str], None] = lambda message: None) -> np.ndarray | None:
    """The best non-anticipative start HiGHS can be given cheaply, when every scenario's
    current posture meets its requirements: each scenario's own greedy plan (greedy and local
    search, `seconds` in all; none without time) played in every scenario, or the greedy
    relocations of the first period played everywhere, whichever scores best and meets every
    requirement and limit in every scenario. A played plan puts every present unit where the
    plan says whatever the history, and requests the same substitutes: non-anticipative."""
    if not all(evaluate(world, world.current_posture()).feasible for world in hedged.scenarios):
        return None
    where = greedy_posture(hedged.scenarios[0])
    moved = where[:, 0] != instance.unit_home
    safe = np.where(moved[:, None], where, instance.unit_home[:, None])
    best = _stacked(hedged, risk, [posture_solution(form, safe) for form in hedged.forms])
    best_value = _start_value(hedged, best, risk)
    for world, form in zip(hedged.scenarios, hedged.forms) if seconds > 0 else ():
        where, rotations = greedy_plan(world, seconds / len(hedged.forms))
        plan = restore_posture(form, posture_solution(form, where, rotations))
        postures = [_played(other, plan) for other in hedged.scenarios]
        if not all(evaluate(other, posture).feasible
                   for other, posture in zip(hedged.scenarios, postures)):
            continue  # a requirement or limit broken where the plan was not made
        start = _stacked(hedged, risk, [plan_solution(other, posture)
                                        for other, posture in zip(hedged.forms, postures)])
        value = _start_value(hedged, start, risk)
        if value > best_value:
            best, best_value = start, value
    report(f"start: {risk} coverage {best_value:.8g}")
    return best


def _played(world: Instance, plan: pd.DataFrame) -> pd.DataFrame:
    """The plan played in a scenario as `replay_posture` does, except that a unit back before
    the plan expects it stands where the plan first puts it afterwards rather than at home:
    returns are not moves, so the plan makes no more moves than it did (a rule of this start
    only; `replay` keeps the documented one)."""
    posture = replay_posture(world, plan)
    order = {period: t for t, period in enumerate(world.periods)}
    stays: dict[str, list[tuple[int, str]]] = {}
    for row in plan.itertuples():
        stays.setdefault(row.unit, []).append((order[row.period], row.position))
    organic = set(world.unit_ids)
    for row in posture.itertuples():
        planned = stays.get(row.unit, [])
        if row.unit in organic and all(t != order[row.period] for t, _ in planned):
            later = [stay for stay in planned if stay[0] > order[row.period]]
            if later:
                posture.at[row.Index, "position"] = min(later)[1]
    return posture


def _better_start(hedged: Hedged, risk: str, start: np.ndarray | None,
                  postures: list[pd.DataFrame]) -> np.ndarray | None:
    """The given postures as one start where each meets its scenario's requirements and limits
    and together they score better than `start`."""
    if not all(evaluate(world, posture).feasible for world, posture in zip(hedged.scenarios, postures)):
        return start
    given = _stacked(hedged, risk, [plan_solution(form, posture) for form, posture in zip(hedged.forms, postures)])
    if start is None or _start_value(hedged, given, risk) > _start_value(hedged, start, risk):
        progress(f"start: the given plans, {risk} coverage {_start_value(hedged, given, risk):.8g}")
        return given
    return start


def _stacked(hedged: Hedged, risk: str, parts: list[np.ndarray]) -> np.ndarray:
    """One start vector from each scenario's column values (and the worst coverage's column)."""
    start = np.zeros(hedged.form.n_cols)
    for n, part in enumerate(parts):
        start[hedged.offsets[n]:hedged.offsets[n] + len(part)] = part
    if risk == "worst":
        start[hedged.form.columns["worst_coverage"].start] = min(
            form.objectives["coverage"] @ part for form, part in zip(hedged.forms, parts))
    return start


def _start_value(hedged: Hedged, start: np.ndarray, risk: str) -> float:
    coverage = [form.objectives["coverage"] @ hedged.part(start, n) for n, form in enumerate(hedged.forms)]
    return risk_measure(coverage, hedged.form.instance.scenario_probability, risk)


def solve_hedged(instance: Instance, risk: str = "expected", time_limit: float | None = None,
                 gap: float = 0.0, threads: int | None = None,
                 starts: list[pd.DataFrame] | None = None, first_stage_only: bool = False,
                 on_start: Callable[[list[pd.DataFrame]], None] | None = None) -> HedgedPlan:
    """One posture per scenario, lexicographic over (expected or worst) coverage, expected cost,
    expected moves; each scenario's posture is checked by the evaluator. `starts`: one
    non-anticipative posture per scenario to start from where it beats the usual start.
    `first_stage_only`: coverage alone (a robust search's master, whose later stages the
    reactions settle). `on_start`: called with the plan HiGHS starts from (one posture per
    scenario), after the root step, while HiGHS searches and proves (the robust search's
    oracle begins on it)."""
    started = time.perf_counter()
    hedged = formulate_hedged(instance, risk)
    backend = HighsBackend(hedged.form, SolverOptions(time_limit, gap, threads, solver_log()))
    options = SolverOptions(time_limit, gap, threads, False)

    def evaluated(solution: np.ndarray) -> tuple[float, float, float]:
        plans = [evaluate(world, restore_posture(part, hedged.part(solution, n)))
                 for n, (world, part) in enumerate(zip(hedged.scenarios, hedged.forms))]
        return tuple(float(instance.scenario_probability @ [getattr(plan, name) for plan in plans])
                     for name in ("total", "substitute_cost", "moves_total"))

    seconds = 10.0 if time_limit is None else min(60.0, 0.2 * time_limit)  # it stops early when done
    start = hedged_start(instance, hedged, risk, seconds, lambda message: progress(message))
    if starts is not None:
        start = _better_start(hedged, risk, start, starts)
    if start is not None:
        sharpened = sharpen_start(backend, start, time_left(time_limit, started))
        start = start if sharpened is None else sharpened
    if on_start is not None and start is not None:
        on_start([restore_posture(part, hedged.part(start, n)) for n, part in enumerate(hedged.forms)])
    explain = lambda: explain_hedged_infeasibility(instance, options)  # noqa: E731
    if first_stage_only:
        first, solution, finished = run_stages(backend, lexicographic_stages(hedged.form)[:1], start,
                                               time_limit, started, explain)
    else:
        first, solution, finished = run_lexicographic(backend, start, time_limit, started, explain, evaluated)
    status = lexicographic_status(first, finished)
    postures, evaluations = [], []
    for n, (world, part) in enumerate(zip(hedged.scenarios, hedged.forms)):
        posture = restore_posture(part, hedged.part(solution, n))
        evaluation = evaluate(world, posture)
        # a scenario of probability 0 weighs nothing in the expected moves: its model may
        # count more moves than its posture makes (the evaluation's count is reported)
        check_plan(part, hedged.part(solution, n), evaluation, None,
                   finished and not first_stage_only and instance.scenario_probability[n] > 0)
        postures.append(posture)
        evaluations.append(evaluation)
    return HedgedPlan(status, list(instance.scenario_ids), instance.scenario_probability, postures,
                      evaluations, coverage_bound(hedged.form, first), risk, backend.version)


def solve_scenarios(instance: Instance, risk: str = "expected", time_limit: float | None = None,
                    gap: float = 0.0, threads: int | None = None,
                    plan_for: str | None = None, values: bool = True,
                    starts: list[pd.DataFrame] | None = None) -> Solution:
    """The hedged plan as a Solution (tables with a `scenario` column, expected figures), with
    the value of the stochastic solution and of perfect information unless `values` is False;
    `starts` as `solve_hedged` takes them."""
    started = time.perf_counter()
    alone = _Alone(instance, time_limit, gap, threads) if values else None
    try:
        plan = solve_hedged(instance, risk, time_limit, gap, threads, starts)
        hedged_s = time.perf_counter() - started
        information = (None if alone is None else
                       values_of_information(instance, plan, alone.result(hedged_s),
                                             plan_for or most_likely(instance)))
    finally:
        if alone is not None:
            alone.cancel()
    solver = {"name": "highs", "interface": "highspy",
              "version": plan.solver_version,
              "options": SolverOptions(time_limit, gap, threads).as_dict()}
    parts = []
    for world, posture, evaluation in zip([instance.in_scenario(s) for s in instance.scenario_ids],
                                          plan.postures, plan.evaluations):
        parts.append(Solution.from_evaluations(
            instance=world, objective_kind="coverage", status=plan.status, bound=None, gap=None,
            solver=solver, wall_s=hedged_s, build_s=None, plan=evaluation, posture=posture,
            current=evaluate(world, world.current_posture()),
            reference=evaluate(world, world.reference_posture())))
    achieved = plan.risk_value
    bound, relative_gap = claimed_gap(plan.status == "optimal", gap > 0,
                                      None if plan.bound is None else max(plan.bound, achieved), achieved)
    return Solution.from_scenarios(
        instance, parts, risk, plan.status, bound, relative_gap,
        solver, time.perf_counter() - started, None, information)


def solve_alone(instance: Instance, time_limit: float | None, gap: float,
                threads: int | None, report: bool = True) -> list[Solution]:
    """Each scenario solved as if it were certain (perfect information)."""
    from layerdef.solve.deterministic import solve

    perfect = [solve(instance.in_scenario(scenario), time_limit=time_limit, gap=gap, threads=threads)
               for scenario in instance.scenario_ids]
    if report:
        _report_alone(perfect, "")
    return perfect


def _report_alone(perfect: list[Solution], where: str) -> None:
    progress(f"perfect information: {len(perfect)} scenarios solved alone{where}, coverage "
                  + ", ".join(f"{p.objective['coverage']:.6g}" for p in perfect))


class _Alone:
    """Every scenario solved alone (perfect information). With more than one core they are
    solved in a worker process (`layerdef.solve.workers`) while this one solves the hedged plan
    (independent work; HiGHS keeps about one core busy), each within an equal share of the time
    limit (1 s at least); otherwise (one core, a daemonic worker, no Python executable to start,
    or a worker that died without an answer) here afterwards, sharing what the hedged solve
    left."""

    def __init__(self, instance: Instance, time_limit: float | None, gap: float,
                 threads: int | None):
        self.instance, self.time_limit, self.gap, self.threads = instance, time_limit, gap, threads
        self.worker: Worker | None = None
        if can_start_workers():
            each = None if time_limit is None else max(1.0, time_limit / len(instance.scenario_ids))
            try:
                self.worker = Worker(share_of_cores(2))  # beside the hedged solve here
                self.worker.submit(solve_alone, instance, each, gap, threads, False)
            except OSError:
                self.cancel()

    def result(self, hedged_s: float) -> list[Solution]:
        try:
            perfect = self._answer()
        except WorkerDied:
            perfect = None
        if perfect is None:
            left = (None if self.time_limit is None
                    else max(1.0, (self.time_limit - hedged_s) / len(self.instance.scenario_ids)))
            return solve_alone(self.instance, left, self.gap, self.threads)
        _report_alone(perfect, " alongside")
        return perfect

    def _answer(self) -> list[Solution] | None:
        if self.worker is None:
            return None
        try:
            return self.worker.answer()
        finally:
            self.cancel()

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.close()
        self.worker = None


def most_likely(instance: Instance) -> str:
    """The most probable scenario (the first of equals)."""
    return instance.scenario_ids[int(np.argmax(instance.scenario_probability))]


def values_of_information(instance: Instance, plan: HedgedPlan, perfect: list[Solution],
                          plan_for: str) -> dict:
    """What hedging is worth, in the plan's risk measure of coverage, from the scenarios solved
    alone (`perfect`, in the instance's order).

    VSS: the hedged plan against the plan made as if `plan_for` were certain (its solve alone),
    replayed in every scenario. EVPI: perfect foresight against the hedged plan."""
    from layerdef.core.replay import replay

    deterministic = perfect[instance.scenario_ids.index(plan_for)]
    replayed = [replay(instance, deterministic.posture, s)[1] for s in instance.scenario_ids]
    progress(f"the plan for {plan_for} replayed in every scenario")
    probability = instance.scenario_probability
    hedged_value = plan.risk_value
    foresight = [_with_foresight(alone, branch) for alone, branch in zip(perfect, plan.evaluations)]
    perfect_value = risk_measure([coverage for coverage, _, _ in foresight], probability, plan.risk)
    replayed_value = risk_measure([r.total for r in replayed], probability, plan.risk)
    rows = [{"scenario": s, "probability": float(p),
             "hedged": h.total, "hedged_cost": h.substitute_cost, "hedged_moves": h.moves_total,
             "deterministic": r.total, "deterministic_cost": r.substitute_cost,
             "deterministic_moves": r.moves_total,
             "deterministic_unmet": int((r.shortfall > 0).sum()),
             "deterministic_violations": r.violations,
             "perfect": f[0], "perfect_cost": f[1], "perfect_from": f[2]}
            for s, p, h, r, f in zip(instance.scenario_ids, instance.scenario_probability,
                                     plan.evaluations, replayed, foresight)]
    hedged_cost = plan.expected["substitute_cost"]
    replayed_cost = float(np.dot(probability, [r.substitute_cost for r in replayed]))
    perfect_cost = float(np.dot(probability, [cost for _, cost, _ in foresight]))
    return {
        "measure": f"{plan.risk} coverage; costs are expected", "plan_for": plan_for,
        "hedged": hedged_value, "deterministic_replayed": replayed_value,
        "deterministic_feasible_everywhere": all(r.feasible for r in replayed),
        "perfect_information": perfect_value,
        "vss": hedged_value - replayed_value, "evpi": perfect_value - hedged_value,
        "hedged_cost": hedged_cost, "deterministic_cost": replayed_cost, "perfect_cost": perfect_cost,
        "vss_cost": replayed_cost - hedged_cost, "evpi_cost": hedged_cost - perfect_cost,
        "status": {"hedged": plan.status, "deterministic": deterministic.status,
                   "perfect": [p.status for p in perfect]},
        "by_scenario": rows,
    }


def _with_foresight(alone: Solution, branch: Evaluation) -> tuple[float, float, str]:
    """(coverage, substitute cost, which plan) of the best plan known for a scenario with
    foresight of its date: its solve alone, or the hedged plan's posture there where that
    covers more (a feasible plan of the scenario alone: every requirement and limit holds in
    every scenario), as when the solve alone stopped at its time limit short of it. So EVPI
    is never negative."""
    if branch.feasible and branch.total > alone.objective["coverage"] + 1e-9:
        return branch.total, branch.substitute_cost, "hedged"
    return alone.objective["coverage"], alone.objective["substitute_cost"], "alone"


def explain_hedged_infeasibility(instance: Instance, options) -> list[str]:
    """Why no hedged plan exists: a scenario that has no plan even alone (explained as above),
    or else the non-anticipativity that commits decisions before the return date is known."""
    from layerdef.errors import InfeasibleError
    from layerdef.solve.deterministic import solve

    lines = []
    for scenario in instance.scenario_ids:
        world = instance.in_scenario(scenario)
        try:
            solve(world, time_limit=options.time_limit, threads=options.threads)
        except InfeasibleError:
            lines += [f"in scenario {scenario}: {line}"
                      for line in explain_infeasibility(world, "coverage", options)]
    if lines:
        return lines
    return [f"{instance.name}: every scenario alone has a plan that meets every requirement and "
            "limit, but no single plan does in all of them: decisions (moves, substitute requests "
            "a lead time ahead) must be taken before the return date is known; shorter leads, "
            "a larger budget or fewer requirements would make room"]
