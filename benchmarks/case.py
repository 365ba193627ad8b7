"""One benchmark case in its own process (so its peak memory is its own): build, hand over
and solve the first stage of one instance with one formulation (the stage that decides the
plan, as `layerdef solve` runs it: coverage, with cost and moves where they fold into one
weighted stage, from the start `layerdef solve` makes: the greedy plan, the Lagrangian bound
where the root LP is slow, and the root step or, where it cannot run, the local search),
its incumbent and bound in coverage; print one JSON line. The per-unit baseline starts from
the greedy plan and local search, without the root step, as in earlier runs. Times to a gap
count from the hand-over to HiGHS, the start included (before the sixth session: from the
end of the start).

    python benchmarks/case.py INSTANCE --formulation classes|per-unit --time-limit S
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline import formulate_per_unit  # noqa: E402

from layerdef.core.evaluate import evaluate  # noqa: E402
from layerdef.io.reader import load  # noqa: E402
from layerdef.model.formulation import formulate  # noqa: E402
from layerdef.solve.backend import HighsBackend, SolverOptions, lexicographic_stages  # noqa: E402
from layerdef.solve.deterministic import coverage_bound, starting_plan  # noqa: E402


def time_to_gap(trace: list[tuple[float, float, float]], target: float) -> float | None:
    """First time the relative gap between incumbent and bound is at most `target`."""
    for seconds, incumbent, bound in trace:
        if np.isfinite(incumbent) and np.isfinite(bound) and abs(incumbent) > 0:
            if abs(bound - incumbent) / abs(incumbent) <= target:
                return seconds
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("instance")
    parser.add_argument("--formulation", choices=["classes", "per-unit"], default="classes")
    parser.add_argument("--time-limit", type=float, default=60.0)
    args = parser.parse_args()
    started = time.perf_counter()
    instance = load(args.instance)
    _ = instance.cover
    loaded = time.perf_counter()
    form = (formulate(instance) if args.formulation == "classes" else formulate_per_unit(instance))
    built = time.perf_counter()
    backend = HighsBackend(form, SolverOptions(time_limit=args.time_limit))
    handed = time.perf_counter()
    objective, sense = lexicographic_stages(form)[0]  # the stage that decides the plan, as in solve
    backend.set_objective(objective, sense)
    current = evaluate(instance, instance.current_posture())
    backend.clock_origin = handed  # the trace's times (to 1%, to 0.1%) count from here
    # ours as `layerdef solve` starts (greedy plan and root step); the baseline as it always
    # has (greedy plan and local search, no root step)
    start = starting_plan(instance, form, args.time_limit, current,
                          backend=backend if args.formulation == "classes" else None)
    started_solve = time.perf_counter()
    if start is not None:
        backend.start_from(start)
    result = backend.run(args.time_limit - (started_solve - handed))
    result.objective = objective
    solved = time.perf_counter()
    info = backend.highs.getInfo()
    incumbent = float(form.objectives["coverage"] @ result.solution) if result.solution is not None else None
    bound = coverage_bound(form, result)
    gap = (abs(bound - incumbent) / max(abs(incumbent), 1e-9)
           if incumbent is not None and bound is not None else None)
    if result.status == "optimal":
        bound, gap = incumbent, 0.0
        backend.trace.append((solved - handed, incumbent, incumbent))
    print(json.dumps({
        "instance": Path(args.instance).stem, "formulation": args.formulation,
        "load_s": round(loaded - started, 3), "build_s": round(built - loaded, 3),
        "handover_s": round(handed - built, 3), "start_s": round(started_solve - handed, 3),
        "solve_s": round(solved - handed, 3),
        "status": result.status, "objective": incumbent, "bound": bound, "gap": gap,
        "time_to_1pct_s": time_to_gap(backend.trace, 0.01),
        "time_to_0.1pct_s": time_to_gap(backend.trace, 0.001),
        "rows": form.n_rows, "columns": form.n_cols, "nonzeros": form.nonzeros,
        "lp_iterations": int(info.simplex_iteration_count), "nodes": int(info.mip_node_count),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "time_limit_s": args.time_limit, "stage": objective,
    }))


if __name__ == "__main__":
    main()
