"""layerdef: air and missile defense posture planning (public, notional data).

    import layerdef
    inst = layerdef.load("instances/korea-2025.yaml")
    plan = layerdef.solve(inst, objective="coverage", time_limit=60)
    plan.assignments, plan.coverage, plan.summary
    layerdef.evaluate(inst, inst.current_posture())
    model = layerdef.build_model(inst)
    study = layerdef.stress(inst, lose=1, output="out/stress")

The names come from `layerdef.api`, imported eagerly: `layerdef.solve` is then the function
(the package of the same name is `layerdef.solve` in `sys.modules`). Pyomo and HiGHS are still
imported only when a model is built or solved.
"""

from layerdef.api import (
                          Evaluation,
                          InfeasibleError,
                          Instance,
                          InstanceError,
                          NoSolutionError,
                          PlanCheckError,
                          Problem,
                          Solution,
                          StressResult,
                          UsageError,
                          build_model,
                          evaluate,
                          load,
                          solve,
                          stress,
)

__version__ = "0.1.0"
__all__ = ["load", "solve", "evaluate", "build_model", "stress", "Instance", "Solution",
           "Evaluation", "StressResult", "InstanceError", "UsageError", "Problem",
           "InfeasibleError", "NoSolutionError", "PlanCheckError"]
