"""The solution contract: a JSON document with status, objective, bound, comparisons and tables.

`show`, `compare` and `report` read only this document, so it carries everything they need:
the plan's tables and the evaluations of the current and reference postures."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from layerdef.core.evaluate import expected
from layerdef.errors import InstanceError, Problem

if TYPE_CHECKING:
    from layerdef.core.evaluate import Evaluation
    from layerdef.core.instance import Instance


SOLUTION_FORMAT = 1


TABLE_NAMES = ("summary", "assignments", "substitutes", "moves", "coverage")


#: tables a solution has only where units may face more than one heading
OPTIONAL_TABLES = ("turns", "defeat")  # defeat: with kill probabilities


#: Column order of every table, also the contract for empty tables.
TABLE_COLUMNS = {
    "summary": ["period", "plan", "current", "reference", "gap", "share_of_reference",
                "substitute_cost", "moves", "unmet_requirements"],
    "assignments": ["period", "unit", "system", "owner", "position", "substitute"],
    "substitutes": ["offer", "unit", "first", "last", "periods", "cost", "request_by"],
    "moves": ["period", "unit", "from", "to"],
    "coverage": ["period", "site", "layer", "units", "value", "required", "shortfall"],
    "turns": ["period", "unit", "position", "from_heading", "to_heading"],
    "defeat": ["period", "site", "class", "defeat", "leakers_per_100", "value", "most"],
}


#: columns a table has only with launch areas and headings, each after the column named
OPTIONAL_COLUMNS = {"assignments": [("heading", "position")], "coverage": [("threat", "layer")],
                    "summary": [("turns", "moves")], "defeat": [("threat", "class")]}


def table_columns(name: str, present) -> list[str]:
    """A table's columns: the core ones, with the optional ones among `present` in place."""
    columns = list(TABLE_COLUMNS[name])
    for column, after in OPTIONAL_COLUMNS.get(name, []):
        if column in present:
            columns.insert(columns.index(after) + 1, column)
    return columns


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ObjectiveFigures(_Strict):
    """The plan's figures (expected ones for a hedged plan)."""

    coverage: float
    substitute_cost: float
    moves: float
    turns: float | None = None  # where units may face more than one heading
    leakers_per_100: float | None = None  # with kill probabilities: missiles of 100 that leak


class PostureDigest(_Strict):
    """A comparison posture (current, reference): its figures and unmet requirements."""

    coverage: float
    substitute_cost: float
    moves: float
    turns: float | None = None
    leakers_per_100: float | None = None
    by_period: list[float]
    unmet: list[dict[str, Any]]
    by_scenario: list[dict[str, Any]] | None = None


class InstanceRecord(_Strict):
    """Which instance file the plan was made on (`compare` refuses plans of another)."""

    name: str
    sha256: str
    path: str | None = None


class _Row(BaseModel):
    """One row of a solution table: ids and periods are text, figures numbers, flags
    booleans (strict: "3" is no number), so that a damaged file is located on reading."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    scenario: str | None = None  # hedged plans: the scenario the row is in


class SummaryRow(_Row):
    period: str
    plan: float
    current: float
    reference: float
    gap: float
    share_of_reference: float
    substitute_cost: float
    moves: float
    turns: float | None = None
    unmet_requirements: float


class AssignmentRow(_Row):
    period: str
    unit: str
    system: str
    owner: str
    position: str
    heading: float | None = None  # degrees from north; none: sees every direction
    substitute: bool


class SubstituteRow(_Row):
    offer: str
    unit: str
    first: str
    last: str
    periods: float
    cost: float
    request_by: str | None = None


class MoveRow(_Row):
    period: str
    unit: str
    from_: str = Field(alias="from")
    to: str


class CoverageRow(_Row):
    period: str
    site: str
    layer: str
    threat: str | None = None
    units: float
    value: float
    required: float
    shortfall: float


class TurnRow(_Row):
    period: str
    unit: str
    position: str
    from_heading: float
    to_heading: float


class DefeatRow(_Row):
    period: str
    site: str
    #: the threat class
    class_: str = Field(alias="class")
    threat: str | None = None
    defeat: float
    leakers_per_100: float
    value: float
    most: float


class SolutionTables(_Strict):
    """The tables, one row model each (columns as `TABLE_COLUMNS` orders them)."""

    summary: list[SummaryRow]
    assignments: list[AssignmentRow]
    substitutes: list[SubstituteRow]
    moves: list[MoveRow]
    coverage: list[CoverageRow]
    turns: list[TurnRow] | None = None
    defeat: list[DefeatRow] | None = None


class SolutionDocument(_Strict):
    """The solution JSON as `solve -o` writes it and `show`, `compare`, `report` and `replay`
    read it; its JSON Schema is published as docs/solution.schema.json."""

    layerdef_solution: Literal[1]
    status: Literal["optimal", "time_limit"]
    objective_kind: Literal["coverage", "min-cost"]
    objective: ObjectiveFigures
    bound: float | None
    gap: float | None
    solver: dict[str, Any]
    wall_s: float
    build_s: float | None = None
    instance: InstanceRecord
    current: PostureDigest
    reference: PostureDigest
    risk: Literal["expected", "worst"] | None = None
    scenarios: list[dict[str, Any]] | None = None
    values: dict[str, Any] | None = None
    tables: SolutionTables


def solution_schema() -> dict[str, Any]:
    """The JSON Schema of the solution document (docs/solution.schema.json is this, written)."""
    return SolutionDocument.model_json_schema()


@dataclass
class Solution:
    """A solved plan: what the CLI writes as JSON and the API returns."""

    status: str
    objective_kind: str
    objective: dict[str, float]
    bound: float | None
    gap: float | None
    solver: dict[str, Any]
    wall_s: float
    instance: dict[str, Any]
    current: dict[str, Any]
    reference: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    build_s: float | None = None
    #: Hedged plans only: the risk measure, one entry per scenario (id, probability, figures of
    #: the plan, the current and the reference posture there) and the values of information.
    risk: str | None = None
    scenarios: list[dict[str, Any]] | None = None
    values: dict[str, Any] | None = None

    @property
    def hedged(self) -> bool:
        return self.scenarios is not None

    @property
    def table_names(self) -> list[str]:
        """The tables this plan has: every core one, and turns where units may turn."""
        return [name for name in (*TABLE_NAMES, *OPTIONAL_TABLES) if name in self.tables]

    @property
    def assignments(self) -> pd.DataFrame:
        return self.tables["assignments"]

    @property
    def substitutes(self) -> pd.DataFrame:
        return self.tables["substitutes"]

    @property
    def moves(self) -> pd.DataFrame:
        return self.tables["moves"]

    @property
    def coverage(self) -> pd.DataFrame:
        return self.tables["coverage"]

    @property
    def summary(self) -> pd.DataFrame:
        return self.tables["summary"]

    @property
    def posture(self) -> pd.DataFrame:
        """The plan as a posture table (period, unit, position[, heading]), as `evaluate` reads it; a hedged
        plan's has a `scenario` column first (one posture per scenario)."""
        columns = ((["scenario"] if self.hedged else []) + ["period", "unit", "position"]
                   + (["heading"] if "heading" in self.assignments else []))
        return self.assignments[columns].copy()

    def in_scenario(self, scenario: str) -> "Solution":
        """A hedged plan as it plays out in one of its scenarios: a deterministic solution whose
        tables, objective and comparisons are that scenario's."""
        entry = next((e for e in self.scenarios or [] if e["id"] == scenario), None)
        if entry is None:
            known = ", ".join(e["id"] for e in self.scenarios or []) or "none: not a hedged plan"
            raise InstanceError([Problem("solution", f"scenario {scenario!r} is not in the plan "
                                         f"(scenarios: {known})")])
        tables = {name: table[table["scenario"] == scenario].drop(columns="scenario")
                  .reset_index(drop=True) for name, table in self.tables.items()}
        return Solution(status=self.status, objective_kind=self.objective_kind,
                        objective=entry["objective"], bound=None, gap=None, solver=self.solver,
                        wall_s=self.wall_s, instance=self.instance, current=entry["current"],
                        reference=entry["reference"], tables=tables, build_s=self.build_s)

    # -- construction

    @classmethod
    def from_evaluations(cls, instance: "Instance", objective_kind: str, status: str,
                         bound: float | None, gap: float | None, solver: dict, wall_s: float,
                         build_s: float | None, plan: "Evaluation", posture: pd.DataFrame,
                         current: "Evaluation", reference: "Evaluation") -> "Solution":
        tables = {
            "summary": summary_table(instance, plan, current, reference),
            "assignments": assignment_table(instance, posture),
            "substitutes": plan.substitutes.reset_index(drop=True),
            "moves": plan.moves.reset_index(drop=True),
            "coverage": plan.coverage,
        }
        objective = {"coverage": plan.total, "substitute_cost": plan.substitute_cost,
                     "moves": plan.moves_total}
        if instance.has_turns:
            tables["turns"] = plan.turns.reset_index(drop=True)
            objective["turns"] = plan.turns_total
        if instance.kill_probability:
            tables["defeat"] = plan.defeat_table
            objective["leakers_per_100"] = plan.leakers_per_100
        return cls(
            status=status, objective_kind=objective_kind,
            objective=objective,
            bound=bound, gap=gap, solver=solver, wall_s=wall_s, build_s=build_s,
            instance={"name": instance.name, "sha256": instance.sha256,
                      "path": str(instance.path.resolve()) if instance.path else None},
            current=evaluation_digest(instance, current),
            reference=evaluation_digest(instance, reference), tables=tables)

    @classmethod
    def from_scenarios(cls, instance: "Instance", parts: list["Solution"], risk: str, status: str,
                       bound: float | None, gap: float | None, solver: dict, wall_s: float,
                       build_s: float | None, values: dict[str, Any] | None) -> "Solution":
        """A hedged plan from one deterministic-shaped solution per scenario (in the order of
        `instance.scenario_ids`): tables stacked with a `scenario` column, objective and
        comparisons as expectations over the scenarios."""
        ids, probability = instance.scenario_ids, instance.scenario_probability
        tables = {name: pd.concat([part.tables[name].assign(scenario=scenario)
                                   for scenario, part in zip(ids, parts)], ignore_index=True)
                  for name in parts[0].tables}
        tables = {name: table[["scenario", *[c for c in table.columns if c != "scenario"]]]
                  for name, table in tables.items()}
        entries = [{"id": scenario, "probability": float(p), "objective": part.objective,
                    "current": part.current, "reference": part.reference}
                   for scenario, p, part in zip(ids, probability, parts)]
        return cls(
            status=status, objective_kind=parts[0].objective_kind,
            objective=expected([part.objective for part in parts], probability),
            bound=bound, gap=gap, solver=solver, wall_s=wall_s, build_s=build_s,
            instance=parts[0].instance,
            current=_expected_digest(ids, probability, [part.current for part in parts]),
            reference=_expected_digest(ids, probability, [part.reference for part in parts]),
            tables=tables, risk=risk, scenarios=entries, values=values)

    # -- JSON

    def to_dict(self) -> dict[str, Any]:
        return {
            "layerdef_solution": SOLUTION_FORMAT,
            "status": self.status,
            "objective_kind": self.objective_kind,
            "objective": self.objective,
            "bound": _finite(self.bound),
            "gap": _finite(self.gap),
            "solver": self.solver,
            "wall_s": round(self.wall_s, 4),
            "build_s": None if self.build_s is None else round(self.build_s, 4),
            "instance": self.instance,
            "current": self.current,
            "reference": self.reference,
            **({"risk": self.risk, "scenarios": self.scenarios, "values": self.values}
               if self.hedged else {}),
            "tables": {name: _records(self.tables[name]) for name in self.table_names},
        }

    def to_json(self) -> str:
        document = self.to_dict()
        SolutionDocument.model_validate(document)  # the contract holds for what is written
        return json.dumps(document, indent=1, allow_nan=False)

    def write(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    def write_csv(self, directory: str | Path) -> list[Path]:
        """One CSV per table in `directory`; returns the paths written."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for name in self.table_names:
            path = directory / f"{name}.csv"
            self.tables[name].to_csv(path, index=False)
            paths.append(path)
        return paths

    @classmethod
    def read(cls, path: str | Path) -> "Solution":
        """Load a solution JSON; a file that is not one is a located input problem."""
        path = Path(path)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InstanceError([Problem(str(path), f"not a readable solution JSON: {error}")])
        if not isinstance(document, dict) or document.get("layerdef_solution") != SOLUTION_FORMAT:
            raise InstanceError([Problem(str(path), "not a layerdef solution "
                                         "(missing `layerdef_solution: 1`)")])
        try:
            SolutionDocument.model_validate(document)
        except ValidationError as error:
            raise InstanceError([Problem(str(path), f"{detail['msg']}", "solution",
                                         field=".".join(str(part) for part in detail["loc"]))
                                 for detail in error.errors()[:50]]) from None
        try:
            first = ["scenario"] if document.get("scenarios") is not None else []
            names = [*TABLE_NAMES, *(n for n in OPTIONAL_TABLES if n in document["tables"])]
            tables = {name: pd.DataFrame(document["tables"][name], columns=first + table_columns(
                          name, document["tables"][name][0] if document["tables"][name] else {}))
                      for name in names}
            return cls(status=document["status"], objective_kind=document["objective_kind"],
                       objective=document["objective"], bound=document["bound"],
                       gap=document["gap"], solver=document["solver"], wall_s=document["wall_s"],
                       build_s=document.get("build_s"), instance=document["instance"],
                       current=document["current"], reference=document["reference"], tables=tables,
                       risk=document.get("risk"), scenarios=document.get("scenarios"),
                       values=document.get("values"))
        except (KeyError, TypeError, ValueError) as error:
            raise InstanceError([Problem(str(path), f"solution JSON lacks {error}")])


def summary_table(instance: "Instance", plan: "Evaluation", current: "Evaluation",
                  reference: "Evaluation") -> pd.DataFrame:
    """Per period: plan, current and reference coverage, the gap to the reference."""
    reference_value = reference.value_by_period
    share = [p / r if r > 0 else 1.0 for p, r in zip(plan.value_by_period, reference_value)]
    cost_by_period = [0.0] * instance.T
    period_index = {label: t for t, label in enumerate(instance.periods)}
    for _, row in plan.substitutes.iterrows():
        per_period = row["cost"] / row["periods"]
        for t in range(period_index[row["first"]], period_index[row["last"]] + 1):
            cost_by_period[t] += per_period
    return pd.DataFrame({
        "period": instance.periods,
        "plan": plan.value_by_period,
        "current": current.value_by_period,
        "reference": reference_value,
        "gap": reference_value - plan.value_by_period,
        "share_of_reference": share,
        "substitute_cost": cost_by_period,
        "moves": plan.moves_by_period,
        "unmet_requirements": (plan.shortfall > 1e-9).sum(axis=(0, 1, 2)),
        **({"turns": plan.turns.groupby("period").size().reindex(instance.periods, fill_value=0).to_numpy()}
           if instance.has_turns else {}),
    })


def assignment_table(instance: "Instance", posture: pd.DataFrame) -> pd.DataFrame:
    """The posture with each unit's system and owner, and whether it is a substitute."""
    unit_system = {u: instance.systems[k] for u, k in zip(instance.unit_ids, instance.unit_system)}
    unit_owner = {u: instance.owners[o] for u, o in zip(instance.unit_ids, instance.unit_owner)}
    for unit, f in instance.substitute_offer.items():
        unit_system[unit] = instance.systems[instance.offer_system[f]]
        unit_owner[unit] = instance.owners[instance.offer_owner[f]]
    table = posture[["period", "unit", "position", *(["heading"] if "heading" in posture else [])]].copy()
    table.insert(2, "system", table["unit"].map(unit_system))
    table.insert(3, "owner", table["unit"].map(unit_owner))
    table["substitute"] = ~table["unit"].isin(instance.unit_ids)
    return table.reset_index(drop=True)


def evaluation_digest(instance: "Instance", evaluation: "Evaluation") -> dict[str, Any]:
    """The figures of a comparison posture that the solution keeps."""
    unmet = evaluation.unmet
    where = ["period", "site", "layer", *(["threat"] if "threat" in unmet else [])]
    return {
        "coverage": evaluation.total,
        "substitute_cost": evaluation.substitute_cost,
        "moves": evaluation.moves_total,
        **({"turns": evaluation.turns_total} if instance.has_turns else {}),
        **({"leakers_per_100": evaluation.leakers_per_100} if instance.kill_probability else {}),
        "by_period": [float(v) for v in evaluation.value_by_period],
        "unmet": _records(unmet[[*where, "required", "units", "shortfall"]]),
    }


def _expected_digest(ids: list[str], probability, digests: list[dict[str, Any]]) -> dict[str, Any]:
    """Expected figures of a comparison posture over the scenarios; its unmet requirements
    listed with their scenario."""
    by_period = expected([dict(enumerate(d["by_period"])) for d in digests], probability)
    figures = [k for k in ("coverage", "substitute_cost", "moves", "turns", "leakers_per_100") if k in digests[0]]
    return {**expected([{k: d[k] for k in figures} for d in digests],
                       probability),
            "by_period": list(by_period.values()),
            "unmet": [{"scenario": scenario, **row} for scenario, d in zip(ids, digests) for row in d["unmet"]]}


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(table.to_json(orient="records"))


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value
