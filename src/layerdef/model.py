"""The Pyomo formulation: integer unit counts per class of interchangeable units.

Read it beside `models/coverage.md`, which gives the math and names each symbol defined here.
Units that share system, owner, fixed flag and away periods form a class; the model decides
how many of each class stand at each position in each period (`z`), never which one, so
that HiGHS does not explore symmetric copies of the same posture. Substitute units are
tracked per rotation cohort (the units of an offer that arrive in the same period), which
keeps their moves exact when rotation lengths force particular units to leave.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

from layerdef.instance import Instance


@dataclass(frozen=True)
class UnitClass:
    """Interchangeable organic units: same system, owner, fixed flag and presence pattern."""

    system: int
    owner: int
    fixed: bool
    present: tuple[bool, ...]
    members: tuple[int, ...]  # unit indices, in file order

    @property
    def size(self) -> int:
        return len(self.members)


def unit_classes(instance: Instance) -> list[UnitClass]:
    """Group the organic units into classes of interchangeable units (homes do not matter:
    they enter as each class's starting counts)."""
    groups: dict[tuple, list[int]] = {}
    for u in range(len(instance.unit_ids)):
        key = (int(instance.unit_system[u]), int(instance.unit_owner[u]),
               bool(instance.unit_fixed[u]), tuple(bool(x) for x in instance.present[u]))
        groups.setdefault(key, []).append(u)
    return [UnitClass(*key, members=tuple(members)) for key, members in groups.items()]


def home_counts(instance: Instance, unit_class: UnitClass) -> np.ndarray:
    """(P,) units of the class whose home is each position."""
    return np.bincount(instance.unit_home[list(unit_class.members)],
                       minlength=len(instance.position_ids))


def cohorts(instance: Instance) -> list[tuple[int, int, list[int]]]:
    """(offer, arrival period, periods a rotation arriving then may stay on station)."""
    result = []
    for f in range(len(instance.offer_ids)):
        for arrival in range(int(instance.offer_earliest[f]), instance.T):
            last = min(instance.T, arrival + int(instance.offer_max_periods[f]))
            result.append((f, arrival, list(range(arrival, last))))
    return result


def reference_coverage_by_period(instance: Instance) -> np.ndarray:
    """(T,) coverage value of the reference posture, the yardstick of the `min-cost` target."""
    from layerdef.evaluate import evaluate

    return evaluate(instance, instance.reference_posture()).value_by_period


def build_model(instance: Instance, objective: str | None = None) -> pyo.ConcreteModel:
    """The Pyomo model of an instance; `objective` is `coverage` or `min-cost` (default: the
    instance's). Every stage objective is present; `solve` activates one at a time."""
    objective = objective or instance.objective
    m = pyo.ConcreteModel(name=instance.name)
    m.instance = instance
    m.objective_kind = objective
    T, P = instance.T, len(instance.position_ids)
    S, L, K = len(instance.site_ids), len(instance.layers), len(instance.systems)
    J = len(instance.depth_weights)
    cover = instance.cover  # (K, P, S, L)
    classes = unit_classes(instance)
    m.classes = classes
    movable = [c for c, unit_class in enumerate(classes) if not unit_class.fixed]

    # -- organic units: z[p, c, t]
    z_index = [(p, c, t) for c in movable for t in range(T) if classes[c].present[t]
               for p in range(P) if instance.admits[p, classes[c].owner]]
    m.z = pyo.Var(z_index, domain=pyo.NonNegativeIntegers,
                  bounds=lambda _, p, c, t: (0, min(classes[c].size, int(instance.capacity[p]))))

    def class_presence(m, c, t):
        return sum(m.z[p, c, t] for p in range(P) if (p, c, t) in m.z) == classes[c].size
    m.class_presence = pyo.Constraint(
        [(c, t) for c in movable for t in range(T) if classes[c].present[t]], rule=class_presence)

    # -- substitutes: rotation cohorts, on / start / stop
    cohort_list = cohorts(instance)
    m.cohorts = cohort_list
    rotation_index = [(f, a, t) for f, a, stay in cohort_list for t in stay]
    m.rotation = pyo.Var(rotation_index, domain=pyo.NonNegativeIntegers,
                         bounds=lambda _, f, a, t: (0, int(instance.offer_count[f])))
    F = len(instance.offer_ids)
    m.on = pyo.Var(range(F), range(T), domain=pyo.NonNegativeReals)
    m.start = pyo.Expression(range(F), range(T), rule=lambda m, f, t:
                             m.rotation[f, t, t] if (f, t, t) in m.rotation else 0)
    m.stop = pyo.Expression(range(F), range(T), rule=lambda m, f, t:
                            (m.on[f, t - 1] if t else 0) + m.start[f, t] - m.on[f, t])

    def on_definition(m, f, t):
        return m.on[f, t] == sum(m.rotation[f, a, t] for a in range(t + 1) if (f, a, t) in m.rotation)
    m.on_definition = pyo.Constraint(range(F), range(T), rule=on_definition)
    m.rotations_per_offer = pyo.Constraint(range(F), rule=lambda m, f: sum(
        m.start[f, t] for t in range(T)) <= int(instance.offer_count[f]))

    def rotation_rule(m, f, a, t):
        if t == a:
            return pyo.Constraint.Skip
        if t < a + int(instance.offer_min_periods[f]):
            return m.rotation[f, a, t] == m.rotation[f, a, t - 1]  # min rotation length
        return m.rotation[f, a, t] <= m.rotation[f, a, t - 1]  # leave, never return
    m.rotation_length = pyo.Constraint(rotation_index, rule=rotation_rule)

    z_sub_index = [(p, f, a, t) for f, a, t in rotation_index
                   for p in range(P) if instance.admits[p, instance.offer_owner[f]]]
    m.z_sub = pyo.Var(z_sub_index, domain=pyo.NonNegativeIntegers,
                      bounds=lambda _, p, f, a, t: (0, min(int(instance.offer_count[f]),
                                                           int(instance.capacity[p]))))
    m.substitute_presence = pyo.Constraint(rotation_index, rule=lambda m, f, a, t: sum(
        m.z_sub[p, f, a, t] for p in range(P) if (p, f, a, t) in m.z_sub) == m.rotation[f, a, t])

    # -- units of each system at each position: units[p, k, t]
    fixed_count = np.zeros((P, K, T), dtype=np.int64)
    for unit_class in classes:
        if unit_class.fixed:
            fixed_count[:, unit_class.system, :] += (home_counts(instance, unit_class)[:, None]
                                                     * np.array(unit_class.present)[None, :])
    terms: dict[tuple[int, int, int], list] = {}
    for (p, c, t) in z_index:
        terms.setdefault((p, classes[c].system, t), []).append(m.z[p, c, t])
    for (p, f, a, t) in z_sub_index:
        terms.setdefault((p, int(instance.offer_system[f]), t), []).append(m.z_sub[p, f, a, t])
    m.units = pyo.Var(sorted(terms), domain=pyo.NonNegativeReals)
    m.units_definition = pyo.Constraint(sorted(terms), rule=lambda m, p, k, t:
                                        m.units[p, k, t] == sum(terms[p, k, t]))

    def standing(p: int, k: int, t: int):
        """Units of system k at p in t: the variable plus the fixed units there."""
        return (m.units[p, k, t] if (p, k, t) in m.units else 0) + int(fixed_count[p, k, t])

    m.capacity = pyo.Constraint(
        [(p, t) for p in range(P) for t in range(T)],
        rule=lambda m, p, t: sum(m.units[p, k, t] for k in range(K) if (p, k, t) in m.units)
        + int(fixed_count[p, :, t].sum()) <= int(instance.capacity[p])
        if any((p, k, t) in m.units for k in range(K)) else pyo.Constraint.Skip)

    # -- coverage counts n[s, l, t] and depth levels y[s, l, t, j]
    coverers = {(s, l): [(p, k) for k, p in zip(*np.nonzero(cover[:, :, s, l]))]
                for s in range(S) for l in range(L) if cover[:, :, s, l].any()}
    m.n = pyo.Expression([(s, l, t) for (s, l) in coverers for t in range(T)],
                         rule=lambda m, s, l, t: sum(standing(p, k, t) for p, k in coverers[s, l]))
    value = (instance.site_weight[:, None, None] * instance.layer_weight[None, :, None]
             * instance.depth_weights[None, None, :])  # (S, L, J)
    y_index = [(s, l, t, j) for (s, l) in coverers for t in range(T) for j in range(J)
               if value[s, l, j] > 0]
    m.y = pyo.Var(y_index, bounds=(0, 1))
    m.depth = pyo.Constraint(
        [(s, l, t) for (s, l) in coverers for t in range(T) if value[s, l, 0] > 0],
        rule=lambda m, s, l, t: sum(m.y[s, l, t, j] for j in range(J) if (s, l, t, j) in m.y)
        <= m.n[s, l, t])

    # -- requirements, with shortfalls fixed at zero (the elastic model frees them)
    required = [(s, l, t) for s, l in zip(*np.nonzero(instance.requirement)) for t in range(T)]
    m.shortfall = pyo.Var(required, domain=pyo.NonNegativeReals, bounds=(0, 0))
    m.requirement = pyo.Constraint(required, rule=lambda m, s, l, t: (
        m.n[s, l, t] if (s, l, t) in m.n else 0) + m.shortfall[s, l, t]
        >= int(instance.requirement[s, l]))

    # -- moves: units arriving at p by relocation (returns and arrivals are not moves)
    move_index = [(p, c, t) for (p, c, t) in z_index if t == 0 or classes[c].present[t - 1]]
    m.move_in = pyo.Var(move_index, domain=pyo.NonNegativeReals)
    homes = {c: home_counts(instance, classes[c]) for c in movable}

    def move_rule(m, p, c, t):
        before = (int(homes[c][p]) if t == 0
                  else m.z[p, c, t - 1] if (p, c, t - 1) in m.z else 0)
        return m.move_in[p, c, t] >= m.z[p, c, t] - before
    m.move_definition = pyo.Constraint(move_index, rule=move_rule)
    sub_move_index = [(p, f, a, t) for (p, f, a, t) in z_sub_index if t > a]
    m.move_in_sub = pyo.Var(sub_move_index, domain=pyo.NonNegativeReals)
    m.move_definition_sub = pyo.Constraint(sub_move_index, rule=lambda m, p, f, a, t: (
        m.move_in_sub[p, f, a, t] >= m.z_sub[p, f, a, t]
        - (m.z_sub[p, f, a, t - 1] if (p, f, a, t - 1) in m.z_sub else 0)))
    moves_by_period: dict[int, list] = {}
    for key in move_index:
        moves_by_period.setdefault(key[-1], []).append(m.move_in[key])
    for key in sub_move_index:
        moves_by_period.setdefault(key[-1], []).append(m.move_in_sub[key])
    m.moves = pyo.Expression(range(T), rule=lambda m, t: sum(moves_by_period.get(t, [])))
    m.moves_total_expr = pyo.Expression(expr=sum(m.moves[t] for t in range(T)))

    # -- limits
    m.substitute_cost = pyo.Expression(expr=sum(
        float(instance.offer_cost[f]) * m.on[f, t] for f in range(F) for t in range(T)))
    if instance.substitute_budget is not None and F:
        m.substitute_budget = pyo.Constraint(expr=m.substitute_cost <= instance.substitute_budget)
    if instance.moves_per_period is not None and moves_by_period:
        m.moves_per_period = pyo.Constraint(
            sorted(moves_by_period),
            rule=lambda m, t: m.moves[t] <= instance.moves_per_period)
    if instance.moves_total is not None and moves_by_period:
        m.moves_total = pyo.Constraint(expr=m.moves_total_expr <= instance.moves_total)

    # -- objectives: coverage value, then cost, then moves (one active at a time)
    value_terms: dict[int, list] = {}
    for (s, l, t, j) in y_index:
        value_terms.setdefault(t, []).append(float(value[s, l, j]) * m.y[s, l, t, j])
    m.coverage_by_period = pyo.Expression(range(T), rule=lambda m, t: sum(value_terms.get(t, [])))
    m.coverage = pyo.Expression(expr=sum(m.coverage_by_period[t] for t in range(T)))
    if objective == "min-cost":
        reference = reference_coverage_by_period(instance)
        targeted = [t for t in range(T) if instance.target * reference[t] > 0]
        m.target_shortfall = pyo.Var(targeted, domain=pyo.NonNegativeReals, bounds=(0, 0))
        m.coverage_target = pyo.Constraint(targeted, rule=lambda m, t: m.coverage_by_period[t]
                                           + m.target_shortfall[t]
                                           >= instance.target * float(reference[t]))
    m.maximize_coverage = pyo.Objective(expr=m.coverage, sense=pyo.maximize)
    m.minimize_cost = pyo.Objective(expr=m.substitute_cost, sense=pyo.minimize)
    m.minimize_moves = pyo.Objective(expr=m.moves_total_expr, sense=pyo.minimize)
    for stage in (m.maximize_coverage, m.minimize_cost, m.minimize_moves):
        stage.deactivate()
    (m.minimize_cost if objective == "min-cost" else m.maximize_coverage).activate()
    return m
