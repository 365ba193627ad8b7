"""Solve the model with HiGHS, lexicographically, and turn class counts back into units.

Stages: the primary objective (coverage, or cost for `min-cost`), then with it held, the
substitute cost, then the moves. Each later stage keeps the earlier values within a tiny
tolerance, so a plan never gives up coverage for cost or moves. The per-unit posture is
restored with the fewest moves the counts allow and evaluated independently: a plan whose
evaluation disagrees with the solver is a bug and raises PlanCheckError.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from layerdef.evaluate import evaluate
from layerdef.instance import Instance
from layerdef.model import build_model
from layerdef.solution import Solution

STAGE_TOLERANCE_ABS = 1e-6
STAGE_TOLERANCE_REL = 1e-9


class InfeasibleError(Exception):
    """The instance has no plan; `explanation` says why in the instance's own ids."""

    def __init__(self, explanation: list[str]):
        super().__init__("\n".join(explanation))
        self.explanation = explanation


class NoSolutionError(Exception):
    """The solver found no plan within the limits (time), though one may exist."""


class PlanCheckError(Exception):
    """The restored plan's own evaluation contradicts the solver: a bug, never user error."""


@dataclass
class SolverOptions:
    time_limit: float | None = None
    gap: float = 0.0
    threads: int | None = None
    log: bool = False

    def as_dict(self) -> dict:
        return {"time_limit": self.time_limit, "gap": self.gap, "threads": self.threads}


@dataclass
class StageResult:
    status: str  # optimal | time_limit | no_solution | infeasible
    objective: float | None
    bound: float | None
    wall_s: float


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send file descriptor 1 to stderr while HiGHS runs: its banner and log are progress,
    not results, and stdout must stay clean for them."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


class HighsRunner:
    """Pyomo's persistent appsi HiGHS interface, with status mapping and guarded loading."""

    def __init__(self, options: SolverOptions):
        from pyomo.contrib.appsi.solvers import Highs

        self.options = options
        with stdout_to_stderr():
            self.solver = Highs()
        self.solver.config.load_solution = False
        self.solver.config.stream_solver = options.log
        self.solver.config.mip_gap = options.gap
        self.solver.highs_options = {"output_flag": options.log, "mip_abs_gap": 1e-9,
                                     "mip_feasibility_tolerance": 1e-9,
                                     "primal_feasibility_tolerance": 1e-9}
        if options.threads:
            self.solver.highs_options["threads"] = int(options.threads)

    @property
    def version(self) -> str:
        return ".".join(str(part) for part in self.solver.version())

    def run(self, model: pyo.ConcreteModel, time_limit: float | None,
            warm_start: bool = False) -> StageResult:
        """Solve once; `warm_start` hands the variables' current values to HiGHS."""
        from pyomo.contrib.appsi.base import TerminationCondition as TC

        self.solver.config.time_limit = time_limit
        self.solver.config.warmstart = warm_start
        started = time.perf_counter()
        with stdout_to_stderr():
            result = self.solver.solve(model)
        wall = time.perf_counter() - started
        condition = result.termination_condition
        has_incumbent = result.best_feasible_objective is not None and np.isfinite(
            result.best_feasible_objective)
        if condition == TC.optimal:
            status = "optimal"
        elif condition in (TC.infeasible, TC.infeasibleOrUnbounded):
            status = "infeasible"
        elif has_incumbent:
            status = "time_limit"
        else:
            status = "no_solution"
        if status in ("optimal", "time_limit"):
            with stdout_to_stderr():
                result.solution_loader.load_vars()
        bound = result.best_objective_bound
        return StageResult(status, result.best_feasible_objective if has_incumbent else None,
                           float(bound) if bound is not None and np.isfinite(bound) else None, wall)


def solve(instance: Instance, objective: str | None = None, time_limit: float | None = None,
          gap: float = 0.0, threads: int | None = None, log: bool = False,
          write_model: str | None = None) -> Solution:
    """Solve lexicographically and return the checked plan with its comparisons."""
    started = time.perf_counter()
    objective = objective or instance.objective
    options = SolverOptions(time_limit, gap, threads, log)
    model = build_model(instance, objective)
    build_s = time.perf_counter() - started
    if write_model:
        model.write(write_model, io_options={"symbolic_solver_labels": True})
    runner = HighsRunner(options)
    stages = ([model.maximize_coverage, model.minimize_cost, model.minimize_moves]
              if objective == "coverage" else [model.minimize_cost, model.minimize_moves])
    first = None
    for index, stage in enumerate(stages):
        for other in stages:
            other.deactivate()
        stage.activate()
        remaining = None if time_limit is None else max(time_limit - (time.perf_counter() - started), 1.0)
        result = runner.run(model, remaining)
        _progress(log, f"stage {index + 1}/{len(stages)} ({stage.name}): {result.status}, "
                       f"objective {result.objective}, {result.wall_s:.2f} s")
        if index == 0:
            if result.status == "infeasible":
                from layerdef.explain import explain_infeasibility

                raise InfeasibleError(explain_infeasibility(instance, objective, runner))
            if result.status == "no_solution":
                raise NoSolutionError(f"no plan found within {time_limit} s")
            first = result
        elif result.status in ("no_solution", "infeasible"):
            break  # keep the previous stage's plan: its values are still loaded
        if index + 1 < len(stages):
            _hold(model, stage, pyo.value(stage.expr))
    posture = restore_posture(instance, model)
    plan = evaluate(instance, posture)
    _check(instance, model, plan, first, objective)
    status = "optimal" if first.status == "optimal" else "time_limit"
    primary = plan.total if objective == "coverage" else plan.substitute_cost
    bound = first.bound if first.bound is not None else primary
    gap_value = abs(bound - primary) / max(abs(primary), 1e-9) if status != "optimal" else 0.0
    return Solution.from_evaluations(
        instance=instance, objective_kind=objective, status=status, bound=bound, gap=gap_value,
        solver={"name": "highs", "interface": "pyomo.appsi", "version": runner.version,
                "options": options.as_dict()},
        wall_s=time.perf_counter() - started, build_s=build_s, plan=plan, posture=posture,
        current=evaluate(instance, instance.current_posture()),
        reference=evaluate(instance, instance.reference_posture()))


def _hold(model: pyo.ConcreteModel, stage: pyo.Objective, value: float) -> None:
    """Keep a finished stage's objective at its value (within tolerance) for later stages."""
    tolerance = STAGE_TOLERANCE_ABS + STAGE_TOLERANCE_REL * abs(value)
    name = f"hold_{stage.name}"
    bound = value - tolerance if stage.sense == pyo.maximize else value + tolerance
    constraint = stage.expr >= bound if stage.sense == pyo.maximize else stage.expr <= bound
    model.add_component(name, pyo.Constraint(expr=constraint))


def _check(instance: Instance, model: pyo.ConcreteModel, plan, first: StageResult, objective: str):
    """The evaluation of the restored posture must reproduce the solver's figures."""
    problems = list(plan.violations)
    if plan.shortfall.any():
        problems.append("requirements unmet in the restored plan")
    model_cost = pyo.value(model.substitute_cost)
    model_moves = pyo.value(model.moves_total_expr)
    if abs(plan.substitute_cost - model_cost) > 1e-6 * max(1.0, abs(model_cost)):
        problems.append(f"substitute cost: evaluation {plan.substitute_cost} vs model {model_cost}")
    if abs(plan.moves_total - model_moves) > 1e-6:
        problems.append(f"moves: evaluation {plan.moves_total} vs model {model_moves}")
    model_coverage = pyo.value(model.coverage)
    tolerance = 1e-6 * max(1.0, abs(model_coverage))
    if plan.total < model_coverage - tolerance:
        problems.append(f"coverage: evaluation {plan.total} below model {model_coverage}")
    if objective == "coverage" and plan.total < first.objective - tolerance:
        problems.append(f"coverage: evaluation {plan.total} below stage-1 value {first.objective}")
    if problems:
        raise PlanCheckError("the plan contradicts its own evaluation (a bug in layerdef):\n  "
                             + "\n  ".join(problems))


def _progress(log: bool, message: str) -> None:
    if log:
        print(f"layerdef: {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- identities


def _place(previous: list[int], quota: np.ndarray) -> list[int | None]:
    """New position of each unit given where it stood: stay where the count allows, fill the
    remaining counts with the others (a move each), and let the rest leave (None)."""
    quota = quota.copy()
    placed: list[int | None] = [None] * len(previous)
    for i, p in enumerate(previous):
        if p is not None and p >= 0 and quota[p] > 0:
            placed[i] = p
            quota[p] -= 1
    open_slots = [p for p in range(len(quota)) for _ in range(int(quota[p]))]
    for i in range(len(previous)):
        if placed[i] is None and open_slots:
            placed[i] = open_slots.pop(0)
    return placed


def _counts(model: pyo.ConcreteModel, variable: str, key_of, size: int) -> dict:
    """Rounded values of z or z_sub as {group key: (P,) counts}."""
    out: dict = {}
    for index, var in getattr(model, variable).items():
        count = int(round(var.value or 0))
        if count:
            p, key = index[0], key_of(index)
            out.setdefault(key, np.zeros(size, dtype=np.int64))[p] += count
    return out


def restore_posture(instance: Instance, model: pyo.ConcreteModel) -> pd.DataFrame:
    """Per-unit posture from the solved class counts, with the fewest moves they allow."""
    P, T = len(instance.position_ids), instance.T
    rows: list[tuple[int, str, int]] = []
    z = _counts(model, "z", lambda i: (i[1], i[2]), P)
    for c, unit_class in enumerate(model.classes):
        members = list(unit_class.members)
        homes = [int(instance.unit_home[u]) for u in members]
        where = homes
        for t in range(T):
            if not unit_class.present[t]:
                continue
            if unit_class.fixed:
                where = homes
            else:
                returning = t > 0 and not unit_class.present[t - 1]
                where = _place(homes if returning else where,
                               z.get((c, t), np.zeros(P, dtype=np.int64)))
            rows.extend((t, instance.unit_ids[u], p) for u, p in zip(members, where))
    z_sub = _counts(model, "z_sub", lambda i: (i[1], i[2], i[3]), P)
    next_unit = [0] * len(instance.offer_ids)
    for f, arrival, stay in model.cohorts:
        size = int(round(model.rotation[f, arrival, arrival].value or 0))
        if not size:
            continue
        ids = instance.substitute_unit_ids(f)[next_unit[f]:next_unit[f] + size]
        next_unit[f] += size
        where: list[int | None] = [None] * size
        for t in stay:
            where = _place(where, z_sub.get((f, arrival, t), np.zeros(P, dtype=np.int64)))
            rows.extend((t, unit, p) for unit, p in zip(ids, where) if p is not None)
            ids = [unit for unit, p in zip(ids, where) if p is not None]
            where = [p for p in where if p is not None]
    rows.sort(key=lambda r: (r[0], r[1]))
    return pd.DataFrame({"period": [instance.periods[t] for t, _, _ in rows],
                         "unit": [u for _, u, _ in rows],
                         "position": [instance.position_ids[p] for _, _, p in rows]})
