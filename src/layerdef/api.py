"""The public face: load an instance, solve it, evaluate a posture, build the Pyomo model,
and ask which further withdrawals would hurt most.

    import layerdef
    inst = layerdef.load("instances/korea-2025.yaml")
    plan = layerdef.solve(inst, objective="coverage", time_limit=60)
    layerdef.evaluate(inst, inst.current_posture())
    model = layerdef.build_model(inst)
    study = layerdef.stress(inst, lose=1, output="out/stress")
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
from layerdef.io.outputs import output_problems
from layerdef.io.reader import load
from layerdef.io.solution import Solution
from layerdef.model.formulation import build_model
from layerdef.solve import solve
from layerdef.studies.stress import STRESS_OUTPUTS, StressResult, stress_request
from layerdef.studies.stress import stress as run_stress

__all__ = ["load", "solve", "evaluate", "build_model", "stress", "Instance", "Solution",
           "Evaluation", "StressResult", "InstanceError", "UsageError", "Problem",
           "InfeasibleError", "NoSolutionError", "PlanCheckError"]


def evaluate(instance: Instance, posture: pd.DataFrame | str | Path) -> Evaluation:
    """Score a posture (a DataFrame period, unit, position, or the path of such a CSV) with
    numpy alone: the independent check of every plan."""
    if not isinstance(posture, pd.DataFrame):
        posture = read_posture(posture)
    return evaluate_posture(instance, posture)


def stress(instance: Instance, lose: int, output: str | Path, eligible: str | None = None,
           first: str | None = None, periods: int | None = None, notice: int = 0,
           time_limit: float | None = None, gap: float = 0.0, workers: int = 1,
           scheduler: str | None = None, max_sets: int = 500) -> StressResult:
    """`layerdef stress` from Python: the criticality of every set of up to `lose` further
    withdrawals (`eligible`: unit ids, comma-separated, or an owner; default every movable
    organic unit), leaving in `first` (default the second period) for `periods` (default to
    the end), known `notice` periods before, and the robust plan; writes criticality.csv,
    robust.json and robust-scenarios.yaml into `output` (resumable there), never over a file
    of the instance. Problems with the request are raised together (UsageError)."""
    window, units = stress_request(instance, lose, eligible, first, periods, notice)
    output = Path(output)
    problems = output_problems([output / name for name in STRESS_OUTPUTS], False, instance.sources, owned=True)
    if problems:
        raise UsageError(problems)
    return run_stress(instance, lose, window, units, output,
                      {"time_limit": time_limit, "gap": gap}, workers=workers,
                      scheduler=scheduler, max_sets=max_sets)
