"""The naive per-unit formulation, kept as the benchmarks' reference point.

One binary per unit, position and period: every organic unit is its own class of size one,
so `z[p, u, t]` is a binary and nothing tells HiGHS that two batteries of the same system,
owner and absences are interchangeable. Everything else (substitutes, coverage, depth,
requirements, moves, limits) is the project's own formulation, so the comparison isolates
what the classes of interchangeable units buy.
"""

from __future__ import annotations

from layerdef.core.instance import Instance
from layerdef.model.formulation import Formulation, UnitClass, formulate


def per_unit_classes(instance: Instance) -> list[UnitClass]:
    """One class per organic unit."""
    return [UnitClass(int(instance.unit_system[u]), int(instance.unit_owner[u]),
                      bool(instance.unit_fixed[u]), tuple(bool(x) for x in instance.present[u]),
                      members=(u,))
            for u in range(len(instance.unit_ids))]


def formulate_per_unit(instance: Instance, objective: str | None = None) -> Formulation:
    return formulate(instance, objective, classes=per_unit_classes(instance))
