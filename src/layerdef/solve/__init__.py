"""Solving: the back-ends, the root step and bounds, starting plans, the lexicographic stages,
the explanation of infeasibility, and the deterministic and hedged drivers. `solve` dispatches
to the one the instance needs."""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator

import pandas as pd

from layerdef.core.instance import Instance
from layerdef.errors import Problem, UsageError
from layerdef.io.solution import Solution
from layerdef.solve.backend import LOGGER, logged_to_stderr
from layerdef.solve.deterministic import solve as solve_deterministic
from layerdef.solve.hedged import solve_scenarios


def solve(instance: Instance, objective: str | None = None, time_limit: float | None = None,
          gap: float = 0.0, threads: int | None = None, log: bool = False,
          write_model: str | None = None, model=None, start: pd.DataFrame | None = None,
          risk: str = "expected", plan_for: str | None = None, values: bool = True,
          keep_until: int | None = None) -> Solution:
    """The checked plan of an instance: lexicographic (coverage, then cost, then moves; or
    cost then moves for `min-cost`), or with scenarios the hedged plan (`risk` "expected" or
    "worst"; `plan_for` and `values` for the value of the stochastic solution). `model`,
    `start`, `keep_until` and `write_model`: see `layerdef.solve.deterministic.solve`. Progress goes to the
    `layerdef` logger; `log=True` shows it on stderr for this call, where no handler is set."""
    with progress_on_stderr(log):
        return _solve(instance, objective, time_limit, gap, threads, write_model, model, start,
                      risk, plan_for, values, keep_until)


def _solve(instance, objective, time_limit, gap, threads, write_model, model, start, risk,
           plan_for, values, keep_until) -> Solution:
    if model is not None and instance.kill_probability:
        raise UsageError([Problem(str(instance.path), "with `value: kill-probability` the plan is "
                                     "solved by the fast path only, which adds the tangent cuts "
                                     "plans break as it goes; a Pyomo model holds the first "
                                     "cuts alone and would overstate the value", "value")])
    if not instance.scenario_ids:
        return solve_deterministic(instance, objective, time_limit, gap, threads, write_model,
                                   model, start, keep_until)
    kind = objective or instance.objective
    if model is not None or start is not None or write_model or kind != "coverage":
        raise UsageError([Problem(str(instance.path), "with scenarios, solve makes a hedged "
                                     "plan for the coverage objective only (no model, start, "
                                     "--write-model or min-cost); plan for one scenario with "
                                     "--scenario ID", "scenarios")])
    return solve_scenarios(instance, risk, time_limit, gap, threads, plan_for, values)


@contextlib.contextmanager
def progress_on_stderr(wanted: bool) -> Iterator[None]:
    """While solving, progress records of the `layerdef` logger on stderr, when `wanted` and
    nobody (the CLI, the caller) has given the logger a handler of their own."""
    if not wanted or LOGGER.handlers:
        yield
        return
    with logged_to_stderr(min(LOGGER.level or logging.INFO, logging.INFO)):
        yield
