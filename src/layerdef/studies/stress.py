"""Further withdrawals (DESIGN.md "Resilience", `layerdef stress`).

A withdrawal takes a set W of eligible units away from period `first` through `last`, known
`notice` periods before. A plan reacts to it from the announcement on, its decisions before
kept (`define_kept_decisions`): the reaction is the best plan of the withdrawn world with the
plan's trunk fixed. Criticality is every set's reaction value against the plan with nothing
withdrawn, and the current posture's loss from the same set. The robust plan maximizes the
worst reaction value over every set of at most K (none withdrawn included), found exactly by
column-and-constraint generation: a hedged master (`risk worst`) over the sets found so far,
an oracle that solves every set's reaction to the master's trunk (skipped where a set's
unreacted value, a lower bound on its reaction, already reaches the master's bound or the
worst found; stopped where the reaction does), and the worst set joining the master, until
the oracle's worst meets the master's bound. With local workers, each round's oracle begins on
the master's plan after its root step, on one worker beside the master's proof, and is kept
when the master ends on that plan."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from layerdef.core.evaluate import evaluate
from layerdef.core.instance import Instance
from layerdef.core.replay import replay_posture
from layerdef.errors import InfeasibleError, NoSolutionError, Problem, UsageError
from layerdef.io.solution import Solution
from layerdef.solve.backend import progress
from layerdef.solve.workers import Skipped, can_start_workers, run_in_workers
from layerdef.studies.bar import StudyProgress

#: the files a stress study writes into its folder
STRESS_OUTPUTS = ("criticality.csv", "robust.json", "robust-scenarios.yaml")

#: criticality.csv's columns, in this order
CRITICALITY_COLUMNS = ["withdrawn", "coverage", "loss", "current_coverage", "current_loss", "status", "gap"]
DEFAULT_MAX_SETS = 500
#: the oracle's worst may fall short of the master's bound by this share (solver tolerances)
ROBUST_TOLERANCE = 1e-6
NONE = "none"
#: a reaction stopped once it reached the coverage asked (`react(target=)`): not the worst
ABOVE_TARGET = "above_target"
#: (set, outcomes so far) -> (whether to solve the set, the coverage its reaction may stop at)
Asking = Callable[[tuple[int, ...], dict], tuple[bool, float | None]]


@dataclass(frozen=True)
class Withdrawal:
    """Units leave in period `first` and stay away through `last`, known `notice` periods
    before (never before the horizon's start)."""

    first: int
    last: int
    notice: int

    @property
    def announced(self) -> int:
        return max(0, self.first - self.notice)


def withdrawal_window(instance: Instance, first: str | None, periods: int | None,
                      notice: int) -> Withdrawal:
    """The window from `--from` (default: the second period), `--for` (default: to the end)
    and `--notice`; every problem at once, located by option."""
    problems = []
    if first is None:
        start = 1 if instance.T > 1 else 0
    elif first in instance.periods:
        start = instance.periods.index(first)
    else:
        start = 0
        problems.append(Problem("--from", f"period {first!r} is not in the horizon "
                                f"({instance.periods[0]} .. {instance.periods[-1]})"))
    last = instance.T - 1 if periods is None else start + periods - 1
    if periods is not None and last > instance.T - 1:
        problems.append(Problem("--for", f"{periods} periods from {instance.periods[start]} run past "
                                f"the horizon's end ({instance.periods[-1]}); at most {instance.T - start}"))
    if problems:
        raise UsageError(problems)
    return Withdrawal(start, last, notice)


def eligible_units(instance: Instance, spec: str | None) -> list[int]:
    """Units that may be withdrawn: every movable organic unit (no spec), an owner's movable
    organic units, or comma-separated unit ids."""
    movable = [u for u in range(len(instance.unit_ids)) if not instance.unit_fixed[u]]
    if spec is None:
        return movable
    if spec in instance.owners:
        return [u for u in movable if instance.owners[instance.unit_owner[u]] == spec]
    names = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = [name for name in names if name not in instance.unit_ids]
    if unknown or not names:
        raise UsageError([Problem("--eligible", f"unit {name!r} does not exist (units: "
                                  f"{', '.join(instance.unit_ids)}; owners: {', '.join(instance.owners)})")
                          for name in unknown or [spec]])
    return sorted(dict.fromkeys(instance.unit_ids.index(name) for name in names))


def withdrawal_sets(instance: Instance, eligible: list[int], lose: int) -> list[tuple[int, ...]]:
    """Every set of 1 .. `lose` eligible units, smallest first, each in id order."""
    if lose > len(eligible):
        raise UsageError([Problem("--lose", f"{lose} is more than the {len(eligible)} eligible "
                                  f"unit(s) ({', '.join(instance.unit_ids[u] for u in eligible)})")])
    ordered = sorted(eligible, key=lambda u: instance.unit_ids[u])
    return [units for size in range(1, lose + 1) for units in itertools.combinations(ordered, size)]


def stress_request(instance: Instance, lose: int, eligible: str | None, first: str | None,
                   periods: int | None, notice: int) -> tuple[Withdrawal, list[int]]:
    """The window and the eligible units of a stress study as `layerdef stress` and
    `layerdef.stress` take them; every problem with the request at once (UsageError)."""
    problems, window, units = [], None, []
    try:
        window = withdrawal_window(instance, first, periods, notice)
    except UsageError as error:
        problems += error.problems
    try:
        units = eligible_units(instance, eligible)
        withdrawal_sets(instance, units, lose)
    except UsageError as error:
        problems += error.problems
    if problems:
        raise UsageError(problems)
    return window, units


def withdrawn_world(instance: Instance, units: Sequence[int], window: Withdrawal) -> Instance:
    """The instance with `units` away through the window (units already away stay away)."""
    present = instance.present.copy()
    present[list(units), window.first:window.last + 1] = False
    return dataclasses.replace(instance, present=present)


def label(instance: Instance, units: Sequence[int], separator: str = ";") -> str:
    """The unit ids of a set in id order (`none` for the empty set)."""
    return separator.join(sorted(instance.unit_ids[u] for u in units)) or NONE


# ---------------------------------------------------------------------------- reactions

def react(instance: Instance, units: tuple[int, ...], plan: pd.DataFrame, window: Withdrawal,
          options: dict[str, Any], target: float | None = None) -> dict[str, Any]:
    """The plan's reaction to one withdrawal (in a worker process or on Dask): its coverage,
    status and gap, and the current posture's coverage in the same world; errors as data.
    `target`: stop at the first reaction that reaches it (status `above_target`: its coverage
    is a lower bound on the best reaction's, which is then no less than the target)."""
    from layerdef.solve.deterministic import solve  # a withdrawn world has no scenarios

    world = withdrawn_world(instance, units, window)
    outcome: dict[str, Any] = {"current_coverage": evaluate(world, world.current_posture()).total}
    try:
        reaction = solve(world, objective="coverage", start=replay_posture(world, plan),
                         keep_until=window.announced, stop_at=target, **options)
    except InfeasibleError as error:
        return {**outcome, "status": "infeasible", "error": " | ".join(error.explanation)}
    except NoSolutionError as error:
        return {**outcome, "status": "no_solution", "error": str(error)}
    coverage = reaction.objective["coverage"]
    status = reaction.status
    if target is not None and status != "optimal" and coverage >= target:
        status = ABOVE_TARGET
    return {**outcome, "status": status, "coverage": coverage, "gap": reaction.gap, "wall_s": reaction.wall_s,
            "posture": reaction.posture.astype(object).where(reaction.posture.notna(), None).to_dict("records")}


def unmeetable(instance: Instance, units: tuple[int, ...], window: Withdrawal,
               options: dict[str, Any]) -> str | None:
    """Why no plan at all (none of its decisions kept) meets every requirement once `units`
    are withdrawn, or None when one does (the withdrawn world solved to its first plan): such a
    set has no reaction whatever the trunk, so no robust plan can hold against it."""
    from layerdef.solve.deterministic import solve

    world = withdrawn_world(instance, units, window)
    try:
        solve(world, objective="coverage", stop_at=-np.inf, **options)
    except InfeasibleError as error:
        unmet = [line.strip() for line in error.explanation[1:] if not line.startswith(" ")]
        return "; ".join(unmet) or error.explanation[0]
    except NoSolutionError:
        return None  # not shown either way: the master will say
    return None


def unreacted_value(instance: Instance, units: tuple[int, ...], plan: pd.DataFrame,
                    window: Withdrawal) -> float:
    """The plan's coverage played in the withdrawn world without reacting: a lower bound on
    the reaction's where it meets every requirement (else -inf)."""
    world = withdrawn_world(instance, units, window)
    played = evaluate(world, replay_posture(world, plan))
    return played.total if played.feasible else -np.inf


class Reactions:
    """Reactions of plans to withdrawal sets, kept in `folder` (one JSON per set and plan, so
    a rerun skips what is solved), on local worker processes or a Dask scheduler."""

    def __init__(self, instance: Instance, window: Withdrawal, options: dict[str, Any],
                 folder: Path, workers: int = 1, scheduler: str | None = None):
        self.instance, self.window, self.options = instance, window, options
        self.folder, self.workers, self.scheduler = folder, workers, scheduler
        self.beside = 0  # processes of the caller's solving at the same time (`beside_a_solve`)
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def can_run_beside_a_solve(self) -> bool:
        """Whether reactions may run on a worker process while this process solves: local
        workers asked for, and a core for each."""
        return self.scheduler is None and self.workers > 1 and can_start_workers()

    def beside_a_solve(self) -> Reactions:
        """The same reactions on one worker process with its share of the cores beside this
        process's own solve (the robust search's oracle beside its master's proof)."""
        twin = copy.copy(self)
        twin.workers, twin.beside = 1, 1
        return twin

    def keys(self, plan: pd.DataFrame) -> Callable[[tuple[int, ...]], str]:
        """The file name of each set's reaction to `plan`: a digest of the instance, the plan,
        the set, the window and the options (the plan and what is common hashed once)."""
        common = hashlib.sha256()
        for part in (self.instance.sha256, plan.to_csv(index=False),
                     json.dumps([self.window.first, self.window.last, self.window.notice]),
                     json.dumps(self.options, sort_keys=True)):
            common.update(part.encode())

        def key(units: tuple[int, ...]) -> str:
            digest = common.copy()
            digest.update(label(self.instance, units).encode())
            return digest.hexdigest()[:16]

        return key

    def solve(self, plan: pd.DataFrame, sets: list[tuple[int, ...]], what: str,
              ask: Asking | None = None) -> dict[tuple[int, ...], dict]:
        """{set: outcome} for every set. `ask(set, outcomes so far)`, asked in the sets' order
        when a set's turn comes, may skip it or ask for less than its best reaction (a
        target). Reactions stopped at a target are not kept in the folder (a rerun's
        targets may differ)."""
        outcomes: dict[tuple[int, ...], dict] = {}
        todo = []
        key = self.keys(plan)
        for units in sets:
            path = self.folder / f"{key(units)}.json"
            if path.exists():
                outcomes[units] = json.loads(path.read_text(encoding="utf-8"))
            else:
                todo.append(units)
        progress(f"{what}: {len(sets)} sets, {len(sets) - len(todo)} already solved, {len(todo)} to run")
        shown = StudyProgress(what, len(todo), bar=not self.beside)
        done = 0
        for index, outcome in self._run(plan, todo, (lambda i: ask(todo[i], outcomes)) if ask else None):
            done += 1
            if isinstance(outcome, Skipped):
                shown.step(f"{done}/{len(todo)}: {label(self.instance, todo[index])} skipped")
                continue
            outcomes[todo[index]] = outcome
            if outcome["status"] != ABOVE_TARGET:
                self._store(key(todo[index]), outcome)
            shown.step(f"{done}/{len(todo)}: {label(self.instance, todo[index])} "
                       f"{outcome.get('coverage', outcome['status'])}")
        shown.close()
        return outcomes

    def _run(self, plan: pd.DataFrame, todo: list[tuple[int, ...]],
             ask: Callable[[int], tuple[bool, float | None]] | None) -> Iterator[tuple[int, Any]]:
        calls = [(self.instance, units, plan, self.window, self.options, None) for units in todo]

        def ready(index: int, args: tuple) -> tuple | None:
            wanted, target = ask(index) if ask else (True, None)
            return (*args[:-1], target) if wanted else None

        if self.scheduler:
            yield from _on_dask(self.scheduler, calls, self.instance.sha256)
        elif (self.beside or self.workers > 1 and len(todo) > 1) and can_start_workers():
            for index, solved, outcome in run_in_workers(react, calls, self.workers, ready, self.beside):
                yield index, (outcome if solved else {"status": "failed", "error": f"{type(outcome).__name__}: {outcome}"})
        else:
            for index, args in enumerate(calls):
                asked = ready(index, args)
                yield index, (react(*asked) if asked is not None else Skipped())

    def _store(self, key: str, outcome: dict[str, Any]) -> None:
        temporary = self.folder / f".{key}.json.tmp"
        temporary.write_text(json.dumps(outcome, default=float), encoding="utf-8")
        os.replace(temporary, self.folder / f"{key}.json")


def _on_dask(scheduler: str, calls: list[tuple], tag: str) -> Iterator[tuple[int, Any]]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise UsageError([Problem("--scheduler", "Dask is not installed: pip install 'layerdef[dask]'")])
    with Client(scheduler) as client:
        futures = {client.submit(react, *args, key=f"layerdef-stress-{tag[:8]}-{index}-{time.time_ns()}",
                                 pure=False): index for index, args in enumerate(calls)}
        for future in as_completed(futures):
            try:
                yield futures[future], future.result()
            except Exception as error:  # noqa: BLE001 - a lost worker fails one set only
                yield futures[future], {"status": "failed", "error": f"{type(error).__name__}: {error}"}


# ---------------------------------------------------------------------------- criticality

def criticality_table(instance: Instance, outcomes: dict[tuple[int, ...], dict], plan_coverage: float,
                      current_coverage: float) -> pd.DataFrame:
    """One row per withdrawal set, worst first: the reaction's coverage and loss against the
    plan with nothing withdrawn, and the current posture's."""
    rows = []
    for units, outcome in outcomes.items():
        coverage = outcome.get("coverage")
        rows.append({"withdrawn": label(instance, units), "coverage": coverage,
                     "loss": None if coverage is None else plan_coverage - coverage,
                     "current_coverage": outcome["current_coverage"],
                     "current_loss": current_coverage - outcome["current_coverage"],
                     "status": outcome["status"], "gap": outcome.get("gap")})
    table = pd.DataFrame(rows, columns=CRITICALITY_COLUMNS)
    unmet = table["coverage"].isna()
    return (table.assign(_order=np.where(unmet, np.inf, table["loss"].fillna(0.0)))
            .sort_values(["_order", "withdrawn"], ascending=[False, True], kind="stable")
            .drop(columns="_order").reset_index(drop=True))


# ---------------------------------------------------------------------------- robust plan

def scenario_instance(instance: Instance, sets: list[tuple[int, ...]], window: Withdrawal) -> Instance:
    """The instance with one scenario per withdrawal set (the first: none withdrawn), equally
    likely, known `notice` periods ahead: the robust search's master."""
    present = np.stack([withdrawn_world(instance, units, window).present for units in sets])
    return dataclasses.replace(instance, objective="coverage",
                               scenario_ids=[label(instance, units, "+") for units in sets],
                               scenario_probability=np.full(len(sets), 1.0 / len(sets)),
                               scenario_present=present, scenario_notice=window.notice)


@dataclass
class RobustPlan:
    """The robust plan (a hedged solution over the binding sets), its worst coverage over
    every set (the oracle's), the master's bound, and its coverage with nothing withdrawn."""

    solution: Solution
    master: Instance
    worst: float
    worst_set: tuple[int, ...]
    bound: float
    unwithdrawn: float
    rounds: int
    reactions: dict[tuple[int, ...], dict]
    #: the sets left out: no plan at all meets every requirement once they are withdrawn (why)
    left_out: dict[tuple[int, ...], str] = dataclasses.field(default_factory=dict)


def robust_plan(instance: Instance, sets: list[tuple[int, ...]], window: Withdrawal,
                reactions: Reactions, options: dict[str, Any],
                first: list[tuple[int, ...]] = ()) -> RobustPlan:
    """Column-and-constraint generation: master over the sets found (`first`, else none
    withdrawn), oracle over every set and none, until the oracle's worst meets the master's
    bound. Nothing withdrawn joins the master only when it is the oracle's worst: a scenario
    that does not bind made Korea's master four times slower. The master settles the trunk
    (coverage alone); the robust plan's scenarios are none and the sets found, each the
    oracle's reaction to the trunk, lexicographic (coverage, cost, moves)."""
    from layerdef.solve.hedged import solve_hedged

    started = time.perf_counter()
    candidates = [(), *sets]
    left_out: dict[tuple[int, ...], str] = {}
    found = [units for units in first if units] or [()]
    starts = None
    for rounds in itertools.count(1):
        master = scenario_instance(instance, found, window)
        beside, so_far = reactions.beside_a_solve(), list(found)
        what = f"robust round {rounds}, beside the master's proof"
        ahead = (_OracleAhead(lambda trunk, cancelled: _oracle(instance, candidates, trunk, window, beside, what,
                                                               so_far, np.inf, cancelled))
                 if reactions.can_run_beside_a_solve else None)
        try:
            plan = solve_hedged(master, "worst", starts=starts, first_stage_only=True,
                                on_start=ahead.begin if ahead else None, **options)
        except InfeasibleError as error:
            raise InfeasibleError([f"no plan before the announcement ({instance.periods[window.announced]}) "
                                   "leaves a reaction that meets every requirement to each of these "
                                   f"withdrawals at once: {', '.join(label(instance, units) for units in found)}",
                                   *error.explanation]) from None
        achieved = plan.risk_value
        bound = achieved if plan.status == "optimal" else max(plan.bound or achieved, achieved)
        trunk = plan.postures[0]  # the first set's plan: every scenario's is the same before the announcement
        answered = ahead.answer(trunk) if ahead else None
        worst_set, worst, outcomes = answered or _oracle(instance, candidates, trunk, window, reactions,
                                                         f"robust round {rounds}", found, bound)
        while worst == -np.inf and worst_set not in found:
            reason = unmeetable(instance, worst_set, window, options)
            if reason is None:
                break  # the trunk leaves it no reaction, another may: it joins the master
            progress(f"robust: withdrawing {label(instance, worst_set)}, no plan meets every requirement: "
                     "left out of the robust plan")
            left_out[worst_set] = reason
            candidates.remove(worst_set)
            outcomes.pop(worst_set)
            worst_set, worst = _worst(outcomes)
        progress(f"robust: round {rounds}, {len(found)} sets in the master, bound {bound:.6g}, "
                 f"worst {worst:.6g} ({label(instance, worst_set)})")
        if worst >= bound - ROBUST_TOLERANCE * max(1.0, abs(bound)) or worst_set in found:
            shown = [(), *[units for units in found if units]]
            shown_master = scenario_instance(instance, shown, window)
            solution = _robust_solution(instance, shown_master, window, shown, outcomes, plan, bound, worst,
                                        time.perf_counter() - started)
            return RobustPlan(solution, shown_master, worst, worst_set, bound, outcomes[()]["coverage"],
                              rounds, outcomes, left_out)
        found.append(worst_set)
        # the next master starts where this one ended, the new set reacting as the oracle found
        starts = ([*plan.postures, pd.DataFrame(outcomes[worst_set]["posture"])]
                  if "posture" in outcomes[worst_set] else None)


class _OracleAhead:
    """The oracle on the master's plan after its root step, on one worker process beside the
    master's proof, which mostly keeps that plan (Korea K = 1: the proof takes 25-35 s after
    it): the round's oracle is then done when the master is. `oracle(trunk, cancelled)` is the
    round's `_oracle` with no bound yet: only the reactions solved so far set the targets."""

    def __init__(self, oracle: Callable[[pd.DataFrame, Callable[[], bool]], tuple]):
        self.oracle = oracle
        self.trunk: pd.DataFrame | None = None
        self.cancelled = threading.Event()
        self.thread: threading.Thread | None = None
        self.result: tuple | None = None

    def begin(self, postures: list[pd.DataFrame]) -> None:
        """Start on the master's plan (one posture per scenario, alike before the announcement)."""
        self.trunk = postures[0]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self.oracle(self.trunk, self.cancelled.is_set)
        except Exception:  # noqa: BLE001 - the oracle run after the master meets it again
            self.result = None

    def answer(self, trunk: pd.DataFrame) -> tuple | None:
        """The oracle's answer when the master ended on the plan it began from and the oracle
        is done; else None, the rest cancelled: on the same plan, the reactions solved are in
        the folder, where the oracle run next (on every worker) finds them."""
        if self.thread is None:
            return None
        same = trunk.equals(self.trunk)
        if same and not self.thread.is_alive():
            return self.result
        self.cancelled.set()
        if same:
            self.thread.join()  # the reaction under way, kept for the oracle run next
        return None


def _robust_solution(instance: Instance, master: Instance, window: Withdrawal, found: list[tuple[int, ...]],
                     outcomes: dict[tuple[int, ...], dict], plan, bound: float, worst: float,
                     wall_s: float) -> Solution:
    """The robust plan as a hedged solution over the master's scenarios: in each, the oracle's
    reaction to the trunk, evaluated in its world."""
    solver = {"name": "highs", "interface": "highspy", "version": plan.solver_version,
              "options": {"robust_tolerance": ROBUST_TOLERANCE}}
    statuses = {outcomes[units]["status"] for units in found} | {plan.status}
    status = "optimal" if statuses == {"optimal"} else "time_limit"
    parts = []
    for units in found:
        world = withdrawn_world(instance, units, window)
        posture = pd.DataFrame(outcomes[units]["posture"])
        parts.append(Solution.from_evaluations(
            instance=world, objective_kind="coverage", status=outcomes[units]["status"], bound=None,
            gap=None, solver=solver, wall_s=wall_s, build_s=None, plan=evaluate(world, posture),
            posture=posture, current=evaluate(world, world.current_posture()),
            reference=evaluate(world, world.reference_posture())))
    return Solution.from_scenarios(master, parts, "worst", status, bound,
                                   abs(bound - worst) / max(abs(worst), 1e-9), solver, wall_s, None, None)


def _oracle(instance: Instance, candidates: list[tuple[int, ...]], trunk: pd.DataFrame,
            window: Withdrawal, reactions: Reactions, what: str,
            found: list[tuple[int, ...]], bound: float,
            cancelled: Callable[[], bool] = lambda: False) -> tuple[tuple[int, ...], float, dict]:
    """The worst set for the trunk. Nothing withdrawn and the sets `found` (the robust plan's
    scenarios) are solved to the end; the others only until they reach the target, the
    master's `bound` or the least reaction solved so far, whichever is lower: a set that
    reaches it cannot be the worst, since the master's own sets react no better than its bound
    (it bounds the best trunk's worst over them). A set whose unreacted value (a lower bound
    on its reaction) reaches the target is skipped; reactions run in the order of that value.
    Once `cancelled()`, the sets not yet begun are skipped (the answer is then of no use)."""
    bounds = {units: unreacted_value(instance, units, trunk, window) for units in candidates}
    always = {(), *found}
    order = sorted(candidates, key=lambda units: (units not in always, bounds[units], len(units)))

    def ask(units: tuple[int, ...], outcomes: dict) -> tuple[bool, float | None]:
        if cancelled():
            return False, None
        if units in always:
            return True, None
        solved = [o["coverage"] for o in list(outcomes.values())
                  if o.get("coverage") is not None and o["status"] != ABOVE_TARGET]
        target = min([bound, *solved])
        return bounds[units] < target, target

    outcomes = reactions.solve(trunk, order, what, ask)
    unsolved = [units for units, outcome in outcomes.items()
                if outcome.get("coverage") is None and outcome["status"] != "infeasible"]
    if unsolved:
        outcome = outcomes[unsolved[0]]
        raise UsageError([Problem("stress", f"withdrawing {label(instance, unsolved[0])}: the robust "
                                  f"search needs every set's reaction, and this one is "
                                  f"{outcome['status']}: {outcome.get('error', '')}")])
    return (*_worst(outcomes), outcomes)


def _worst(outcomes: dict[tuple[int, ...], dict]) -> tuple[tuple[int, ...], float]:
    """The set with the least reaction and its coverage; a set the trunk leaves no reaction is
    the worst there is, at -inf (it joins the master, or is left out by `robust_plan` when no
    plan at all meets its world's requirements). Ties: a reaction solved to the end before one
    stopped at a target, then the smaller set."""
    worst_set = min(outcomes, key=lambda units: (outcomes[units].get("coverage", -np.inf),
                                                 outcomes[units]["status"] == ABOVE_TARGET, len(units)))
    return worst_set, float(outcomes[worst_set].get("coverage", -np.inf))


# ---------------------------------------------------------------------------- the study

@dataclass
class StressResult:
    plan: Solution
    criticality: pd.DataFrame
    robust: RobustPlan
    lose: int
    sets: int


def stress(instance: Instance, lose: int, window: Withdrawal, eligible: list[int], output: Path,
           options: dict[str, Any], workers: int = 1, scheduler: str | None = None,
           max_sets: int = DEFAULT_MAX_SETS) -> StressResult:
    """The plain plan, the criticality of every withdrawal set (all of them up to `max_sets`;
    beyond, the single units and the sets the robust search finds) and the robust plan; writes
    `criticality.csv`, `robust.json` and `robust-scenarios.yaml` into `output`."""
    from layerdef.solve import solve

    if instance.scenario_ids:
        raise UsageError([Problem(str(instance.path), "stress withdraws units from a plan made for "
                                  "one world; this instance has scenarios of return dates "
                                  "(remove them, or keep the one that stands)", "scenarios")])
    sets = withdrawal_sets(instance, eligible, lose)
    plain = solve(instance, objective="coverage", **options)
    reactions = Reactions(instance, window, options, output / "sets", workers, scheduler)
    listed = sets if len(sets) <= max_sets else [units for units in sets if len(units) == 1]
    outcomes = reactions.solve(plain.posture, listed, "criticality")
    plan_coverage, current_coverage = plain.objective["coverage"], plain.current["coverage"]
    table = criticality_table(instance, outcomes, plan_coverage, current_coverage)
    table.to_csv(output / "criticality.csv", index=False)  # kept should the robust search fail
    worst = [_units(instance, name) for name in table["withdrawn"][table["coverage"].notna()][:1]]
    robust = robust_plan(instance, sets, window, reactions, options, first=worst)
    found = [_units(instance, name) for name in robust.master.scenario_ids[1:]]
    missing = [units for units in found if units not in outcomes]
    if missing:
        outcomes.update(reactions.solve(plain.posture, missing, "criticality of the sets found"))
        table = criticality_table(instance, outcomes, plan_coverage, current_coverage)
        table.to_csv(output / "criticality.csv", index=False)  # with the sets the search found
    scenarios = scenario_document(instance, robust.master, output)
    (output / "robust-scenarios.yaml").write_text(scenarios, encoding="utf-8")
    # the robust plan names the instance its scenarios are in, so report and replay find them
    robust.solution.instance = {"name": instance.name, "sha256": hashlib.sha256(scenarios.encode()).hexdigest(),
                                "path": str((output / "robust-scenarios.yaml").resolve())}
    robust.solution.write(output / "robust.json")
    return StressResult(plain, table, robust, lose, len(sets))


def _units(instance: Instance, name: str) -> tuple[int, ...]:
    if name == NONE:
        return ()
    return tuple(sorted((instance.unit_ids.index(unit) for unit in name.replace("+", ";").split(";")),
                        key=lambda u: instance.unit_ids[u]))


def scenario_document(instance: Instance, master: Instance, output: Path) -> str:
    """The instance's YAML with the robust plan's scenarios (each unit's whole absence where a
    set withdraws it), for `validate`, `replay` and `solve`; tables inline."""
    from layerdef.io.reader import dump_document, inline_document

    document = inline_document(instance.path)
    document["scenarios"] = [
        {"id": name, "probability": float(probability),
         "away": {instance.unit_ids[u]: _away_ranges(instance, master.scenario_present[n, u])
                  for u in np.nonzero((master.scenario_present[n] != instance.present).any(axis=1))[0]}}
        for n, (name, probability) in enumerate(zip(master.scenario_ids, master.scenario_probability))]
    note = (f"layerdef stress: the robust plan's withdrawal sets as scenarios (notice "
            f"{master.scenario_notice} period(s), which scenarios of return dates do not carry)")
    document["description"] = f"{document.get('description', '')} [{note}]".strip()
    return dump_document(document, output, instance.path.parent)


def _away_ranges(instance: Instance, present: np.ndarray) -> list[list[str]]:
    """Runs of absence as inclusive [first, last] period labels."""
    ranges, start = [], None
    for t, here in enumerate([*present, True]):
        if not here and start is None:
            start = t
        elif here and start is not None:
            ranges.append([instance.periods[start], instance.periods[t - 1]])
            start = None
    return ranges


def summary_lines(result: StressResult, instance: Instance) -> list[str]:
    """What a planner reads first: the worst sets, and what the robust plan gives and costs."""
    plan, robust, table = result.plan, result.robust, result.criticality
    lines = [f"{instance.name}: further withdrawals of up to {result.lose} unit(s), {result.sets} sets "
             f"(notional data). Plan with nothing withdrawn: {plan.objective['coverage']:.6g}; "
             f"current posture: {plan.current['coverage']:.6g}."]
    for row in table.head(5).itertuples():
        lines.append(f"  {row.withdrawn}: " + (f"plan {row.coverage:.6g} (loses {row.loss:.4g}), "
                                              if row.coverage == row.coverage and row.coverage is not None
                                              else "no reaction meets every requirement, "
                                              if row.status == "infeasible" else f"{row.status}, ")
                     + f"current posture {row.current_coverage:.6g} (loses {row.current_loss:.4g})")
    price = plan.objective["coverage"] - robust.unwithdrawn
    lines.append(f"robust plan: worst {robust.worst:.6g} ({label(instance, robust.worst_set)}), bound "
                 f"{robust.bound:.6g}, {robust.rounds} round(s), {len(robust.master.scenario_ids) - 1} "
                 f"binding set(s); with nothing withdrawn {robust.unwithdrawn:.6g}, a price of "
                 f"robustness of {price:.4g} against the plain plan")
    for units, reason in robust.left_out.items():
        lines.append(f"left out of the robust plan: withdrawing {label(instance, units)}, no plan meets "
                     f"every requirement ({reason})")
    return lines + _time_limit_lines(plan, table)


def _time_limit_lines(plan: Solution, table: pd.DataFrame) -> list[str]:
    """Which figures above are estimates: a plain plan or reactions stopped at the time limit
    (a robust plan with nothing withdrawn above the plain plan, a negative price, says the
    plain plan was not the optimum)."""
    lines = []
    if plan.status != "optimal":
        gap = "" if plan.gap is None else f", gap {plan.gap:.3%}"
        lines.append(f"(the plain plan stopped at its time limit{gap}: losses and the price of "
                     "robustness are measured against it, not against the optimum)")
    stopped = int((~table["status"].isin(["optimal", "infeasible"])).sum())
    if stopped:
        lines.append(f"({stopped} of {len(table)} reactions stopped short of proven optimal: their "
                     "losses are estimates)")
    return lines
