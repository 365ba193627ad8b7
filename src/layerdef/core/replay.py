"""Play a plan in a scenario where units come back at other dates (DESIGN.md, Scenarios).

Units stand where the plan put them whenever they are there; a unit the plan did not expect
(back earlier than planned) stands at its home; a unit the plan expected but which is still
away is simply absent; substitutes arrive and leave as requested. The result is a posture on
the scenario's instance, scored by `evaluate` like any other (violations, such as a home
already full, are reported, not hidden)."""

from __future__ import annotations

import pandas as pd

from layerdef.core.evaluate import Evaluation, evaluate
from layerdef.core.instance import Instance


def replay_posture(instance: Instance, plan: pd.DataFrame) -> pd.DataFrame:
    """The plan's posture (period, unit, position[, heading]) as it plays out on `instance`,
    whose presence is the scenario's."""
    headed = "heading" in plan.columns
    columns = ["period", "unit", "position"] + (["heading"] if headed else [])
    planned = {(row.period, row.unit): row for row in plan.itertuples()}
    rows = []
    for t, period in enumerate(instance.periods):
        for u, unit in enumerate(instance.unit_ids):
            if instance.present[u, t]:
                row = planned.get((period, unit))
                if row is not None:
                    rows.append((period, unit, row.position) + ((row.heading,) if headed else ()))
                else:  # not expected here: at home, facing its home heading (evaluate's default)
                    home = instance.position_ids[instance.unit_home[u]]
                    rows.append((period, unit, home) + ((None,) if headed else ()))
    organic = set(instance.unit_ids)
    substitutes = plan[~plan["unit"].isin(organic)]
    posture = pd.concat([pd.DataFrame(rows, columns=columns), substitutes[columns]], ignore_index=True)
    order = {period: t for t, period in enumerate(instance.periods)}
    return posture.sort_values(["period", "unit"], key=lambda c: c.map(order) if c.name == "period" else c
                               ).reset_index(drop=True)


def replay(instance: Instance, plan: pd.DataFrame, scenario: str) -> tuple[Instance, Evaluation]:
    """The scenario's instance and the evaluation of the plan played in it."""
    world = instance.in_scenario(scenario)
    return world, evaluate(world, replay_posture(world, plan))
