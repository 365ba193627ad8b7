"""layerdef: air and missile defense posture planning (public, notional data).

    import layerdef
    inst = layerdef.load("instances/korea-2025.yaml")
    plan = layerdef.solve(inst, objective="coverage", time_limit=60)
    plan.assignments, plan.coverage, plan.summary
    layerdef.evaluate(inst, inst.current_posture())
    model = layerdef.build_model(inst)

Heavy imports (Pyomo, HiGHS, pandas) happen on first use, so `layerdef --help` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from layerdef.problems import InstanceError, Problem

__version__ = "0.1.0"
__all__ = ["load", "solve", "evaluate", "build_model", "Instance", "Solution", "Evaluation",
           "InstanceError", "Problem", "InfeasibleError", "NoSolutionError", "PlanCheckError"]

_LAZY = {
    "load": "layerdef.instance", "Instance": "layerdef.instance",
    "solve": "layerdef.solve", "InfeasibleError": "layerdef.solve",
    "NoSolutionError": "layerdef.solve", "PlanCheckError": "layerdef.solve",
    "evaluate": "layerdef.evaluate", "Evaluation": "layerdef.evaluate",
    "build_model": "layerdef.model", "Solution": "layerdef.solution",
}

if TYPE_CHECKING:
    from layerdef.evaluate import Evaluation, evaluate
    from layerdef.instance import Instance, load
    from layerdef.model import build_model
    from layerdef.solution import Solution
    from layerdef.solve import InfeasibleError, NoSolutionError, PlanCheckError, solve


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'layerdef' has no attribute {name!r}")
