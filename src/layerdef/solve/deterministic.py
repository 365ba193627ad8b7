"""Solve the model with HiGHS, lexicographically, and turn class counts back into units.

Stages: the primary objective (coverage, or cost for `min-cost`), then with it held, the
substitute cost, then the moves. Each later stage keeps the earlier values within a tiny
tolerance, so a plan never gives up coverage for cost or moves, and starts from the previous
stage's plan. Where the values lie on a grid, the stages fold exactly into one weighted stage
(`lexicographic_stages`), whose plan must then prove itself (`run_lexicographic`). The
per-unit posture is restored with the fewest moves the counts allow and evaluated
independently: a plan whose evaluation disagrees with the solver is a bug and raises
PlanCheckError.

Two back-ends run the same stages: `HighsBackend` passes the formulation's arrays to highspy
in one call (the default, fast path); `PyomoBackend` solves a Pyomo model from `build_model`
that the user may have extended, through Pyomo's appsi HiGHS interface."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from layerdef.core.evaluate import Evaluation, evaluate
from layerdef.core.geometry import heading_degrees
from layerdef.core.instance import Instance
from layerdef.errors import (
    InfeasibleError,
    NoSolutionError,
    PlanCheckError,
)
from layerdef.io.solution import Solution
from layerdef.model.formulation import (
    Formulation,
    formulate,
    plan_solution,
    posture_solution,
)
from layerdef.model.scenarios import define_kept_decisions
from layerdef.solve.backend import (
    ROOT_LP_SHARE,
    HighsBackend,
    PyomoBackend,
    SolverOptions,
    StageResult,
    lexicographic_stages,
    progress,
    solver_log,
    stdout_to_stderr,
    time_left,
)
from layerdef.solve.heuristic import greedy_plan, search_plan

STAGE_TOLERANCE_ABS = 1e-6


STAGE_TOLERANCE_REL = 1e-9
#: with a gap allowed (`--gap`), a later stage (cost, moves, turns: tie-breaks under a primary
#: value that is itself not proven) gets at most the first stage's time, this much at least:
#: on a 40-site theater with kill probabilities, `--gap 0.05` ended stage 1 at 2.5% in 13 s and
#: then ran the cost stage for minutes at a 98% gap it could not close
LATER_STAGE_SECONDS_WITH_GAP = 10.0




def solve(instance: Instance, objective: str | None = None, time_limit: float | None = None,
          gap: float = 0.0, threads: int | None = None,
          write_model: str | None = None, model=None, start: pd.DataFrame | None = None,
          keep_until: int | None = None, stop_at: float | None = None) -> Solution:
    """Solve an instance without scenarios lexicographically and return the checked plan with
    its comparisons.

    `model`: a Pyomo model from `build_model(instance)`, possibly extended; solved through
    Pyomo instead of the fast path. `start`: a posture (period, unit, position) to start
    from instead of the greedy plan, e.g. the plan of a neighbouring study point.
    `keep_until`: the start's decisions before this period are kept (a reaction to news
    that arrives then; `define_kept_decisions`). `stop_at`: stop at the first plan whose
    coverage reaches it (status `time_limit`, no later stage; the robust search's oracle needs
    no more of a withdrawal that cannot be the worst).
    """
    started = time.perf_counter()
    options = SolverOptions(time_limit, gap, threads, solver_log())
    if model is not None:
        backend = PyomoBackend(model, options)
    else:
        form = formulate(instance, objective)
        if keep_until is not None:
            define_kept_decisions(form, plan_solution(form, start), keep_until)
        backend = HighsBackend(form, options)
        if stop_at is not None and form.objective_kind != "coverage":
            raise ValueError("stop_at is a coverage: it needs the coverage objective")
        backend.stop_at = stop_at
    form = backend.form
    build_s = time.perf_counter() - started
    progress(f"model: {form.n_rows} rows, {form.n_cols} columns, "
                  f"{form.nonzeros} nonzeros, built in {build_s:.2f} s")
    if write_model:
        _write_model(backend, write_model)
    current = evaluate(instance, instance.current_posture())
    if start is None:
        start_values = starting_plan(instance, form, time_limit, current, backend, started)
    else:
        start_values = plan_solution(form, start)
        sharpened = sharpen_start(backend, start_values, time_left(time_limit, started))
        start_values = start_values if sharpened is None else sharpened

    def explain() -> list[str]:
        from layerdef.solve.explain import explain_infeasibility

        if keep_until is not None:
            return [f"{instance.name}: with the plan's decisions before "
                    f"{instance.periods[min(keep_until, instance.T - 1)]} kept, no reaction meets every requirement"]
        return explain_infeasibility(instance, form.objective_kind, options)

    def evaluated(solution: np.ndarray) -> tuple[float, float, float]:
        plan = evaluate(instance, restore_posture(form, solution))
        return plan.total, plan.substitute_cost, plan.moves_total

    first, solution, finished = run_lexicographic(backend, start_values, time_limit, started,
                                                  explain, evaluated)
    posture = restore_posture(form, solution)
    plan = evaluate(instance, posture)
    primary_name = first.objective
    coverage = (float(form.objectives["coverage"] @ first.solution)
                if form.objective_kind == "coverage" else None)
    check_plan(form, solution, plan, coverage, finished)
    status = lexicographic_status(first, finished)
    bound, gap_value = _bound_and_gap(form, primary_name, first, plan, backend.gap > 0)
    return Solution.from_evaluations(
        instance=instance, objective_kind=form.objective_kind, status=status, bound=bound,
        gap=gap_value, solver={"name": "highs", "interface": backend.name,
                               "version": backend.version, "options": options.as_dict()},
        wall_s=time.perf_counter() - started, build_s=build_s, plan=plan, posture=posture,
        current=current, reference=evaluate(instance, instance.reference_posture()))


def lexicographic_status(first: StageResult, finished: bool) -> str:
    """`optimal` only when every stage was proven (coverage, then cost, then moves); a plan
    whose coverage is proven but whose later stage ran out of time is `time_limit` (its gap,
    that of the first stage, may be 0: cost or moves may still be improvable). A first stage
    stopped at the value asked for (`stop_at`) is `time_limit` too: nothing is proven."""
    if first.status == "target":
        return "time_limit"
    return "time_limit" if first.status == "optimal" and not finished else first.status


def run_lexicographic(backend, solution: np.ndarray | None, time_limit: float | None,
                      started: float, explain,
                      evaluated) -> tuple[StageResult, np.ndarray, bool]:
    """`run_stages` over `lexicographic_stages`. A plan from the one weighted stage must prove
    itself: the weighted objective of its restored, evaluated plan (`evaluated(solution)`:
    coverage, cost, moves) within half a step of the bound HiGHS proved (unless a gap was
    allowed). At that weight, integrality tolerances could buy phantom coverage worth more
    than a move; a plan that fails is solved again in stages, from itself."""
    form = backend.form
    stages = lexicographic_stages(form)
    first, solution, finished = run_stages(backend, stages, solution, time_limit, started,
                                           explain)
    if first.objective != "coverage_cost_moves" or first.status != "optimal" or backend.gap > 0:
        return first, solution, finished  # no claim to prove, or a gap allowed
    coverage, cost, moves = evaluated(solution)
    weighted = -form.coverage_weight * coverage + form.cost_weight * cost + moves
    if weighted <= first.bound + 0.5 * form.tie_break_step:
        return first, solution, finished
    progress("the one-stage plan's evaluation falls short of its bound: solving in stages")
    backend.loosen()  # the root step's bounds were drawn for the weighted objective
    return run_stages(backend, lexicographic_stages(form, one_stage=False), solution, time_limit,
                      started, explain)


def run_stages(backend, stages: list[tuple[str, int]], solution: np.ndarray | None,
               time_limit: float | None, started: float,
               explain) -> tuple[StageResult, np.ndarray, bool]:
    """Solve the stages in turn, each holding the ones before and starting from the last plan.
    Returns the first stage's result (status, bound), the final plan's column values and
    whether every stage ran to optimality (else the time ran out, and the plan's moves may
    be overcounted by the model: nothing minimized them to the end; a later stage at its
    best does not make up for an earlier one cut short); raises InfeasibleError
    (with `explain()`) or NoSolutionError from the first stage."""
    form, first, finished = backend.form, None, True
    for index, (name, sense) in enumerate(stages):
        backend.set_objective(name, sense)
        remaining = time_left(time_limit, started)
        if index > 0 and backend.gap > 0:
            allowed = max(LATER_STAGE_SECONDS_WITH_GAP, first.wall_s)
            remaining = allowed if remaining is None else min(remaining, allowed)
        if remaining is not None and remaining <= 0 and index > 0:
            finished = False
            break  # out of time: keep the plan of the stages done
        if index > 0 and solution is not None and at_its_best(form, form.objectives[name], sense, solution):
            result = StageResult("optimal", solution, float(form.objectives[name] @ solution), 0.0)
            progress(f"stage {index + 1} ({name}): optimal, no plan could do better")
        else:
            if solution is not None:
                backend.start_from(solution)
            result = backend.run(remaining)
            progress(f"stage {index + 1} ({name}): {result.status} in {result.wall_s:.2f} s")
        if index == 0:
            if result.status == "infeasible":
                raise InfeasibleError(explain())
            if result.status == "no_solution":
                raise NoSolutionError(f"no plan found within {time_limit} s")
            first = result
            first.objective = name
        elif result.status in ("no_solution", "infeasible"):
            finished = False
            break  # keep the previous stage's plan, which meets every held value
        solution = result.solution
        finished = (finished or index == 0) and result.status == "optimal"  # every stage so far
        if result.status == "target":
            break  # the plan reaches what was asked of it: no later stage
        if index + 1 < len(stages):
            backend.hold(name, sense, held_value(form, form.objectives[name], sense, solution))
    return first, solution, finished


def at_its_best(form: Formulation, vector: np.ndarray, sense: int, solution: np.ndarray) -> bool:
    """Whether `solution` already reaches the best value `vector` takes within the column
    bounds alone (no turns where turns are minimized): the stage has nothing to prove."""
    lower, upper, _ = form.bounds()
    signed = sense * vector
    costed = signed != 0
    best = signed[costed] * np.where(signed[costed] > 0, lower[costed], upper[costed])
    if not np.all(np.isfinite(best)):
        return False
    return float(signed @ solution) <= float(best.sum()) + STAGE_TOLERANCE_ABS


def held_value(form: Formulation, vector: np.ndarray, sense: int, solution: np.ndarray) -> float:
    """The bound a later stage keeps on an earlier stage's objective: its value, loosened by a
    tiny tolerance and by what HiGHS's integrality tolerance (1e-6) may have shaved off an
    integer column: at offer costs of 3e4 a count of 1 - 8e-7 held the cost 0.024 below the
    plans with whole counts, and the moves stage could only pick among the shaved ones."""
    achieved = float(vector @ solution)
    integer = form.bounds()[2]
    shaved = 1e-6 * float(np.abs(vector[integer & (np.abs(solution) > 1e-9)]).sum())
    return achieved + sense * (STAGE_TOLERANCE_ABS + STAGE_TOLERANCE_REL * abs(achieved) + shaved)


def starting_plan(instance: Instance, form: Formulation, time_limit: float | None,
                  current: Evaluation, backend=None, started: float | None = None) -> np.ndarray | None:
    """The plan HiGHS starts its first stage from, when the current posture meets every
    requirement and limit (else None): the greedy plan sharpened by the root step of `backend`
    (`sharpen_start`); where that cannot run (no back-end given, the Pyomo back-end, a model
    above `ROOT_MAX_NONZEROS`, no LP within half the time) the greedy plan improved by local
    search instead, at worst the current posture. Where the root LP is slow or out of reach,
    the back-end also gets a Lagrangian bound of our own (`HighsBackend.bound_from`), beside
    the LP (when the LP is not solved, HiGHS's MIP is not started: `HighsBackend.run`).
    `started`: when the time limit's clock began (the solve's start, its build included;
    default now)."""
    if not current.feasible:
        return None
    started = time.perf_counter() if started is None else started
    seconds = 10.0 if time_limit is None else min(60.0, 0.2 * time_limit)  # it stops early when done
    rooted = backend is not None and backend.can_sharpen
    where, rotations = greedy_plan(instance, seconds, lambda message: progress(message),
                                   search=not rooted)
    start = posture_solution(form, where, rotations)
    if backend is None or not (rooted or backend.can_bound):
        return start
    # where the LP is slow, the Lagrangian bound runs beside it on the other core; above
    # ROOT_MAX_NONZEROS the LP gets all the time (HiGHS's MIP would begin with the same LP,
    # at three times the memory), else ROOT_LP_SHARE of it and the local search the rest
    backend.set_objective(*lexicographic_stages(form)[0])
    sharpened = backend.sharpen(start, time_left(time_limit, started),
                                lp_share=ROOT_LP_SHARE if rooted else 1.0,
                                bound_beside=backend.can_bound)
    if sharpened is not None:
        return sharpened
    left = time_left(time_limit, started)
    if rooted and (left is None or left > 0):  # the greedy plan is searched in the time left
        where, rotations = search_plan(instance, where, rotations, seconds if left is None else min(seconds, left),
                                       lambda message: progress(message))
        start = posture_solution(form, where, rotations)
    return start


def sharpen_start(backend, start: np.ndarray, time_limit: float | None) -> np.ndarray | None:
    """The root step (`HighsBackend.sharpen`) for the first stage's objective; None when it
    cannot run."""
    if not backend.can_sharpen:
        return None
    backend.set_objective(*lexicographic_stages(backend.form)[0])
    return backend.sharpen(start, time_limit)


def coverage_bound(form: Formulation, first: StageResult) -> float | None:
    """The first stage's bound on (expected or worst) coverage, also from one weighted stage."""
    if first.bound is None or first.objective != "coverage_cost_moves":
        return first.bound
    return form.coverage_bound(first.bound)


def _bound_and_gap(form: Formulation, primary: str, first: StageResult, plan: Evaluation,
                   gap_allowed: bool = False) -> tuple[float | None, float | None]:
    """The first stage's bound in the primary objective's own units, and the relative gap;
    both None when the time ran out before HiGHS had a bound. A stage HiGHS calls optimal is
    proven (gap 0) unless a gap was allowed: then it stopped within that gap, measured here."""
    coverage = primary in ("coverage", "coverage_cost_moves")
    achieved = plan.total if coverage else plan.substitute_cost
    optimal = first.status == "optimal"
    if first.bound is None:
        return claimed_gap(optimal, gap_allowed, None, achieved)
    if coverage:
        bound = max(coverage_bound(form, first), achieved)
    else:
        bound = first.bound
        if primary == "cost_then_moves":  # W x cost + moves >= bound, moves <= most_moves
            bound = max(0.0, (bound - form.most_moves) / form.cost_weight)
        bound = min(bound, achieved)
    return claimed_gap(optimal, gap_allowed, bound, achieved)


def claimed_gap(optimal: bool, gap_allowed: bool, bound: float | None,
                achieved: float) -> tuple[float | None, float | None]:
    """(bound, relative gap) a plan reports: proven (its own value, 0) when HiGHS called it
    optimal with no gap allowed; else measured from the bound, none without one (the
    deterministic and the hedged plan alike)."""
    if optimal and not (gap_allowed and bound is not None):
        return achieved, 0.0
    if bound is None:
        return None, None
    return bound, abs(bound - achieved) / max(abs(achieved), 1e-9)


def _write_model(backend, path: str) -> None:
    """The model as the first stage solves it, its objective included (the stage that decides
    the plan: coverage, or coverage, cost and moves in one weighted stage where that is exact;
    scaled by an exact power of two where its coefficients are large, as HiGHS gets it); the
    Pyomo model as the user holds it, its active objective."""
    if isinstance(backend, HighsBackend):
        backend.set_objective(*lexicographic_stages(backend.form)[0])
        with stdout_to_stderr(backend.log):
            backend.highs.writeModel(str(path))
    else:
        backend.model.write(str(path), io_options={"symbolic_solver_labels": True})


def check_plan(form: Formulation, solution: np.ndarray, plan: Evaluation, coverage: float | None,
               moves_minimized: bool = True) -> None:
    """The evaluation of the restored posture must reproduce the solver's figures. The model
    counts at least every move (`move_definition` rows are >=), exactly once a stage has
    minimized them (`moves_minimized`)."""
    problems = list(plan.violations)
    if (plan.shortfall > 1e-6).any():
        problems.append("requirements unmet in the restored plan")
    model_cost = float(form.objectives["substitute_cost"] @ solution)
    model_moves = float(form.objectives["moves"] @ solution)
    model_coverage = float(form.objectives["coverage"] @ solution)
    cost_slack = max(1e-6 * abs(model_cost), _rounding(form.objectives["substitute_cost"], solution))
    if abs(plan.substitute_cost - model_cost) > cost_slack:
        problems.append(f"substitute cost: evaluation {plan.substitute_cost} vs model {model_cost}")
    overcount = model_moves - plan.moves_total
    slack = _rounding(form.objectives["moves"], solution)
    if overcount < -slack or (moves_minimized and overcount > slack):
        problems.append(f"moves: evaluation {plan.moves_total} vs model {model_moves}")
    if "turns" in form.objectives:
        model_turns = float(form.objectives["turns"] @ solution)
        slack = _rounding(form.objectives["turns"], solution)
        over = model_turns - plan.turns_total
        if over < -slack or (moves_minimized and over > slack):
            problems.append(f"turns: evaluation {plan.turns_total} vs model {model_turns}")
    tolerance = 1e-6 * max(1.0, abs(model_coverage))
    if plan.total < model_coverage - tolerance:
        problems.append(f"coverage: evaluation {plan.total} below model {model_coverage}")
    if coverage is not None and plan.total < coverage - tolerance:
        problems.append(f"coverage: evaluation {plan.total} below the first stage's {coverage}")
    if problems:
        raise PlanCheckError("the plan contradicts its own evaluation (a bug in layerdef):\n  "
                             + "\n  ".join(problems))


def _rounding(vector: np.ndarray, solution: np.ndarray) -> float:
    """How far `vector @ solution` may lie from its value at the rounded counts: HiGHS takes an
    integer column within 1e-6 of an integer, and two moves at 6.7e-7 each summed past 1e-6
    (a random hedged instance)."""
    used = np.abs(solution) > 1e-9
    return 1e-6 * max(1.0, float(np.abs(vector[used]).sum()))


def _place(previous: list[int | None], quota: np.ndarray) -> list[int | None]:
    """New position of each unit given where it stood: stay where the count allows, fill the
    remaining counts with the others (a move each), and let the rest leave (None)."""
    quota = quota.copy()
    placed: list[int | None] = [None] * len(previous)
    for i, p in enumerate(previous):
        if p is not None and quota[p] > 0:
            placed[i] = p
            quota[p] -= 1
    open_slots = [p for p in range(len(quota)) for _ in range(int(quota[p]))]
    for i in range(len(previous)):
        if placed[i] is None and open_slots:
            placed[i] = open_slots.pop(0)
    return placed


def _place_facing(previous: list[tuple[int, int] | None], quota: np.ndarray, facing: np.ndarray,
                  moved: np.ndarray) -> list[tuple[int | None, int | None]]:
    """`_place` for units that face a heading: (position, heading) of each unit given where it
    stood and faced. At each position stay as many as the model's counts say (`quota` less the
    arrivals `moved`), those whose heading is still wanted there (`facing - moved`) first; the
    others move to the remaining counts, never back to where they stood (under turn limits the
    model may swap two units rather than turn them), or leave; headings then go to the
    arrivals as `moved` says, and to the stayers whose heading is no longer wanted (a turn
    each), so that turns are as few as the counts allow."""
    P = len(quota)
    left = facing.copy()
    staying = np.maximum(facing - moved, 0)
    was_there = np.bincount([b[0] for b in previous if b is not None], minlength=P)
    room = np.minimum(was_there, np.maximum(quota - moved.sum(axis=1), 0))  # stayers per position
    placed: list[list] = [[None, None] for _ in previous]
    turning: list[int] = []
    for i, before in enumerate(previous):  # stayers that keep their heading
        if before is not None and room[before[0]] > 0 and staying[before] > 0:
            placed[i] = [before[0], before[1]]
            room[before[0]] -= 1
            staying[before] -= 1
            left[before] -= 1
    for i, before in enumerate(previous):  # stayers that turn
        if before is not None and placed[i][0] is None and room[before[0]] > 0:
            placed[i][0] = before[0]
            room[before[0]] -= 1
            turning.append(i)
    stayed = np.bincount([place[0] for place in placed if place[0] is not None], minlength=P)
    slots = np.maximum(quota - stayed, 0)
    arriving = _arrivals(previous, placed, slots)
    wanted = moved.copy()
    for group, prefer in ((arriving, wanted), (turning, staying)):
        for i in group:
            p = placed[i][0]
            order = np.nonzero(np.minimum(prefer[p], left[p]) > 0)[0]
            h = int(order[0]) if len(order) else int(np.nonzero(left[p] > 0)[0][0])
            placed[i][1] = h
            left[p, h] -= 1
            prefer[p, h] = max(prefer[p, h] - 1, 0)
    return [tuple(place) for place in placed]


def _arrivals(previous: list, placed: list[list], slots: np.ndarray) -> list[int]:
    """Fill the open `slots` with the units not yet placed, none at the position it stood at
    (units that stood nowhere go anywhere): the position with the most slots and movers left
    is served first, from the origin with the most movers left. Returns the units placed."""
    movers: dict[int, list[int]] = {}
    for i, place in enumerate(placed):
        if place[0] is None:
            origin = previous[i][0] if previous[i] is not None else -1
            movers.setdefault(origin, []).append(i)
    slots = slots.copy()
    arriving = []
    while slots.sum() > 0 and any(movers.values()):
        pressure = slots + np.array([len(movers.get(p, [])) for p in range(len(slots))])
        target = int(np.argmax(np.where(slots > 0, pressure, -1)))
        origins = [o for o, units in movers.items() if units and o != target]
        if not origins:
            origins = [target]  # no other origin left (not a plan the model's rows allow)
        origin = max(origins, key=lambda o: (len(movers[o]) + (slots[o] if o >= 0 else 0), -o))
        i = movers[origin].pop(0)
        placed[i][0] = target
        slots[target] -= 1
        arriving.append(i)
    return arriving


def restore_posture(form: Formulation, solution: np.ndarray) -> pd.DataFrame:
    """Per-unit posture from the solved class counts, with the fewest moves they allow, and
    where units face a heading, the fewest turns (column `heading`, degrees)."""
    instance = form.instance
    P, T, F, H = len(instance.position_ids), instance.T, len(instance.offer_ids), instance.H
    oriented = instance.sector_limited & (H > 1)
    rows: list[tuple[int, str, int, int | None]] = []
    z = form.dense(solution, "z", (P, len(form.classes), T))
    facing = moved = None
    if "facing" in form.columns:
        facing = form.dense(solution, "facing", (P, H, len(form.classes), T))
        moved = form.dense(solution, "moved_facing", (P, H, len(form.classes), T))
    for c, unit_class in enumerate(form.classes):
        members = list(unit_class.members)
        homes = [int(instance.unit_home[u]) for u in members]
        headed = bool(oriented[unit_class.system])
        home_headings = [int(instance.unit_heading[u]) for u in members]
        where: list = list(zip(homes, home_headings)) if headed else list(homes)
        for t in range(T):
            if not unit_class.present[t]:
                continue
            if not unit_class.fixed:
                returning = t > 0 and not unit_class.present[t - 1]
                if headed:
                    before = [None] * len(members) if returning else where
                    where = _place_facing(before, z[:, c, t], facing[:, :, c, t],
                                          np.zeros((P, H), np.int64) if returning else moved[:, :, c, t])
                else:
                    where = _place(homes if returning else where, z[:, c, t])
            rows.extend((t, instance.unit_ids[u], *_stand(p, headed, instance, u))
                        for u, p in zip(members, where))
    rotation = form.dense(solution, "rotation", (F, T, T))
    z_sub = form.dense(solution, "z_sub", (P, F, T, T))
    if "facing_sub" in form.columns:
        facing_sub = form.dense(solution, "facing_sub", (P, H, F, T, T))
        moved_sub = form.dense(solution, "moved_facing_sub", (P, H, F, T, T))
    next_unit = [0] * F
    for f in range(F):
        headed = bool(oriented[instance.offer_system[f]])
        one_heading = 0 if instance.sector_limited[instance.offer_system[f]] else None
        for arrival in range(T):
            size = int(rotation[f, arrival, arrival])
            if not size:
                continue
            ids = instance.substitute_unit_ids(f)[next_unit[f]:next_unit[f] + size]
            next_unit[f] += size
            where = [None] * size
            for t in range(arrival, T):
                if not rotation[f, arrival, t]:
                    break
                if headed:
                    where = _place_facing(where, z_sub[:, f, arrival, t], facing_sub[:, :, f, arrival, t],
                                          moved_sub[:, :, f, arrival, t]
                                          if t > arrival else np.zeros((P, H), np.int64))
                    kept = [i for i, place in enumerate(where) if place[0] is not None]
                else:
                    where = _place(where, z_sub[:, f, arrival, t])
                    kept = [i for i, place in enumerate(where) if place is not None]
                ids = [ids[i] for i in kept]
                where = [where[i] for i in kept]
                rows.extend((t, unit, *(place if headed else (place, one_heading)))
                            for unit, place in zip(ids, where))
    rows.sort(key=lambda r: (r[0], r[1]))
    posture = pd.DataFrame({"period": [instance.periods[t] for t, _, _, _ in rows],
                            "unit": [u for _, u, _, _ in rows],
                            "position": [instance.position_ids[p] for _, _, p, _ in rows]})
    if instance.sector_limited.any():
        degrees = heading_degrees(H)
        posture["heading"] = [float(degrees[h]) if h is not None else np.nan for _, _, _, h in rows]
    return posture


def _stand(place, headed: bool, instance: Instance, u: int) -> tuple[int, int | None]:
    """(position, heading index or None) of a restored unit."""
    if headed:
        return int(place[0]), int(place[1])
    if instance.sector_limited[instance.unit_system[u]]:
        return int(place), 0  # one heading: the only one there is
    return int(place), None
