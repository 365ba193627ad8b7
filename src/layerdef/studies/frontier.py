"""Coverage against substitute budget: one solve per budget, each starting from the previous point's plan."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from layerdef.core.instance import Instance
from layerdef.errors import Problem, UsageError
from layerdef.studies.bar import StudyProgress

FRONTIER_COLUMNS = ["budget", "coverage", "share_of_reference", "substitute_cost", "substitutes_used",
                    "moves", "status", "gap"]


def parse_range(text: str, what: str = "--budgets") -> list[float]:
    """`start:stop:step` (inclusive) or `a,b,c` as numbers."""
    try:
        if ":" in text:
            start, stop, step = (float(part) for part in text.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            return [round(start + i * step, 10) for i in range(int(np.floor((stop - start) / step + 1e-9)) + 1)]
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError([Problem(what, f"{text!r}: expected start:stop:step with step > 0 "
                                     "or a comma-separated list of numbers")])


def frontier(instance: Instance, budgets: Iterable[float],
             time_limit: float | None = None) -> pd.DataFrame:
    """Coverage against substitute budget, each point solved lexicographically and started
    from the previous point's plan.

    A plan for a smaller budget is feasible for a larger one, so the curve cannot fall; a
    time-limited point that does worse keeps the previous point's plan (status says so). A
    budget too small for any plan (a requirement needs a substitute) is a point with status
    `infeasible` and no figures: where the frontier starts is part of the answer. When no
    budget has a plan, the largest one's explanation is raised. With scenarios each point is a
    hedged plan (expected figures; no start, no values of information).
    """
    from layerdef.errors import InfeasibleError, NoSolutionError
    from layerdef.solve import solve

    rows: list[dict[str, Any]] = []
    previous = None  # the last plan: feasible for every larger budget, so HiGHS starts there
    last_solved: dict[str, Any] | None = None  # the last point with a plan
    explanation: InfeasibleError | None = None  # why the largest budget without a plan has none
    budgets = sorted(budgets)
    shown = StudyProgress("frontier", len(budgets))
    for budget in budgets:
        started = time.perf_counter()
        try:
            plan = solve(dataclasses.replace(instance, substitute_budget=float(budget)),
                         time_limit=time_limit, start=previous, values=False)
        except (InfeasibleError, NoSolutionError) as error:
            status = "no_solution"
            if isinstance(error, InfeasibleError):
                status, explanation = "infeasible", error
            rows.append({"budget": float(budget), "status": status})
            shown.step(f"budget {budget:g}: {status} ({time.perf_counter() - started:.1f} s)")
            continue
        previous = None if plan.hedged else plan.posture
        row = {"budget": float(budget), "coverage": plan.objective["coverage"],
               "share_of_reference": plan.objective["coverage"] / plan.reference["coverage"]
               if plan.reference["coverage"] else 1.0,
               "substitute_cost": plan.objective["substitute_cost"],
               "substitutes_used": _substitutes_used(plan), "moves": plan.objective["moves"],
               "status": plan.status, "gap": plan.gap}
        if last_solved is not None and row["coverage"] < last_solved["coverage"] - 1e-6:
            row = {**last_solved, "budget": float(budget), "status": "kept-previous"}
        rows.append(row)
        last_solved = row
        shown.step(f"budget {budget:g}: coverage {row['coverage']:.6g} ({row['status']}, "
                   f"{time.perf_counter() - started:.1f} s)")
    shown.close()
    if last_solved is None and explanation is not None:
        raise explanation
    return pd.DataFrame(rows, columns=FRONTIER_COLUMNS)


def _substitutes_used(plan) -> float:
    """Substitute units requested; for a hedged plan, expected over the scenarios."""
    if not plan.hedged:
        return len(plan.substitutes)
    counts = plan.substitutes["scenario"].value_counts()
    return float(sum(entry["probability"] * counts.get(entry["id"], 0) for entry in plan.scenarios))


def marginal_lines(table: pd.DataFrame) -> list[str]:
    """What each extra unit of budget buys, point to point."""
    lines = []
    solved = table.dropna(subset=["coverage"])
    for before, after in zip(solved.itertuples(), solved.iloc[1:].itertuples()):
        step = after.budget - before.budget
        gain = after.coverage - before.coverage
        lines.append(f"budget {before.budget:g} -> {after.budget:g}: +{gain:.4g} coverage "
                     f"({gain / step if step else 0:.4g} per unit of budget)")
    return lines


def frontier_figure(table: pd.DataFrame, name: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.5, 3.5))
    axes.step(table["budget"], table["coverage"], where="post", marker="o", markersize=3)
    axes.set_xlabel("substitute budget")
    axes.set_ylabel("coverage value")
    axes.set_title(f"{name}: coverage against substitute budget (public, notional data)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=150)
    plt.close(figure)
