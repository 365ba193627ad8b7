"""One peer solver on one benchmark case, in its own process: the model `case.py` hands to
HiGHS for the stage that decides the plan (the class-count formulation, the same objective)
is written out as MPS before any start, root step or bound of ours, read back by the peer
and solved from nothing with the same time limit and gap (0). Prints one JSON line with the
peer's status, incumbent and bound in coverage, gap, times to 1% and 0.1% and to optimality
(counted from the end of the file's reading), and peak memory.

    python benchmarks/peers.py INSTANCE --solver highs|scip --time-limit S [--threads N]

HiGHS alone runs on every core, as ours does; SCIP (pyscipopt, the `bench` extra) on one:
its PyPI build solves one tree per thread only in concurrent mode, a different algorithm.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from case import time_to_gap  # noqa: E402

from layerdef.io.reader import load  # noqa: E402
from layerdef.model.formulation import Formulation, formulate  # noqa: E402
from layerdef.solve.backend import (  # noqa: E402
    HighsBackend,
    SolverOptions,
    displayed,
    lexicographic_stages,
)


class Trace:
    """Incumbent and bound over time, in coverage for the weighted stage, as ours records."""

    def __init__(self, form: Formulation, objective: str, scale: float, origin: float) -> None:
        self.form, self.objective, self.scale, self.origin = form, objective, scale, origin
        self.points: list[tuple[float, float, float]] = []

    def record(self, incumbent: float, bound: float) -> None:
        point = (displayed(self.form, self.objective, incumbent / self.scale),
                 displayed(self.form, self.objective, bound / self.scale, bound=True))
        if not self.points or point != self.points[-1][1:]:
            self.points.append((time.perf_counter() - self.origin, *point))


def write_model(instance_path: str, directory: Path) -> tuple[Path, Formulation, str, float, list[str]]:
    """The first stage's model as ours hands it to HiGHS (objective scaled alike), as MPS, and
    the names HiGHS gave its columns as it wrote them (in our column order)."""
    form = formulate(load(instance_path))
    backend = HighsBackend(form, SolverOptions())
    objective, sense = lexicographic_stages(form)[0]
    backend.set_objective(objective, sense)
    path = directory / "model.mps"
    backend.highs.writeModel(str(path))
    names = [backend.highs.getColName(j)[1] for j in range(form.n_cols)]
    return path, form, objective, backend.scale, names


def solve_with_highs(path: Path, names: list[str], trace_of, limit: float, threads: int | None) -> dict:
    import highspy

    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.readModel(str(path))
    highs.setOptionValue("time_limit", float(limit))
    highs.setOptionValue("mip_rel_gap", 0.0)
    highs.setOptionValue("mip_abs_gap", 1e-9)
    if threads:
        highs.setOptionValue("threads", int(threads))
    trace = trace_of(time.perf_counter())

    def on_progress(event) -> None:
        trace.record(event.data_out.mip_primal_bound, event.data_out.mip_dual_bound)

    highs.cbMipInterrupt.subscribe(on_progress)
    highs.cbMipImprovingSolution.subscribe(on_progress)
    highs.run()
    info = highs.getInfo()
    status = highs.modelStatusToString(highs.getModelStatus()).lower()
    trace.record(info.objective_function_value if info.primal_solution_status else float("inf"),
                 info.mip_dual_bound)
    solution = np.array(highs.getSolution().col_value) if info.primal_solution_status else None
    return {"status": {"optimal": "optimal", "time limit reached": "time_limit"}.get(status, status.replace(" ", "_")),
            "trace": trace, "nodes": int(info.mip_node_count), "solution": solution}


def solve_with_scip(path: Path, names: list[str], trace_of, limit: float, threads: int | None) -> dict:
    from pyscipopt import SCIP_EVENTTYPE, Eventhdlr, Model

    model = Model()
    model.hideOutput()
    model.readProblem(str(path))
    model.setParam("limits/time", float(limit))
    model.setParam("limits/gap", 0.0)
    trace = trace_of(time.perf_counter())

    def record(solver) -> None:  # SCIP's infinity (1e20) as ours, so no gap is made of it
        primal, dual = solver.getPrimalbound(), solver.getDualbound()
        trace.record(primal if solver.getNSols() and not solver.isInfinity(abs(primal)) else float("inf"),
                     float("inf") if solver.isInfinity(abs(dual)) else dual)

    class Progress(Eventhdlr):
        def eventinit(self):
            self.model.catchEvent(SCIP_EVENTTYPE.BESTSOLFOUND | SCIP_EVENTTYPE.NODESOLVED, self)

        def eventexec(self, event):
            record(self.model)

    model.includeEventhdlr(Progress(), "progress", "incumbent and bound over time")
    model.optimize()
    status = model.getStatus()
    record(model)
    solution = None
    if model.getNSols():
        best = model.getBestSol()
        values = {var.name: model.getSolVal(best, var) for var in model.getVars()}  # SCIP orders them by type
        solution = np.array([values.get(name, 0.0) for name in names])
    return {"status": {"optimal": "optimal", "timelimit": "time_limit"}.get(status, status),
            "trace": trace, "nodes": int(model.getNNodes()), "solution": solution}


SOLVERS = {"highs": solve_with_highs, "scip": solve_with_scip}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("instance")
    parser.add_argument("--solver", choices=sorted(SOLVERS), required=True)
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path, form, objective, scale, names = write_model(args.instance, Path(directory))
        started = time.perf_counter()
        outcome = SOLVERS[args.solver](path, names, lambda origin: Trace(form, objective, scale, origin),
                                       args.time_limit, args.threads)
        outcome["solution"] = None if outcome["solution"] is None else outcome["solution"][:form.n_cols]
    trace: Trace = outcome["trace"]
    seconds, incumbent, bound = trace.points[-1] if trace.points else (None, None, None)
    if outcome["solution"] is not None:  # the plan's own coverage, the tie-break left out
        incumbent = float(form.objectives["coverage"] @ outcome["solution"])
    finite = incumbent is not None and abs(incumbent) < 1e300 and abs(bound) < 1e300
    gap = abs(bound - incumbent) / max(abs(incumbent), 1e-9) if finite else None
    print(json.dumps({
        "instance": Path(args.instance).stem, "solver": args.solver, "status": outcome["status"],
        "objective": incumbent if finite else None, "bound": bound if finite else None,
        "gap": 0.0 if outcome["status"] == "optimal" else gap,
        "solve_s": round(time.perf_counter() - started, 3),
        "time_to_1pct_s": time_to_gap(trace.points, 0.01),
        "time_to_0.1pct_s": time_to_gap(trace.points, 0.001),
        "time_to_optimal_s": seconds if outcome["status"] == "optimal" else None,
        "nodes": outcome["nodes"], "time_limit_s": args.time_limit,
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


if __name__ == "__main__":
    main()
