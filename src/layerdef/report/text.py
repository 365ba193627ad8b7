"""Plain-text, CSV, JSON and Markdown renderings of solution and evaluation tables."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from layerdef.core.evaluate import Evaluation
    from layerdef.core.instance import Instance
    from layerdef.io.solution import Solution


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


def _gap_text(plan: "Solution") -> str:
    """How far a plan that stopped at the time limit (or at the gap asked for) may be from the
    optimum: the gap of its first objective, unknown without a bound, and none where that
    objective was proven and a later tie-break (cost, moves, turns) stopped."""
    if plan.status == "optimal":  # proven, or stopped within the gap asked for (`--gap`)
        return "" if not plan.gap or plan.gap <= 1e-9 else f" within the gap asked for ({plan.gap:.3%})"
    if plan.gap is None:
        return ", gap unknown (no bound yet)"
    if plan.gap <= 1e-9:
        first = "coverage" if plan.objective_kind == "coverage" else "substitute cost"
        return f", {first} proven optimal (a later tie-break stopped at the time limit)"
    return f", gap {plan.gap:.3%}"


def solution_summary(plan: "Solution") -> str:
    """The headline of a plan, then plan vs current vs reference per period."""
    if plan.hedged:
        return hedged_summary(plan)
    objective = plan.objective
    reference, current = plan.reference["coverage"], plan.current["coverage"]
    lines = [
        f"{plan.instance['name']}: {plan.status}{_gap_text(plan)} ({plan.objective_kind}, "
        f"{plan.wall_s:.2f} s, HiGHS {plan.solver.get('version', '')}). {NOTICE}",
        f"coverage {objective['coverage']:.4g} = {_share(objective['coverage'], reference)} of the "
        f"reference ({reference:.4g}); current posture {current:.4g} ({_share(current, reference)})",
        f"substitute cost {objective['substitute_cost']:g}, moves {objective['moves']}"
        + (f", turns {objective['turns']:g}" if "turns" in objective else ""),
        *_leakage_lines(plan),
        "",
        format_table(plan.summary[["period", "plan", "current", "reference", "share_of_reference",
                                   "substitute_cost", "moves",
                                   *(["turns"] if "turns" in plan.summary else [])]], "text"),
    ]
    if len(plan.substitutes):
        lines += ["", "substitutes requested:", format_table(plan.substitutes, "text")]
    if len(plan.moves):
        lines += ["", "moves:", format_table(plan.moves, "text")]
    if "defeat" in plan.tables and len(plan.tables["defeat"]):
        lines += ["", "probability of defeat by site (over periods, classes and launch areas; "
                  "leakers per 100 missiles aimed there):", format_table(_defeat_by_site(plan.tables["defeat"]), "text")]
    if "turns" in plan.tables and len(plan.tables["turns"]):
        lines += ["", "turns (headings in degrees from north):", format_table(plan.tables["turns"], "text")]
    if "heading" in plan.assignments:
        lines += ["", "headings (degrees from north; blank: sees every direction):",
                  format_table(_heading_table(plan.assignments), "text")]
    unmet = plan.current["unmet"]
    if unmet:
        lines += ["", f"the current posture misses {len(unmet)} requirement-period(s); the plan "
                      "meets every requirement"]
    return "\n".join(lines)


def _heading_table(assignments: pd.DataFrame) -> pd.DataFrame:
    """One row per sector-limited unit, one column per period: the heading it faces."""
    facing = assignments.dropna(subset=["heading"])
    table = facing.pivot(index="unit", columns="period", values="heading")
    return table.map(lambda v: "" if pd.isna(v) else f"{v:g}").reset_index()


def evaluation_summary(instance: "Instance", result: "Evaluation", fmt: str) -> str:
    """A scored posture: totals, per-period coverage, unmet requirements and violations."""
    if fmt != "text":
        return format_table(result.coverage, fmt)
    row = result.summary_row()
    turns = f", turns {result.turns_total}" if instance.has_turns else ""
    lines = [f"{instance.name}: coverage {row['coverage']:.4g}, substitute cost "
             f"{row['substitute_cost']:g}, moves {row['moves']}{turns}. {NOTICE}",
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


def common_periods(plan: "Solution") -> list[str]:
    """The periods, from the first, in which a hedged plan puts every unit in the same place
    in every scenario: what to do now, before knowing which scenario comes true."""
    assignments = plan.assignments
    periods = list(dict.fromkeys(plan.summary["period"]))
    common = []
    for period in periods:
        rows = assignments[assignments["period"] == period]
        postures = {frozenset(zip(group["unit"], group["position"]))
                    for _, group in rows.groupby("scenario", sort=False)}
        if len(postures) > 1 or rows["scenario"].nunique() < len(plan.scenarios):
            break
        common.append(period)
    return common


def hedged_summary(plan: "Solution") -> str:
    """A hedged plan: what to do now (the decisions common to every scenario), then how the
    plan goes on in each scenario, then what hedging is worth."""
    objective, reference, current = plan.objective, plan.reference["coverage"], plan.current["coverage"]
    measure = "expected" if plan.risk != "worst" else "worst-scenario"
    lines = [
        f"{plan.instance['name']}: {plan.status}{_gap_text(plan)} (hedged over {len(plan.scenarios)} "
        f"scenarios for the {measure} coverage, {plan.wall_s:.2f} s, HiGHS "
        f"{plan.solver.get('version', '')}). {NOTICE}",
        f"expected coverage {objective['coverage']:.4g} = "
        f"{_share(objective['coverage'], reference)} of the reference "
        f"({reference:.4g}); current posture {current:.4g}",
        f"expected substitute cost {objective['substitute_cost']:.4g}, expected moves "
        f"{objective['moves']:.4g}", "",
    ]
    lines += _common_decisions(plan)
    lines += ["", "by scenario:", format_table(scenario_table(plan), "text")]
    if plan.values:
        lines += [""] + value_lines(plan.values)
    return "\n".join(lines)


def _common_decisions(plan: "Solution") -> list[str]:
    common = common_periods(plan)
    periods = list(dict.fromkeys(plan.summary["period"]))
    if not common:
        return ["the plan differs between scenarios from the first period on"]
    first = plan.scenarios[0]["id"]
    span = common[0] if len(common) == 1 else f"{common[0]} .. {common[-1]}"
    lines = [f"what to do now, the same in every scenario ({span}):"]
    moves = plan.moves[(plan.moves["scenario"] == first) & plan.moves["period"].isin(common)]
    actions = [(periods.index(m.period), f"  {m.period}: move {m.unit} from {m['from']} to {m.to}")
               for _, m in moves.iterrows()]
    substitutes = plan.substitutes
    requested = substitutes[(substitutes["scenario"] == first) & substitutes["request_by"].isin(common)]
    for _, row in requested.iterrows():
        stays = substitutes[substitutes["unit"] == row["unit"]]
        by_last = stays.groupby("last", sort=True)["scenario"].apply(", ".join)
        until = (f"through {row['last']}" if len(by_last) == 1 else
                 "staying through " + "; ".join(f"{last} ({scenarios})" for last, scenarios in by_last.items()))
        verb = "arrives" if row["request_by"] == row["first"] else f"request it to arrive in {row['first']}"
        actions.append((periods.index(row["request_by"]), f"  {row['request_by']}: substitute "
                        f"{row['unit']} ({row['offer']}): {verb}, {until}"))
    lines += [text for _, text in sorted(actions, key=lambda action: action[0])]
    if len(lines) == 1:
        lines.append("  no move and no substitute: hold the current posture")
    if len(common) < len(periods):
        lines.append(f"from {periods[len(common)]} on, the plan depends on which scenario comes true")
    return lines


def scenario_table(plan: "Solution") -> pd.DataFrame:
    """One row per scenario of a hedged plan: probability, coverage, cost, moves, substitutes."""
    rows = []
    for entry in plan.scenarios:
        subs = plan.substitutes[plan.substitutes["scenario"] == entry["id"]]
        reference = entry["reference"]["coverage"]
        rows.append({"scenario": entry["id"], "probability": entry["probability"],
                     "coverage": entry["objective"]["coverage"],
                     "share_of_reference": entry["objective"]["coverage"] / reference if reference else 1.0,
                     "current": entry["current"]["coverage"],
                     "substitute_cost": entry["objective"]["substitute_cost"],
                     "moves": entry["objective"]["moves"],
                     "substitutes": "; ".join(f"{r.unit} {r.first}..{r.last}" for r in subs.itertuples())})
    return pd.DataFrame(rows)


def value_lines(values: dict) -> list[str]:
    """The value of the stochastic solution and of perfect information, in words."""
    plan_for = values["plan_for"]
    caveat = ("" if values["deterministic_feasible_everywhere"] else
              " (and it breaks a requirement or limit in some scenario)")
    statuses = [values["status"]["hedged"], *values["status"]["perfect"]]
    limited = ([] if all(status == "optimal" for status in statuses) else
               ["(some of these solves stopped at the time limit: the values are estimates, "
                "not proven)"])
    return limited + [
        f"value of the stochastic solution: {values['vss']:+.4g} coverage ({values['measure']}): "
        f"hedged {values['hedged']:.4g} vs {values['deterministic_replayed']:.4g} for the plan made "
        f"as if {plan_for} were certain, replayed in every scenario{caveat}; expected cost "
        f"{values['hedged_cost']:.4g} vs {values['deterministic_cost']:.4g}",
        f"expected value of perfect information: {values['evpi']:+.4g} coverage: "
        f"{values['perfect_information']:.4g} with foresight of the return date vs "
        f"{values['hedged']:.4g} hedged; expected cost {values['perfect_cost']:.4g} vs "
        f"{values['hedged_cost']:.4g}{_foresight_caveat(values)}",
    ]


def _foresight_caveat(values: dict) -> str:
    """Which scenarios' foresight figure is the hedged plan's own posture there (its solve
    alone stopped short of it)."""
    borrowed = [row["scenario"] for row in values.get("by_scenario", [])
                if row.get("perfect_from") == "hedged"]
    return (f" (in {', '.join(borrowed)} the solve alone stopped short of the hedged plan's "
            "posture there, which counts instead)") if borrowed else ""


def _share(value: float, reference: float) -> str:
    """A share of the reference coverage; with nothing in the reference there is no share
    ("100.0% of the reference (0)" said a plan of 0 was whole)."""
    return f"{value / reference:.1%}" if reference else "n/a"


def _leakage_lines(plan) -> list[str]:
    """With kill probabilities: leakers per 100 missiles, the plan against the current and the
    reference posture."""
    leak = plan.objective.get("leakers_per_100")
    if leak is None:
        return []
    current, reference = plan.current.get("leakers_per_100"), plan.reference.get("leakers_per_100")
    return [f"leakers per 100 missiles {leak:.2f}: {current - leak:.2f} fewer than the current "
            f"posture ({current:.2f}), {reference - leak:.2f} fewer than the reference ({reference:.2f})"]


def _defeat_by_site(table) -> "pd.DataFrame":
    """Per site: the least probability of defeat over periods, classes and launch areas, and
    the value-weighted mean leakers per 100."""
    weighted = table.assign(leaked=table["most"] - table["value"])
    grouped = weighted.groupby("site", sort=False)
    out = grouped.agg(least_defeat=("defeat", "min"), leaked=("leaked", "sum"), most=("most", "sum"))
    out["leakers_per_100"] = 100.0 * out["leaked"] / out["most"].where(out["most"] > 0)
    return out[["least_defeat", "leakers_per_100"]].round(3).reset_index()
