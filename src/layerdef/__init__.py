"""layerdef: air and missile defense posture planning (public, notional data).

    import layerdef
    inst = layerdef.load("instances/korea-2025.yaml")
    plan = layerdef.solve(inst, objective="coverage", time_limit=60)
    plan.assignments, plan.coverage, plan.summary
    layerdef.evaluate(inst, inst.current_posture())
    model = layerdef.build_model(inst)

The functions are imported here eagerly because two of them share their module's name
(`layerdef.solve`, `layerdef.evaluate`): a lazy import would let the submodule shadow the
function. Pyomo and HiGHS are still imported only when a model is built or solved.
"""

from layerdef.evaluate import Evaluation, evaluate
from layerdef.instance import Instance, load
from layerdef.model import build_model
from layerdef.problems import InstanceError, Problem
from layerdef.solution import Solution
from layerdef.solve import InfeasibleError, NoSolutionError, PlanCheckError, solve

__version__ = "0.1.0"
__all__ = ["load", "solve", "evaluate", "build_model", "Instance", "Solution", "Evaluation",
           "InstanceError", "Problem", "InfeasibleError", "NoSolutionError", "PlanCheckError"]
