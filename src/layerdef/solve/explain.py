"""Why a model is infeasible, in the user's terms.

The elastic model lets each requirement (and each period's coverage target under `min-cost`)
fall short at a price and minimizes the total shortfall. What it cannot close is reported
per site, layer and run of periods; then each limit and the absences are relaxed one at a
time to name the ones that make it so."""

from __future__ import annotations

import dataclasses

import numpy as np

from layerdef.core.instance import Instance, period_mask, period_ranges
from layerdef.model.formulation import formulate

RELAXATIONS = (
    ("substitute_budget", "raising substitute_budget", {"substitute_budget": None}),
    ("moves_per_period", "lifting moves_per_period", {"moves_per_period": None}),
    ("moves_total", "lifting moves_total", {"moves_total": None}),
    ("turns_per_period", "lifting turns_per_period", {"turns_per_period": None}),
    ("turns_total", "lifting turns_total", {"turns_total": None}),
)


def elastic_shortfall(instance: Instance, objective: str, options) -> tuple[dict, dict]:
    """Least total shortfall: ({(s, l, g, t): units short}, {target cell: coverage value
    short}), a target cell being (t,) or, under `target_scope: site`, (s, l or class, g, t)."""
    from layerdef.solve.backend import HighsBackend

    form = formulate(instance, objective)
    backend = HighsBackend(form, options)
    shortfall = form.columns["shortfall"]
    backend.relax("shortfall", instance.requirement[shortfall.index[:, 0], shortfall.index[:, 1]])
    vector = np.zeros(form.n_cols)
    vector[shortfall.ids] = 1.0
    target = form.columns.get("target_shortfall")
    if target is not None:
        backend.relax("target_shortfall", np.full(target.size, np.inf))
        vector[target.ids] = 1.0 / max(1.0, float(instance.site_weight.sum() * instance.layer_weight.sum()))
    backend.set_vector_objective(vector)
    result = backend.run(options.time_limit)  # the user's limit bounds each explaining solve too
    if result.solution is None:
        return {}, {}
    units = {tuple(int(i) for i in key): _count(v)
             for key, v in zip(shortfall.index, form.values(result.solution, "shortfall")) if v > 1e-6}
    value = ({tuple(int(i) for i in key): float(v)
              for key, v in zip(target.index, form.values(result.solution, "target_shortfall"))
              if v > 1e-6} if target is not None else {})
    return units, value


def explain_infeasibility(instance: Instance, objective: str, options) -> list[str]:
    """Lines that name each unmet requirement and what makes it unmeetable."""
    units, value = elastic_shortfall(instance, objective, options)
    lines = [f"{instance.name}: no plan meets every requirement"
             + (" and coverage target" if objective == "min-cost" else "") + "."]
    for (s, l), (areas, periods) in _group(units).items():
        short = max(v for (s2, l2, _, _), v in units.items() if (s2, l2) == (s, l))
        against = (f", launch area{'s' if len(areas) > 1 else ''} "
                   f"{', '.join(instance.threat_ids[g] for g in areas)}" if instance.threat_ids else "")
        lines.append(f"requirement not met: site {instance.site_ids[s]}, layer {instance.layers[l]}"
                     f"{against}, periods {_span(instance, periods)}: {instance.requirement[s, l]} "
                     f"unit(s) required, short by up to {_shown(short)}")
        if not instance.cover[:, :, :, s, l, :].any():
            lines.append(f"  why: no system of the instance covers {instance.site_ids[s]} in "
                         f"{instance.layers[l]} from any position")
        elif instance.threat_ids:
            lines += _why_against(instance, s, l, areas)
    lines += _target_lines(instance, value)
    total = sum(units.values()) + sum(value.values())
    for name, words, change in RELAXATIONS:
        if getattr(instance, name) is None:
            continue
        relaxed_units, relaxed_value = elastic_shortfall(dataclasses.replace(instance, **change),
                                                         objective, options)
        relaxed = sum(relaxed_units.values()) + sum(relaxed_value.values())
        if relaxed < total - 1e-9:
            lines.append(f"  binding: {words} (now {getattr(instance, name)}) would cut the "
                         f"shortfall from {_shown(total)} to {_shown(relaxed)}")
    away = ~instance.present.all(axis=1)
    if away.any():
        relaxed_units, relaxed_value = elastic_shortfall(
            dataclasses.replace(instance, present=np.ones_like(instance.present)), objective, options)
        relaxed = sum(relaxed_units.values()) + sum(relaxed_value.values())
        if relaxed < total - 1e-9:
            names = ", ".join(instance.unit_ids[u] for u in np.nonzero(away)[0])
            lines.append(f"  binding: the absence of {names}; with every unit present the "
                         f"shortfall would be {_shown(relaxed)}")
    for words, change in _position_relaxations(instance):
        relaxed_units, relaxed_value = elastic_shortfall(dataclasses.replace(instance, **change),
                                                         objective, options)
        relaxed = sum(relaxed_units.values()) + sum(relaxed_value.values())
        if relaxed < total - 1e-9:
            lines.append(f"  binding: {words}; without it the shortfall would be {_shown(relaxed)}")
    if not any(line.startswith("  binding:") or line.startswith("  why:") for line in lines):
        lines.append("  binding: no single limit or absence; lifting each one alone (budget, move "
                     "limits, capacities, hosts, fixed units, units away) leaves the shortfall")
        lines += _what_would_help(instance, units)
    return lines


def _target_lines(instance: Instance, value: dict) -> list[str]:
    """The coverage target's shortfalls: per period, or per site, layer (threat class) and
    launch area with the runs of periods where it falls short."""
    if all(len(key) == 1 for key in value):
        return [f"coverage target not met: period {instance.periods[t]}, short by {short:.4g} "
                f"(target {instance.target:g} x reference coverage)" for (t,), short in sorted(value.items())]
    kind, names = ("threat class", instance.class_ids) if instance.kill_probability else ("layer", instance.layers)
    groups: dict[tuple[int, int, int], list[int]] = {}
    for s, x, g, t in sorted(value):
        groups.setdefault((s, x, g), []).append(t)
    lines = []
    for (s, x, g), periods in groups.items():
        area = f", launch area {instance.threat_ids[g]}" if instance.threat_ids else ""
        short = max(value[(s, x, g, t)] for t in periods)
        lines.append(f"coverage target not met: site {instance.site_ids[s]}, {kind} {names[x]}{area}, "
                     f"periods {_span(instance, periods)}: short by up to {short:.4g} of its "
                     f"reference coverage (target {instance.target:g} x reference, target_scope: site)")
    return lines


def _position_relaxations(instance: Instance) -> list[tuple[str, dict]]:
    """Where units may stand, relaxed one rule at a time: capacities, hosts, fixed units."""
    most = len(instance.unit_ids) + int(instance.offer_count.sum())
    relaxations = []
    if (instance.capacity < most).any():
        relaxations.append(("the capacity of the positions",
                            {"capacity": np.full_like(instance.capacity, most)}))
    if not instance.admits.all():
        relaxations.append(("the hosts of the positions (who may stand where)",
                            {"admits": np.ones_like(instance.admits)}))
    if instance.unit_fixed.any():
        relaxations.append(("the fixed units", {"unit_fixed": np.zeros_like(instance.unit_fixed)}))
    return relaxations


def _why_against(instance: Instance, s: int, l: int, areas: list[int]) -> list[str]:
    """Why a requirement fails against some launch areas: none covers the site against one of
    them from any position and heading, or no single heading sees them all."""
    lines = []
    for g in areas:
        if not instance.cover[:, :, :, s, l, g].any():
            lines.append(f"  why: no unit covers {instance.site_ids[s]} in {instance.layers[l]} "
                         f"against {instance.threat_ids[g]} from any position or heading")
    threatening = np.nonzero(instance.threatens[:, l])[0]
    if len(threatening) > 1 and not lines:
        together = instance.cover[:, :, :, s, l, :][..., threatening].all(axis=-1).any()
        if not together:
            lines.append(f"  why: no position and heading covers {instance.site_ids[s]} in "
                         f"{instance.layers[l]} against all of "
                         f"{', '.join(instance.threat_ids[g] for g in threatening)} at once: each "
                         f"unit faces one heading, so the requirement needs a unit per direction")
    return lines


def _shown(value: float) -> str:
    """A shortfall as a planner reads it: to two decimals (a sum of units in action, shares of a
    period where downtime cuts them), without the solver's last digits (15.3999, 7.9998)."""
    return f"{round(float(value), 2):g}"


def _count(value: float) -> float:
    """A shortfall in units: whole, unless relocation downtime makes it a fraction."""
    return float(round(value)) if abs(value - round(value)) < 1e-6 else round(float(value), 4)


def _what_would_help(instance: Instance, units: dict) -> list[str]:
    """Per unmet requirement, which systems could meet it from which positions."""
    lines = []
    for (s, l), (_, periods) in _group(units).items():
        reach = instance.cover[:, :, :, s, l, :].any(axis=(2, 3))
        systems = [instance.systems[k] for k in np.nonzero(reach.any(axis=1))[0]]
        positions = [instance.position_ids[p] for p in np.nonzero(reach.any(axis=0))[0]]
        if systems:
            lines.append(f"  what would: more units (or substitute offers) of {', '.join(systems)} "
                         f"in {_span(instance, periods)} at {', '.join(positions[:6])}"
                         f"{' ...' if len(positions) > 6 else ''}, or a "
                         f"requirement of less than {instance.requirement[s, l]} at "
                         f"{instance.site_ids[s]} ({instance.layers[l]})")
    return lines


def _group(units: dict) -> dict[tuple[int, int], tuple[list[int], list[int]]]:
    """(site, layer) -> (launch areas, periods) of the shortfalls."""
    groups: dict[tuple[int, int], tuple[list[int], list[int]]] = {}
    for (s, l, g, t) in sorted(units):
        areas, periods = groups.setdefault((s, l), ([], []))
        if g not in areas:
            areas.append(g)
        if t not in periods:
            periods.append(t)
    for areas, periods in groups.values():
        periods.sort()
    return groups


def _span(instance: Instance, periods: list[int]) -> str:
    return period_ranges(instance.periods, period_mask(instance.T, periods))
