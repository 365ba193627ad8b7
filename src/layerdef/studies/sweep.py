"""Sweeps: many variants of an instance (dotted paths set to values), resumable, on local processes or a Dask cluster."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from layerdef.errors import InstanceError, Problem, UsageError
from layerdef.io.reader import TABLES, dump_document, inline_document, loads
from layerdef.solve.backend import progress
from layerdef.solve.workers import run_in_workers
from layerdef.studies.bar import StudyProgress
from layerdef.studies.frontier import parse_range


def parse_vary(spec: str) -> tuple[str, list[Any]]:
    """`PATH=VALUES`: `a:b:step` numbers, or comma-separated values; for an `away` path a
    value `first/last` is one range and `none` is no absence."""
    path, sep, values = spec.partition("=")
    if not sep or not path or not values:
        raise UsageError([Problem("--vary", f"{spec!r}: expected PATH=VALUES, e.g. "
                                     "limits.substitute_budget=0:12:2")])
    if ":" in values and not path.endswith(".away"):
        return path, parse_range(values, f"--vary {path}")
    return path, [_value(path, part.strip()) for part in values.split(",")]


def _value(path: str, text: str) -> Any:
    if path.endswith(".away"):
        if text.lower() in ("none", ""):
            return []
        return [[part.strip() for part in span.split("/", 1)] if "/" in span else [span, span]
                for span in text.split(";")]
    return yaml.safe_load(text) if text else None


def read_cases(path: Path) -> list[dict[str, Any]]:
    """One case per row of a CSV whose columns are dotted paths."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InstanceError([Problem(str(path), f"cannot read the cases CSV: {error}")])
    return [{column: _value(column, str(row[column])) for column in table.columns}
            for _, row in table.iterrows()]


def product_cases(varies: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    paths = [path for path, _ in varies]
    return [dict(zip(paths, combination)) for combination in itertools.product(*(v for _, v in varies))]


def apply_case(document: dict[str, Any], case: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy of the document with the case's values set; problems for paths that do not
    resolve."""
    document = copy.deepcopy(document)
    problems = []
    for path, value in case.items():
        parts = path.split(".")
        target: Any = document
        for depth, part in enumerate(parts[:-1]):
            if part in TABLES and isinstance(target, dict) and isinstance(target.get(part), list):
                target = target[part]
            elif isinstance(target, list):
                match = [row for row in target if str(row.get("id")) == part]
                if not match:
                    problems.append(f"{path}: no row with id {part!r} in {'.'.join(parts[:depth])}")
                    break
                target = match[0]
            elif isinstance(target, dict):
                target = target.setdefault(part, {})
            else:
                problems.append(f"{path}: {'.'.join(parts[:depth + 1])} is not a table or mapping")
                break
        else:
            if isinstance(target, dict):
                target[parts[-1]] = value
            else:
                problems.append(f"{path}: cannot set a value inside a table; name a row by its id")
    return document, problems


@dataclasses.dataclass
class Case:
    index: int
    params: dict[str, Any]
    text: str  # the case's instance document as YAML
    key: str


def prepare_cases(instance_path: Path, cases: list[dict[str, Any]], options: dict[str, Any]) -> list[Case]:
    """Every case validated before anything runs; all problems located by case, at once."""
    base = inline_document(instance_path)
    prepared, problems = [], []
    for index, params in enumerate(cases):
        document, unresolved = apply_case(base, params)
        label = ", ".join(f"{k}={v}" for k, v in params.items())
        problems += [Problem(f"case {index} ({label})", message) for message in unresolved]
        text = dump_document(document)
        if not unresolved:
            try:
                loads(text, instance_path)
            except InstanceError as error:  # located in the case, not at a line of the file
                problems += [dataclasses.replace(p, file=f"case {index} ({label})", line=None)
                             for p in error.problems]
        key = hashlib.sha256((text + json.dumps(options, sort_keys=True)).encode()).hexdigest()[:16]
        prepared.append(Case(index, params, text, key))
    if problems:
        raise InstanceError(problems)
    return prepared


def solve_case(text: str, instance_path: str, options: dict[str, Any]) -> dict[str, Any]:
    """Solve one case (in a worker process or on a Dask worker); errors come back as data."""
    from layerdef.errors import InfeasibleError, NoSolutionError
    from layerdef.solve import solve

    try:
        instance = loads(text, instance_path)
        plan = solve(instance, **options)
        return {"ok": True, "solution": plan.to_dict()}
    except InfeasibleError as error:
        return {"ok": False, "status": "infeasible",
                "error": "infeasible: " + " | ".join(error.explanation)}
    except Exception as error:  # noqa: BLE001 - a failing case is recorded, the sweep goes on
        status = "no_solution" if isinstance(error, NoSolutionError) else "failed"
        return {"ok": False, "status": status, "error": f"{type(error).__name__}: {error}"}


def sweep(instance_path: Path, cases: list[dict[str, Any]], output: Path, options: dict[str, Any],
          workers: int = 1, scheduler: str | None = None) -> pd.DataFrame:
    """Run every case not yet solved, then write `summary.csv` and `results.parquet`."""
    prepared = prepare_cases(instance_path, cases, options)
    case_dir = output / "cases"
    case_dir.mkdir(parents=True, exist_ok=True)
    todo = [case for case in prepared if not (case_dir / f"{case.key}.json").exists()]
    progress(f"sweep: {len(prepared)} cases, {len(prepared) - len(todo)} already solved, "
                 f"{len(todo)} to run on {scheduler or f'{workers} local worker(s)'}")
    runner = _run_dask if scheduler else _run_local
    runner(todo, str(instance_path), options, case_dir, workers, scheduler)
    summary, results = collect(prepared, case_dir)
    summary.to_csv(output / "summary.csv", index=False)
    results.to_parquet(output / "results.parquet", index=False)
    return summary


def _store(case_dir: Path, case: Case, outcome: dict[str, Any]) -> None:
    record = {"params": case.params, "key": case.key, **outcome}
    temporary = case_dir / f".{case.key}.json.tmp"
    temporary.write_text(json.dumps(record, default=str), encoding="utf-8")
    os.replace(temporary, case_dir / f"{case.key}.json")


class _Progress:
    """Cases done and failed, with the time left, as a bar or log lines (`StudyProgress`)."""

    def __init__(self, total: int):
        self.total, self.done, self.failed = total, 0, 0
        self.started = time.perf_counter()
        self.shown = StudyProgress("sweep", total)

    def step(self, outcome: dict[str, Any]) -> None:
        self.done += 1
        self.failed += not outcome.get("ok")
        elapsed = time.perf_counter() - self.started
        eta = elapsed / self.done * (self.total - self.done)
        self.shown.step(f"{self.done}/{self.total} done, {self.failed} failed, "
                        f"{elapsed:.0f} s elapsed, ETA {eta:.0f} s")
        if self.done == self.total:
            self.shown.close()


def _run_local(todo: list[Case], instance_path: str, options: dict, case_dir: Path, workers: int,
               scheduler: str | None) -> None:
    tally = _Progress(len(todo))
    if workers <= 1:
        for case in todo:
            outcome = solve_case(case.text, instance_path, options)
            _store(case_dir, case, outcome)
            tally.step(outcome)
        return
    calls = [(case.text, instance_path, options) for case in todo]
    for index, solved, outcome in run_in_workers(solve_case, calls, workers):
        if not solved:  # the worker died (solve_case hands every error of its own back as data)
            outcome = {"ok": False, "status": "failed", "error": f"{type(outcome).__name__}: {outcome}"}
        _store(case_dir, todo[index], outcome)
        tally.step(outcome)


def _run_dask(todo: list[Case], instance_path: str, options: dict, case_dir: Path, workers: int,
              scheduler: str | None) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise UsageError([Problem("--scheduler", "Dask is not installed: "
                                     "pip install 'layerdef[dask]'")])
    tally = _Progress(len(todo))
    with Client(scheduler) as client:
        futures = {client.submit(solve_case, case.text, instance_path, options, key=f"layerdef-{case.key}",
                                 pure=False): case for case in todo}
        for future in as_completed(futures):
            case = futures[future]
            try:
                outcome = future.result()
            except Exception as error:  # noqa: BLE001 - a lost worker fails one case only
                outcome = {"ok": False, "error": f"{type(error).__name__}: {error}"}
            _store(case_dir, case, outcome)
            tally.step(outcome)


#: summary.csv's columns after the case's own parameters, in this order whatever the cases
SUMMARY_COLUMNS = ["status", "coverage", "substitute_cost", "moves", "reference", "current", "gap",
                   "wall_s", "error"]


def collect(prepared: list[Case], case_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """summary: one row per case (`case`, `key`, the parameters, then `SUMMARY_COLUMNS`);
    results: one row per case and period."""
    summary, results = [], []
    parameters = list(dict.fromkeys(name for case in prepared for name in case.params))
    for case in prepared:
        path = case_dir / f"{case.key}.json"
        if not path.exists():
            continue
        record = json.loads(path.read_text(encoding="utf-8"))
        params = {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in case.params.items()}
        row = {"case": case.index, "key": case.key, **params}
        if not record.get("ok"):
            summary.append({**row, "status": record.get("status", "failed"),
                            "error": record.get("error")})
            continue
        solution = record["solution"]
        summary.append({**row, "status": solution["status"], **solution["objective"],
                        "reference": solution["reference"]["coverage"],
                        "current": solution["current"]["coverage"], "gap": solution["gap"],
                        "wall_s": solution["wall_s"], "error": None})
        for period in solution["tables"]["summary"]:
            results.append({**row, **period})
    return (pd.DataFrame(summary, columns=["case", "key", *parameters, *SUMMARY_COLUMNS]),
            pd.DataFrame(results))
