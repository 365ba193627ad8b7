"""The public face: load an instance, solve it, evaluate a posture, build the Pyomo model.

    import layerdef
    inst = layerdef.load("instances/korea-2025.yaml")
    plan = layerdef.solve(inst, objective="coverage", time_limit=60)
    layerdef.evaluate(inst, inst.current_posture())
    model = layerdef.build_model(inst)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from layerdef.core.evaluate import Evaluation
from layerdef.core.evaluate import evaluate as evaluate_posture
from layerdef.core.instance import Instance
from layerdef.errors import (
           InfeasibleError,
           InstanceError,
           NoSolutionError,
           PlanCheckError,
           Problem,
           UsageError,
)
from layerdef.io.csvfile import read_posture
from layerdef.io.reader import load
from layerdef.io.solution import Solution
from layerdef.model.formulation import build_model
from layerdef.solve import solve

__all__ = ["load", "solve", "evaluate", "build_model", "Instance", "Solution", "Evaluation",
           "InstanceError", "UsageError", "Problem", "InfeasibleError", "NoSolutionError",
           "PlanCheckError"]


def evaluate(instance: Instance, posture: pd.DataFrame | str | Path) -> Evaluation:
    """Score a posture (a DataFrame period, unit, position, or the path of such a CSV) with
    numpy alone: the independent check of every plan."""
    if not isinstance(posture, pd.DataFrame):
        posture = read_posture(posture)
    return evaluate_posture(instance, posture)
