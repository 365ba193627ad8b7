"""Plain-text, CSV, JSON and Markdown renderings of solution and evaluation tables."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from layerdef.evaluate import Evaluation
    from layerdef.instance import Instance
    from layerdef.solution import Solution

NOTICE = "All data public and notional."


def format_table(table: pd.DataFrame, fmt: str) -> str:
    """A table as text, csv, json (records) or markdown."""
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "json":
        return json.dumps(json.loads(table.to_json(orient="records")), indent=1)
    if fmt == "markdown":
        return markdown_table(table)
    if table.empty:
        return "(no rows)"
    return table.to_string(index=False, float_format=lambda v: f"{v:.4g}")


def markdown_table(table: pd.DataFrame) -> str:
    cells = [[_cell(v) for v in row] for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(map(str, table.columns)) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def solution_summary(plan: "Solution") -> str:
    """The headline of a plan, then plan vs current vs reference per period."""
    objective = plan.objective
    reference, current = plan.reference["coverage"], plan.current["coverage"]
    share = objective["coverage"] / reference if reference else 1.0
    gap_text = ("" if plan.status == "optimal" else ", gap unknown (no bound yet)"
                if plan.gap is None else f", gap {plan.gap:.3%}")
    lines = [
        f"{plan.instance['name']}: {plan.status}{gap_text} ({plan.objective_kind}, "
        f"{plan.wall_s:.2f} s, HiGHS {plan.solver.get('version', '')}). {NOTICE}",
        f"coverage {objective['coverage']:.4g} = {share:.1%} of the reference "
        f"({reference:.4g}); current posture {current:.4g} ({current / reference if reference else 1:.1%})",
        f"substitute cost {objective['substitute_cost']:g}, moves {objective['moves']}",
        "",
        format_table(plan.summary[["period", "plan", "current", "reference", "share_of_reference",
                                   "substitute_cost", "moves"]], "text"),
    ]
    if len(plan.substitutes):
        lines += ["", "substitutes requested:", format_table(plan.substitutes, "text")]
    if len(plan.moves):
        lines += ["", "moves:", format_table(plan.moves, "text")]
    unmet = plan.current["unmet"]
    if unmet:
        lines += ["", f"the current posture misses {len(unmet)} requirement-period(s); the plan "
                      "meets every requirement"]
    return "\n".join(lines)


def evaluation_summary(instance: "Instance", result: "Evaluation", fmt: str) -> str:
    """A scored posture: totals, per-period coverage, unmet requirements and violations."""
    if fmt != "text":
        return format_table(result.coverage, fmt)
    row = result.summary_row()
    lines = [f"{instance.name}: coverage {row['coverage']:.4g}, substitute cost "
             f"{row['substitute_cost']:g}, moves {row['moves']}. {NOTICE}",
             format_table(pd.DataFrame({"period": instance.periods,
                                        "coverage": result.value_by_period,
                                        "moves": result.moves_by_period}), "text")]
    if len(result.unmet):
        lines += ["unmet requirements:", format_table(result.unmet, "text")]
    if result.violations:
        lines += ["violations:"] + [f"  {v}" for v in result.violations]
    else:
        lines.append("no rule broken")
    return "\n".join(lines)
