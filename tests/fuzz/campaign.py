"""A fuzz campaign through the command line, as a hostile user would run it (issue 21).

    python tests/fuzz/campaign.py --n 10000 [--seed 0] [--workers 2] [-o out/fuzz]

Each case is a seeded mutation of a generated theater or a textbook instance (extreme weights
and costs, every unit away, capacities of 0, names that collide, broken references, min-cost,
scenarios, tiny time limits, ...), written to a folder of its own. It is validated, solved with
a short time limit and, when a plan comes back, shown in every table and format and compared
with the current and reference postures. The outcome is a count of exit codes and a list of
findings: any exit 1, any traceback, any output written over an input, and an exit 4 where a
plan exists (the current posture meets every requirement, so the start is one). The run ends
with exit 1 when there is a finding; `findings.json` in the output folder has each, with its
seed, to replay by `--only SEED`. Not part of the suite: `tests/test_fuzz_campaign.py` runs a
small seeded slice of it.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import multiprocessing
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEXTBOOK = ROOT / "instances" / "textbook"
TABLES = ("show", "summary", "assignments", "substitutes", "moves", "coverage", "turns", "defeat")
FORMATS = ("text", "csv", "json", "markdown")
EXTREMES = (0, 1e-9, 1e-3, 1, 7, 1e6, 1e9)


# ----------------------------------------------------------------------------- instances


def base_document(rng: np.random.Generator, folder: Path) -> dict[str, Any]:
    """A generated theater (small) or a textbook instance copied with its coverage CSV."""
    from layerdef.io.generate import generate_document

    if rng.random() < 0.6:
        return generate_document(int(rng.integers(1, 12)), int(rng.integers(1, 8)),
                                 int(rng.integers(1, 6)), int(rng.integers(1, 5)),
                                 int(rng.integers(0, 10_000)))
    source = sorted(TEXTBOOK.glob("*.yaml"))[int(rng.integers(0, len(list(TEXTBOOK.glob("*.yaml")))))]
    document = yaml.safe_load(source.read_text())
    if isinstance(document.get("coverage"), str):
        shutil.copy(TEXTBOOK / document["coverage"], folder / document["coverage"])
    return document


def mutate(document: dict[str, Any], rng: np.random.Generator) -> list[str]:
    """Apply one to four mutations; returns their names (for the findings)."""
    names = []
    for _ in range(int(rng.integers(1, 5))):
        name = MUTATIONS[int(rng.integers(0, len(MUTATIONS)))]
        try:
            globals()[f"_{name}"](document, rng)
            names.append(name)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            names.append(f"{name} (not applicable)")
    return names


def _labels(document: dict) -> list[str]:
    horizon = document.get("horizon") or {}
    if isinstance(horizon, dict) and isinstance(horizon.get("labels"), list):
        return [str(label) for label in horizon["labels"]]
    start, periods = str(horizon.get("start", "2026-01")), int(horizon.get("periods", 1))
    year, month = int(start[:4]), int(start[5:7]) - 1
    return [f"{year + (month + i) // 12:04d}-{(month + i) % 12 + 1:02d}" for i in range(periods)]


def _pick(rows: list, rng: np.random.Generator):
    return rows[int(rng.integers(0, len(rows)))]


def _extreme_weights(document, rng):
    for site in document["sites"]:
        site["weight"] = float(rng.choice(EXTREMES))
    for layer in document["layers"].values():
        layer["weight"] = float(rng.choice(EXTREMES))


def _extreme_costs(document, rng):
    for offer in document.get("substitutes") or []:
        offer["cost"] = float(rng.choice(EXTREMES))
    document.setdefault("limits", {})["substitute_budget"] = float(rng.choice(EXTREMES))


def _everyone_away(document, rng):
    labels = _labels(document)
    for unit in document["units"]:
        unit["away"] = [[labels[0], labels[-1]]]


def _one_away(document, rng):
    labels = _labels(document)
    first = int(rng.integers(0, len(labels)))
    last = int(rng.integers(first, len(labels)))
    _pick(document["units"], rng)["away"] = [[labels[first], labels[last]]]


def _capacity_zero(document, rng):
    _pick(document["positions"], rng)["capacity"] = 0


def _require_much(document, rng):
    site = _pick(document["sites"], rng)
    site["require"] = {_pick(list(document["layers"]), rng): int(rng.integers(1, 4))}


def _collide_name(document, rng):
    offers = document.get("substitutes") or []
    if offers:
        _pick(document["units"], rng)["id"] = f"{_pick(offers, rng)['id']}#1"


def _duplicate_id(document, rng):
    table = _pick(["sites", "positions", "units"], rng)
    document[table].append(copy.deepcopy(_pick(document[table], rng)))


def _dangling(document, rng):
    _pick(document["units"], rng)["home"] = "nowhere"


def _limits_zero(document, rng):
    document["limits"] = {key: 0 for key in ("moves_per_period", "moves_total", "substitute_budget")
                          if rng.random() < 0.5}


def _min_cost(document, rng):
    document["objective"] = "min-cost"
    document["target"] = float(rng.choice([0.0, 0.5, 1.0, 1.2, 10.0]))


def _fix_all(document, rng):
    for unit in document["units"]:
        unit["fixed"] = True


def _no_substitutes(document, rng):
    document["substitutes"] = []


def _bad_value(document, rng):
    row = _pick(document[_pick(["sites", "positions", "units"], rng)], rng)
    key = _pick(list(row), rng)
    row[key] = _pick([None, -1, "x", [], {}, 1e309, "2099-13", True], rng)


def _drop_key(document, rng):
    del document[_pick([k for k in document if k != "layerdef"], rng)]


def _scenarios(document, rng):
    labels = _labels(document)
    units = [u["id"] for u in document["units"]]
    count = int(rng.integers(1, 4))
    probability = [1.0 / count] * count
    probability[-1] = 1.0 - sum(probability[:-1])
    document["scenarios"] = []
    for n in range(count):
        away = {}
        for unit in units:
            if rng.random() < 0.5:
                first = int(rng.integers(0, len(labels)))
                away[unit] = [[labels[first], labels[int(rng.integers(first, len(labels)))]]]
        document["scenarios"].append({"id": f"s{n}", "probability": probability[n], "away": away})
    for offer in document.get("substitutes") or []:
        offer["lead"] = int(rng.integers(0, 3))


def _depth(document, rng):
    document["depth_weights"] = sorted((float(rng.choice(EXTREMES)) for _ in range(3)), reverse=True)


MUTATIONS = ("extreme_weights", "extreme_costs", "everyone_away", "one_away", "capacity_zero",
             "require_much", "collide_name", "duplicate_id", "dangling", "limits_zero", "min_cost",
             "fix_all", "no_substitutes", "bad_value", "drop_key", "scenarios", "depth",
             "one_away", "scenarios")


# ----------------------------------------------------------------------------- one case


def run_case(seed: int) -> dict[str, Any]:
    """Build case `seed`, run it through the CLI; its exit codes and findings."""
    from click.testing import CliRunner

    from layerdef.cli import main

    rng = np.random.default_rng(seed)
    folder = Path(tempfile.mkdtemp(prefix=f"layerdef-fuzz-{seed}-"))
    try:
        document = base_document(rng, folder)
        mutations = mutate(document, rng)
        instance = folder / "instance.yaml"
        instance.write_text(yaml.safe_dump(document, sort_keys=False))
        inputs = {path: _digest(path) for path in folder.iterdir()}
        runner = CliRunner()
        outcome: dict[str, Any] = {"seed": seed, "mutations": mutations, "exits": {}, "findings": []}

        def invoke(name: str, *args: str) -> int:
            result = runner.invoke(main, list(args))
            outcome["exits"][name] = result.exit_code
            if result.exit_code == 1 or (result.exception is not None
                                         and not isinstance(result.exception, SystemExit)):
                outcome["findings"].append(
                    f"{name}: exit {result.exit_code}: {type(result.exception).__name__}: "
                    f"{str(result.exception)[:300]}")
            elif "Traceback" in result.output:
                outcome["findings"].append(f"{name}: a traceback in the output")
            return result.exit_code

        if invoke("validate", "validate", str(instance)) != 0:
            return outcome
        plan = folder / "out" / "plan.json"
        limit = str(float(rng.choice([0.01, 0.5, 3.0])))
        solved = invoke("solve", "solve", str(instance), "-q", "--no-values", "--time-limit", limit,
                        "-o", str(plan), "--csv", str(folder / "out" / "tables"))
        if solved == 4 and _a_plan_exists(instance):
            outcome["findings"].append("solve: exit 4 where the current posture is a plan")
        if solved == 0:
            table = TABLES[int(rng.integers(0, len(TABLES)))]
            fmt = FORMATS[int(rng.integers(0, len(FORMATS)))]
            invoke("show", "show", str(plan), *([] if table == "show" else
                                                ["--table", table, "--format", fmt]))
            invoke("compare", "compare", str(instance), str(plan), "--format", fmt)
        for path, digest in inputs.items():
            if _digest(path) != digest:
                outcome["findings"].append(f"{path.name}: an input was written over")
        return outcome
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _a_plan_exists(instance_path: Path) -> bool:
    """The current posture meets every requirement (with the coverage objective, it is then a
    plan: no moves, no cost); with scenarios, in every scenario."""
    import layerdef

    inst = layerdef.load(instance_path)
    if inst.objective != "coverage":
        return False
    worlds = [inst.in_scenario(s) for s in inst.scenario_ids] if inst.scenario_ids else [inst]
    return all(layerdef.evaluate(w, w.current_posture()).feasible for w in worlds)


# ----------------------------------------------------------------------------- the campaign


def campaign(seeds: list[int], workers: int) -> list[dict[str, Any]]:
    """Every case, on `workers` processes, with a progress line every 200 cases."""
    outcomes = []
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, maxtasksperchild=200) as pool:
        for outcome in pool.imap_unordered(run_case, seeds, chunksize=4):
            outcomes.append(outcome)
            if len(outcomes) % 200 == 0:
                logging.info("fuzz: %d of %d cases, %.0f s, %d findings", len(outcomes), len(seeds),
                             time.perf_counter() - started,
                             sum(bool(o["findings"]) for o in outcomes))
    return sorted(outcomes, key=lambda o: o["seed"])


def counts(outcomes: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Exit codes per command, over every case."""
    table: dict[str, Counter] = {}
    for outcome in outcomes:
        for command, code in outcome["exits"].items():
            table.setdefault(command, Counter())[str(code)] += 1
    return {command: dict(sorted(found.items())) for command, found in table.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="first case's seed")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", type=int, help="replay one case")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "out" / "fuzz")
    options = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    seeds = [options.only] if options.only is not None else list(range(options.seed, options.seed + options.n))
    started = time.perf_counter()
    outcomes = campaign(seeds, options.workers) if len(seeds) > 1 else [run_case(seeds[0])]
    findings = [o for o in outcomes if o["findings"]]
    options.output.mkdir(parents=True, exist_ok=True)
    summary = {"cases": len(outcomes), "seconds": round(time.perf_counter() - started, 1),
               "exit_codes": counts(outcomes), "findings": len(findings)}
    (options.output / "findings.json").write_text(json.dumps(findings, indent=1) + "\n")
    (options.output / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    for outcome in findings[:20]:
        print(outcome["seed"], outcome["mutations"], *outcome["findings"], sep="\n  ")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
