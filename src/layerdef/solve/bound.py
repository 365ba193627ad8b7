"""A coverage bound of our own where the LP relaxation is out of reach (the large theaters):
the Lagrangian relaxation of the depth rows, its multipliers improved by the volume algorithm.

The depth rows (`depth[s, l, t]`: depth levels reached <= units covering) hold most of the
model's nonzeros (558k of 688k on the medium benchmark). With multipliers lam >= 0 on them,

    L(lam) = max { c x - lam (A_depth x - b_depth) : x in the LP of every other row }

is at least the best coverage of any plan (each plan meets the depth rows, so the penalty is
never negative), whatever lam is: every value found is a valid bound. Without the depth rows
the LP is small and HiGHS re-solves it warm in milliseconds as lam changes. The volume
algorithm (Barahona and Anbil, 2000) steps lam against the residual of an average of the
inner solutions, which converges far faster than plain subgradient steps (medium: 1% over
the searched plan after 40 steps against 220)."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from layerdef.model.formulation import Formulation

VOLUME_AVERAGE = 0.1  # weight of the newest inner solution in the average


RED_STEPS = 20  # steps without a better bound before the step size shrinks


def depth_bound(form: Formulation, plan_value: float, initial: np.ndarray, seconds: float,
                report: Callable[[str], None] = lambda message: None,
                improved: Callable[[float], None] = lambda bound: None,
                stopped: Callable[[], bool] = lambda: False) -> float | None:
    """The least L(lam) found within `seconds` (None if the first inner LP fails or is
    stopped), from the multipliers `initial` (one per depth row, >= 0: e.g. what one more
    covering unit would add to the starting plan) and stepping towards `plan_value`, the
    coverage of a known plan.
    `improved` receives every better bound as it is found, `report` a closing line; it ends
    early once `stopped()` (the root LP beside it is solved)."""
    import highspy

    started = time.perf_counter()
    depth = form.rows["depth"]
    coverage = form.objectives["coverage"]
    depth_row, depth_col, depth_value = form.row_entries("depth")
    depth_row = depth_row - depth.start
    _, depth_upper = form.row_bounds()
    depth_rhs = depth_upper[depth.start:depth.start + depth.size]

    highs = _inner_model(form, highspy)

    def interrupt(event) -> None:  # the LP beside is solved: each inner LP stops at once
        if stopped():
            event.data_in.user_interrupt = True

    highs.cbSimplexInterrupt.subscribe(interrupt)
    highs.cbIpmInterrupt.subscribe(interrupt)

    def solve_at(multipliers: np.ndarray, first: bool = False) -> tuple[float, np.ndarray] | None:
        cost = coverage - np.bincount(depth_col, weights=depth_value * multipliers[depth_row],
                                      minlength=form.n_cols)
        highs.changeColsCost(form.n_cols, np.arange(form.n_cols, dtype=np.int32), cost)
        # the first evaluation always finishes unless stopped (the bound at the multipliers
        # given); a step's may not outlast `seconds` (on a theater of tens of millions of
        # nonzeros one inner LP had). HiGHS holds the limit against its summed run time
        left = seconds - (time.perf_counter() - started)
        highs.setOptionValue("time_limit", np.inf if first else highs.getRunTime() + max(left, 1e-3))
        highs.run()
        if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        solution = np.array(highs.getSolution().col_value)
        return highs.getInfo().objective_function_value + float(multipliers @ depth_rhs), solution

    def residual(solution: np.ndarray) -> np.ndarray:
        used = np.bincount(depth_row, weights=depth_value * solution[depth_col],
                           minlength=depth.size)
        return depth_rhs - used

    first = solve_at(np.maximum(initial, 0.0), first=True)
    if first is None:
        return None
    best, average = first
    improved(best)
    multipliers, step_size, reds, steps = np.maximum(initial, 0.0), 1.0, 0, 0
    while time.perf_counter() - started < seconds and best > plan_value and not stopped():
        direction = residual(average)
        norm = float(direction @ direction)
        if norm < 1e-12:
            break
        trial = np.maximum(0.0, multipliers - step_size * (best - plan_value) / norm * direction)
        found = solve_at(trial)
        if found is None:
            break
        bound, solution = found
        average = VOLUME_AVERAGE * solution + (1 - VOLUME_AVERAGE) * average
        steps += 1
        if bound < best:
            best, multipliers, step_size, reds = bound, trial, min(2.0, 1.1 * step_size), 0
            improved(best)
        else:
            reds += 1
            if reds >= RED_STEPS:
                step_size, reds = 0.66 * step_size, 0
    report(f"root: Lagrangian bound {best:.8g} after {steps} volume steps "
           f"({time.perf_counter() - started:.1f} s)")
    return best


def start_multipliers(form: Formulation, solution: np.ndarray) -> np.ndarray:
    """One multiplier per depth row: the coverage value of the first depth level the plan
    `solution` leaves unfilled there (what one more covering unit would add), 0 where every
    level is filled."""
    depth, levels = form.rows["depth"], form.columns["y"]
    row_of, index, _ = form.row_entries("depth")
    in_levels = (index >= levels.start) & (index < levels.start + levels.size)
    rows, cols = row_of[in_levels] - depth.start, index[in_levels]
    unfilled = solution[cols] < 0.5
    multipliers = np.zeros(depth.size)
    np.maximum.at(multipliers, rows[unfilled], form.objectives["coverage"][cols[unfilled]])
    return multipliers


def _inner_model(form: Formulation, highspy):
    """The LP of every row but the depth rows, maximizing, in a HiGHS instance of its own."""
    from layerdef.solve.lp import highs_lp

    lower, upper, _ = form.bounds()
    row_lower, row_upper = form.row_bounds()
    kept = form.kept_rows("depth")
    lp = highs_lp(lower, upper, row_lower[kept], row_upper[kept], form.csr(without="depth"))
    lp.sense_ = highspy.ObjSense.kMaximize
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.passModel(lp)
    return highs
