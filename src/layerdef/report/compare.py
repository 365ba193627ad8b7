"""Reference vs current vs plans: per period, per site and layer, requirements, cost and moves.

Every figure comes from `evaluate` on the postures themselves (the plans' assignment tables),
so a comparison always agrees with the evaluator. Plans solved on another instance file
(a different SHA-256) are refused."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from layerdef.core.evaluate import Evaluation, evaluate, expected
from layerdef.core.instance import Instance, period_ranges
from layerdef.core.replay import replay_posture
from layerdef.errors import InstanceError, Problem, UsageError
from layerdef.io.solution import Solution


@dataclass
class Comparison:
    """The postures side by side; `names` are reference, current, then one per plan."""

    instance: Instance
    names: list[str]
    evaluations: dict[str, Evaluation]
    solutions: dict[str, Solution]

    @property
    def plan(self) -> Evaluation:
        """The evaluation of the last plan compared (the one a report draws)."""
        return self.evaluations[self.names[-1]]

    @property
    def by_period(self) -> pd.DataFrame:
        """Coverage per period of every posture, each plan's share of the reference and the
        share of the withdrawal's loss (reference - current) it closes."""
        reference = self.evaluations["reference"].value_by_period
        current = self.evaluations["current"].value_by_period
        table = pd.DataFrame({"period": self.instance.periods, "reference": reference, "current": current})
        loss = reference - current
        for name in self.names[2:]:
            value = self.evaluations[name].value_by_period
            table[name] = value
            table[f"{name}_share"] = [v / r if r > 0 else 1.0 for v, r in zip(value, reference)]
            table[f"{name}_gap_closed"] = [(v - c) / g if g > 1e-12 else None
                                           for v, c, g in zip(value, current, loss)]
        return table

    @property
    def by_site(self) -> pd.DataFrame:
        """Per site and layer: coverage over the horizon for each posture, and the periods in
        which each posture covers it less than the reference does."""
        inst = self.instance
        frames = {name: evaluation.coverage for name, evaluation in self.evaluations.items()}
        keys = ["site", "layer", *(["threat"] if inst.threat_ids else [])]  # per launch area
        table = frames["reference"].groupby(keys, sort=False)["value"].sum().rename("reference").reset_index()
        reference = frames["reference"].set_index(["period", *keys])["value"]
        for name in self.names[1:]:
            frame = frames[name]
            table = table.merge(frame.groupby(keys, sort=False)["value"].sum().rename(name).reset_index(),
                                on=keys)
            below = frame.set_index(["period", *keys])["value"] < reference - 1e-9
            lost = below[below].reset_index().groupby(keys, sort=False)["period"].apply(
                lambda periods: period_ranges(inst.periods, np.isin(inst.periods, list(periods))))
            table[f"{name}_below_reference"] = [lost.get(key, "") for key in zip(*(table[k] for k in keys))]
        return table

    @property
    def plans(self) -> pd.DataFrame:
        """One row per posture: coverage, share of the reference, requirements met, cost, moves,
        substitutes requested."""
        reference_total = self.evaluations["reference"].total
        rows = []
        for name in self.names:
            evaluation = self.evaluations[name]
            required = int(((self.instance.requirement > 0)[:, :, None]
                            & self.instance.threatens.T[None]).sum() * self.instance.T)
            unmet = int((evaluation.shortfall > 1e-9).sum())
            subs = evaluation.substitutes
            rows.append({
                "posture": name, "coverage": evaluation.total,
                "share_of_reference": evaluation.total / reference_total if reference_total else 1.0,
                **({"leakers_per_100": evaluation.leakers_per_100}
                   if self.instance.kill_probability else {}),
                "requirements_met": f"{required - unmet}/{required}",
                "substitute_cost": evaluation.substitute_cost, "moves": evaluation.moves_total,
                **({"turns": evaluation.turns_total} if self.instance.has_turns else {}),
                "substitutes": "; ".join(f"{r.unit} {r.first}..{r.last}" for r in subs.itertuples()),
                "status": self.solutions[name].status if name in self.solutions else "",
            })
        return pd.DataFrame(rows)

    @property
    def long(self) -> pd.DataFrame:
        """Tidy table: posture, period, site, layer, units, value, required, shortfall."""
        frames = []
        for name in self.names:
            frame = self.evaluations[name].coverage.copy()
            frame.insert(0, "posture", name)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)


def compare(instance: Instance, solutions: list[tuple[str, Solution]],
            scenario: str | None = None) -> Comparison:
    """Evaluate the reference, the current posture and every plan on one instance, or in one
    of its scenarios: there a hedged plan is its own posture for that scenario and any other
    plan is replayed (units back earlier than planned stand at home)."""
    problems = [Problem(str(path), f"solved on instance {solution.instance.get('name')!r} with "
                        f"sha256 {str(solution.instance.get('sha256'))[:12]}..., not on this file "
                        f"({instance.sha256[:12]}...); solve it again on this instance")
                for path, solution in solutions if solution.instance.get("sha256") != instance.sha256]
    if problems:
        raise InstanceError(problems)
    if scenario is not None:
        instance = instance.in_scenario(scenario)
        solutions = [(path, solution.in_scenario(scenario) if solution.hedged else solution)
                     for path, solution in solutions]
    elif instance.scenario_ids and any(solution.hedged for _, solution in solutions):
        raise UsageError([Problem(str(instance.path), "a hedged plan has one posture per "
                                     "scenario: compare it in one scenario (--scenario ID) or in "
                                     "all of them (compare_scenarios)", "scenarios")])
    evaluations = {"reference": evaluate(instance, instance.reference_posture()),
                   "current": evaluate(instance, instance.current_posture())}
    names = ["reference", "current"]
    plans = {}
    for path, solution in solutions:
        name = _unique(Path(path).stem, names)
        names.append(name)
        plans[name] = solution
        posture = replay_posture(instance, solution.posture) if scenario else solution.posture
        evaluations[name] = evaluate(instance, posture)
    return Comparison(instance, names, evaluations, plans)


def compare_scenarios(instance: Instance, solutions: list[tuple[str, Solution]]) -> dict[str, Comparison]:
    """One comparison per scenario of the instance, in its order."""
    return {scenario: compare(instance, solutions, scenario) for scenario in instance.scenario_ids}


def expected_plans(instance: Instance, comparisons: dict[str, Comparison]) -> pd.DataFrame:
    """Per posture: coverage, cost and moves expected over the scenarios, the worst scenario's
    coverage, and in how many scenarios it meets every requirement and limit."""
    probability = [dict(zip(instance.scenario_ids, instance.scenario_probability))[s] for s in comparisons]
    names = next(iter(comparisons.values())).names
    rows = []
    for name in names:
        evaluations = [c.evaluations[name] for c in comparisons.values()]
        mean = expected([e.figures for e in evaluations], probability)
        rows.append({
            "posture": name,
            "expected_coverage": mean["coverage"],
            "worst_coverage": min(e.total for e in evaluations),
            "expected_cost": mean["substitute_cost"],
            "expected_moves": mean["moves"],
            "feasible_in": f"{sum(e.feasible for e in evaluations)}/{len(evaluations)}",
        })
    return pd.DataFrame(rows)


def render(comparison: Comparison, fmt: str) -> str:
    """The comparison as text, markdown, csv (the tidy table) or json (every table)."""
    from layerdef.report.text import NOTICE, format_table

    if fmt == "csv":
        return comparison.long.to_csv(index=False)
    if fmt == "json":
        return json.dumps({name: json.loads(getattr(comparison, name).to_json(orient="records"))
                           for name in ("plans", "by_period", "by_site")}, indent=1)
    style = "markdown" if fmt == "markdown" else "text"
    heading = (lambda title: f"## {title}") if style == "markdown" else (lambda title: f"{title}:")
    by_site = comparison.by_site
    losing = by_site[(by_site.filter(like="_below_reference") != "").any(axis=1)]
    return "\n\n".join([
        f"{comparison.instance.name}: reference vs current vs {len(comparison.names) - 2} plan(s). {NOTICE}",
        heading("postures"), format_table(comparison.plans, style),
        heading("coverage per period (share of reference, share of the loss closed)"),
        format_table(comparison.by_period, style),
        heading("sites and layers covered less than in the reference"),
        format_table(losing, style) if len(losing) else "(none)",
    ])


def render_scenarios(instance: Instance, comparisons: dict[str, Comparison], fmt: str) -> str:
    """Comparisons in every scenario and the expectation over them: text, markdown, csv (the
    tidy table with a scenario column) or json."""
    from layerdef.report.text import NOTICE, format_table

    expected = expected_plans(instance, comparisons)
    if fmt == "csv":
        return pd.concat([c.long.assign(scenario=s) for s, c in comparisons.items()], ignore_index=True
                         ).pipe(lambda table: table[["scenario", *table.columns[:-1]]]).to_csv(index=False)
    if fmt == "json":
        return json.dumps({"expected": json.loads(expected.to_json(orient="records")),
                           "scenarios": {s: {name: json.loads(getattr(c, name).to_json(orient="records"))
                                             for name in ("plans", "by_period", "by_site")}
                                         for s, c in comparisons.items()}}, indent=1)
    style = "markdown" if fmt == "markdown" else "text"
    heading = (lambda title: f"## {title}") if style == "markdown" else (lambda title: f"{title}:")
    probability = dict(zip(instance.scenario_ids, instance.scenario_probability))
    parts = [f"{instance.name}: reference vs current vs plans in {len(comparisons)} scenarios. {NOTICE}",
             heading("expected over the scenarios"), format_table(expected, style)]
    for scenario, comparison in comparisons.items():
        parts += [heading(f"scenario {scenario} (probability {probability[scenario]:g})"),
                  format_table(comparison.plans, style), format_table(comparison.by_period, style)]
    return "\n\n".join(parts)


def _unique(name: str, taken: list[str]) -> str:
    candidate, index = name, 2
    while candidate in taken:
        candidate, index = f"{name}-{index}", index + 1
    return candidate
