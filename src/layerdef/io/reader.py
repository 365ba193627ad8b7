"""Instance format v1: schema, loading (YAML with inline or CSV tables) and located validation.

The file is parsed once by PyYAML (its C parser where built) into a node tree that gives the
line of every row, checked for aliases that never end or expand past a bound, then built into
plain data, so that each problem names file, line, table, row, id and field.
Rows are checked one by one with pydantic, then references and cross-table rules are
checked here; every problem is collected before `InstanceError` is raised."""

from __future__ import annotations

import hashlib
import math
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from layerdef.core.geometry import heading_degrees, heading_index
from layerdef.core.instance import FORMAT_VERSION, Instance
from layerdef.errors import InstanceError, Problem
from layerdef.io.catalog import load_catalog
from layerdef.io.csvfile import read_csv_table

TABLES = ("sites", "positions", "units", "substitutes", "threats")


#: tables an instance may leave out
OPTIONAL_TABLES = ("substitutes", "threats")


TOP_LEVEL_KEYS = {
    "layerdef", "name", "description", "horizon", "layers", "depth_weights", "systems",
    *TABLES, "limits", "objective", "target", "target_scope", "coverage", "scenarios", "headings", "value",
    "threat_classes",
}


#: launch areas' shares sum to 1 within this
SHARE_TOLERANCE = 1e-9


MONTH = re.compile(r"^(\d{4})-(\d{2})$")


#: aliases may add at most this many nodes (or as many as the file has) when expanded
MAX_ALIAS_NODES = 100_000


#: PyYAML's C parser where it is built (6.7 MB inline: 41 s with the Python one, parsed twice)
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


#: Upper bounds on counts and amounts: far above any theater, low enough that arrays and the
#: solver's arithmetic never overflow (a capacity of 2**63 must be a located problem, not a crash).
MAX_COUNT = 100_000


MAX_AMOUNT = 1e9


#: nonzero offer costs are at least this (HiGHS drops matrix entries of 1e-9 and below) and
#: within this ratio of each other (its integrality tolerance is 1e-6)
MIN_COST = 1e-6


MAX_COST_RATIO = 1e5


#: nonzero depth weights within this ratio (1e9 to 1 miscounted moves: the fuzz campaign)
MAX_DEPTH_RATIO = 1e6


Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, coerce_numbers_to_str=True)


class _TableRow(_Row):
    note: str | None = None  # free text: the source of the row's numbers, or its assumption


class LayerSpec(_Row):
    weight: float = Field(1.0, ge=0, le=MAX_AMOUNT)


class SystemSpec(_Row):
    name: str | None = None
    covers: dict[str, Annotated[float, Field(le=MAX_AMOUNT)]] = Field(default_factory=dict)
    sector: float | None = Field(None, gt=0, le=360, description="degrees the radar sees; 360: every direction")
    relocation_days: float | None = Field(None, ge=0, le=MAX_AMOUNT, description="days out of action after a move")
    pk: dict[str, Annotated[float, Field(gt=0, lt=1)]] = Field(
        default_factory=dict, description="one engagement's kill probability, by layer")
    note: str | None = None


class ThreatClassSpec(_Row):
    layers: list[str] = Field(min_length=1, description="the layers that engage the class")
    weight: float = Field(1.0, ge=0, le=MAX_AMOUNT)
    note: str | None = None


class HorizonSpec(_Row):
    start: str | None = None
    periods: int | None = Field(None, ge=1, le=600)
    labels: list[str] | None = None
    period_days: float = Field(30.0, gt=0, le=MAX_AMOUNT)


class LimitsSpec(_Row):
    substitute_budget: float | None = Field(None, ge=0, le=MAX_AMOUNT)
    moves_per_period: int | None = Field(None, ge=0, le=MAX_COUNT)
    moves_total: int | None = Field(None, ge=0, le=MAX_COUNT)
    turns_per_period: int | None = Field(None, ge=0, le=MAX_COUNT)
    turns_total: int | None = Field(None, ge=0, le=MAX_COUNT)


class Settings(_Row):
    """The instance's top-level settings that are single values (the tables and mappings have
    models of their own; unknown top-level keys are reported by `_Reader.build`)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    name: str | None = None
    description: str | None = None
    objective: Literal["coverage", "min-cost"] = "coverage"
    target: float = Field(1.0, ge=0, le=10, description="share of the reference coverage")
    target_scope: Literal["total", "site"] = Field(
        "total", description="min-cost: the target holds for each period's total, or for every site, "
                             "layer (or threat class), launch area and period")
    headings: int = Field(1, ge=1, le=360, description="orientations of a sector-limited unit")
    value: Literal["depth", "kill-probability"] = "depth"


class ScenarioRow(_TableRow):
    id: str = Field(min_length=1)
    probability: float = Field(ge=0, le=1)
    away: dict[str, list[tuple[str, str]]] = Field(default_factory=dict)


class SiteRow(_TableRow):
    id: str = Field(min_length=1)
    name: str | None = None
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    weight: float = Field(1.0, ge=0, le=MAX_AMOUNT)
    require: dict[str, Count] = Field(default_factory=dict)


class PositionRow(_TableRow):
    id: str = Field(min_length=1)
    name: str | None = None
    at: str | None = None
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    capacity: int = Field(1, ge=0, le=MAX_COUNT)
    hosts: list[str] | None = None


class UnitRow(_TableRow):
    id: str = Field(min_length=1)
    name: str | None = None
    system: str
    owner: str = Field(min_length=1)
    home: str
    fixed: bool = False
    away: list[tuple[str, str]] = Field(default_factory=list)
    heading: float | None = Field(None, ge=0, lt=360, description="degrees, at home")


class SubstituteRow(_TableRow):
    id: str = Field(min_length=1)
    system: str
    owner: str = Field(min_length=1)
    source: str | None = None
    count: int = Field(1, ge=1, le=1000)
    earliest: str | None = None
    min_periods: int = Field(1, ge=1, le=MAX_COUNT)
    max_periods: int | None = Field(None, ge=1, le=MAX_COUNT)
    cost: float = Field(0.0, ge=0, le=MAX_AMOUNT)
    lead: int = Field(0, ge=0, le=MAX_COUNT)


class ThreatRow(_TableRow):
    id: str = Field(min_length=1)
    name: str | None = None
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    share: float = Field(ge=0, le=1)
    layers: list[str] | None = None  # default: every layer


ROW_MODELS: dict[str, type[_TableRow]] = {
    "sites": SiteRow, "positions": PositionRow, "units": UnitRow, "substitutes": SubstituteRow,
    "threats": ThreatRow,
}


#: Columns that hold several values; in CSV they are `;`-separated.
CSV_LIST_COLUMNS = {("positions", "hosts"), ("units", "away"), ("sites", "require"), ("threats", "layers")}


def load(path: str | Path) -> Instance:
    """Read, validate and index an instance file; raise InstanceError with every problem."""
    path = Path(path)
    return loads(_read_bytes(path), path)


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, or an InstanceError saying why it cannot be read."""
    try:
        return path.read_bytes()
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the path
        reason = getattr(error, "strerror", None) or str(error)
        raise InstanceError([Problem(str(path), f"cannot read the file: {reason}")]) from None


def loads(raw_bytes: bytes | str, path: str | Path = "<string>") -> Instance:
    """Validate an instance given as YAML text; CSV tables are found relative to `path`."""
    if isinstance(raw_bytes, str):
        raw_bytes = raw_bytes.encode()
    path = Path(path)
    reader = _Reader(path)
    document = reader.parse(raw_bytes)
    instance = reader.build(document) if document is not None else None
    if reader.problems or instance is None:
        raise InstanceError(sorted(reader.problems, key=lambda p: (p.file != str(path), p.file,
                                                                   p.line or 0)))
    instance.sha256 = hashlib.sha256(raw_bytes).hexdigest()
    instance.sources = list(dict.fromkeys(reader.sources))
    return instance


class _Reader:
    """Collects problems while turning one YAML document into an Instance."""

    def __init__(self, path: Path):
        self.path = path
        self.file = str(path)
        self.problems: list[Problem] = []
        self.lines: dict[tuple, int] = {}
        self.row_files: dict[str, str] = {}  # table -> file its rows came from
        self.row_lines: dict[str, list[int]] = {}  # table -> line of each row
        self.all_ids: dict[str, set[str]] = {}  # table -> ids of every row, valid or not
        self.sources: list[Path] = [path]  # every file the instance reads
        self.reported: set[Problem] = set()
        self.unread: set[str] = set()  # tables whose CSV could not be read (already reported)
        self.period_days = 30.0  # the horizon's, once read

    # -- reporting

    def problem(self, message: str, table: str | None = None, row: int | None = None,
                row_id: str | None = None, field: str | None = None) -> None:
        file, line = self.file, None
        if table in self.row_files and row is not None:
            file = self.row_files[table]
            line = self.row_lines[table][row] if row < len(self.row_lines[table]) else None
        elif table is not None:
            key: tuple = (table,) if row is None else (table, row)
            line = self.lines.get(key + ((field,) if field and row is None else ()),
                                  self.lines.get(key))
        problem = Problem(file, message, table, row, row_id, field, line)
        if problem not in self.reported:  # a range whose two ends are the same bad label
            self.reported.add(problem)
            self.problems.append(problem)

    # -- parsing

    def parse(self, raw_bytes: bytes) -> dict | None:
        try:
            text = raw_bytes.decode("utf-8")
        except UnicodeDecodeError as error:
            self.problems.append(Problem(self.file, f"not UTF-8 text ({error.reason} at byte {error.start})"))
            return None
        loader = YAML_LOADER(text)
        try:
            node = loader.get_single_node()
            trouble = _alias_trouble(node) if node is not None else None
            if trouble is not None:
                self.problems.append(Problem(self.file, trouble[0], line=trouble[1]))
                return None
            document = loader.construct_document(node) if node is not None else None
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = mark.line + 1 if mark else None
            self.problems.append(Problem(self.file, f"not valid YAML: {getattr(error, 'problem', error)}",
                                         line=line))
            return None
        except RecursionError:
            self.problems.append(Problem(self.file, "not valid YAML here: nested too deeply"))
            return None
        finally:
            loader.dispose()
        if not isinstance(document, dict):
            self.problems.append(Problem(self.file, "expected a YAML mapping at the top level "
                                         "(layerdef: 1, horizon, layers, sites, ...)"))
            return None
        _record_lines(node, (), self.lines)
        return document

    # -- building

    def build(self, doc: dict) -> Instance | None:
        for key in doc:
            if key not in TOP_LEVEL_KEYS:
                self.problem(f"unknown field {key!r}; expected one of {', '.join(sorted(TOP_LEVEL_KEYS))}",
                             table=str(key))
        version = doc.get("layerdef")
        if version != FORMAT_VERSION:
            self.problem(f"format version {version!r} is not supported; expected `layerdef: 1`",
                         table="layerdef")
        periods = self.horizon(doc.get("horizon"))
        layers, layer_weight = self.layer_table(doc.get("layers"))
        depth = self.depth_weights(doc.get("depth_weights", [1.0]))
        systems = self.system_table(doc.get("systems") or {}, layers)
        rows = {table: self.rows(table, doc.get(table)) for table in TABLES}
        limits = self.single("limits", LimitsSpec, doc.get("limits") or {})
        settings = self.settings(doc)
        if periods is None or layers is None or systems is None or depth is None or settings is None:
            return None
        return self.assemble(doc, periods, layers, layer_weight, depth, systems, rows, limits,
                             settings)

    def settings(self, doc: dict) -> Settings | None:
        """The single-valued top-level settings, each problem located by its key."""
        try:
            return Settings(**{str(key): value for key, value in doc.items()})
        except ValidationError as error:
            for detail in error.errors():
                self.problem(_describe(detail), table=".".join(str(part) for part in detail["loc"]))
            return None

    def horizon(self, spec: Any) -> list[str] | None:
        if spec is None:
            self.problem("missing; give {start: YYYY-MM, periods: N} or {labels: [...]}",
                         table="horizon")
            return None
        horizon = self.single("horizon", HorizonSpec, spec)
        if horizon is None:
            return None
        self.period_days = horizon.period_days
        if horizon.labels is not None:
            labels = [str(label) for label in horizon.labels]
            if not labels:
                self.problem("labels is empty; expected at least one period", table="horizon",
                             field="labels")
                return None
            seen = set()
            for label in labels:
                if label in seen:
                    self.problem(f"period label {label!r} appears twice", table="horizon",
                                 field="labels")
                seen.add(label)
            if horizon.periods is not None and horizon.periods != len(labels):
                self.problem(f"periods is {horizon.periods} but {len(labels)} labels are given",
                             table="horizon", field="periods")
            return labels
        match = MONTH.match(horizon.start or "")
        if not match or not 1 <= int(match.group(2)) <= 12 or horizon.periods is None:
            self.problem(f"expected {{start: YYYY-MM, periods: N}} or {{labels: [...]}}, got "
                         f"start={horizon.start!r}, periods={horizon.periods!r}", table="horizon")
            return None
        year, month = int(match.group(1)), int(match.group(2)) - 1
        return [f"{year + (month + i) // 12:04d}-{(month + i) % 12 + 1:02d}"
                for i in range(horizon.periods)]

    def layer_table(self, spec: Any) -> tuple[list[str] | None, np.ndarray]:
        if not isinstance(spec, dict) or not spec:
            self.problem("expected a mapping of layer name to {weight: w}, e.g. "
                         "{upper: {weight: 1}, lower: {weight: 1}}", table="layers")
            return None, np.zeros(0)
        names, weights = [], []
        for name, value in spec.items():
            layer = self.single("layers", LayerSpec, value if value is not None else {}, field=str(name))
            names.append(str(name))
            weights.append(layer.weight if layer else 0.0)
        return names, np.array(weights, dtype=float)

    def depth_weights(self, spec: Any) -> np.ndarray | None:
        if not isinstance(spec, list) or not spec:
            self.problem(f"{spec!r}: expected a non-empty list of numbers", table="depth_weights")
            return None
        ok = True
        for i, value in enumerate(spec):
            if not _is_number(value) or not math.isfinite(float(value)) or float(value) < 0:
                self.problem(f"entry {i} is {value!r}; expected a finite number >= 0",
                             table="depth_weights")
                ok = False
        if not ok:
            return None
        weights = np.array(spec, dtype=float)
        positive = weights[weights > 0]
        if len(positive) and positive.max() > MAX_DEPTH_RATIO * positive.min():
            self.problem(f"the weights span more than a factor {MAX_DEPTH_RATIO:g} ({positive.max():g} "
                         f"to {positive.min():g}); levels so far apart cannot be weighed exactly "
                         "together (give 0 for a level worth nothing)", table="depth_weights")
        for i in np.nonzero(np.diff(weights) > 0)[0]:
            self.problem(f"entry {i + 1} ({weights[i + 1]}) is larger than entry {i} "
                         f"({weights[i]}); depth weights must be non-increasing",
                         table="depth_weights")
        return weights

    def system_table(self, spec: Any, layers: list[str] | None) -> dict[str, SystemSpec] | None:
        systems = {name: SystemSpec(**value) for name, value in load_catalog().items()}
        if not isinstance(spec, dict):
            self.problem("expected a mapping of system name to {covers: {layer: km}}", table="systems")
            return systems
        for name, value in spec.items():
            system = self.single("systems", SystemSpec, value, field=str(name))
            if system is not None:
                systems[str(name)] = system
                for layer, radius in system.covers.items():
                    if layers is not None and layer not in layers:
                        self.problem(f"layer {layer!r} is not defined in `layers`",
                                     table="systems", field=f"{name}.covers")
                    if radius < 0:
                        self.problem(f"radius {radius} is negative; expected km >= 0",
                                     table="systems", field=f"{name}.covers.{layer}")
        return systems

    def single(self, table: str, model: type[_Row], value: Any, field: str | None = None):
        """Validate one mapping (not a table row); report errors located by field."""
        if not isinstance(value, dict):
            self.problem(f"{value!r}: expected a mapping", table=table, field=field)
            return None
        try:
            return model(**{str(k): v for k, v in value.items()})
        except ValidationError as error:
            for detail in error.errors():
                name = ".".join(str(part) for part in detail["loc"])
                self.problem(_describe(detail), table=table,
                             field=f"{field}.{name}" if field else name)
            return None

    def rows(self, table: str, spec: Any) -> list[_Row | None]:
        """Validate every row of a table given inline or as a CSV path."""
        if spec is None:
            if table not in OPTIONAL_TABLES:
                self.problem("the table is missing; give it inline or as a CSV path", table=table)
            return []
        if isinstance(spec, str):
            spec = self.read_csv(table, spec)
            if spec is None:
                return []
        if not isinstance(spec, list):
            self.problem(f"expected a list of rows or a CSV path, got {type(spec).__name__}",
                         table=table)
            return []
        parsed: list[_Row | None] = []
        first_row: dict[str, int] = {}
        for index, row in enumerate(spec):
            if not isinstance(row, dict):
                self.problem(f"{row!r}: expected a mapping of field to value", table=table, row=index)
                parsed.append(None)
                continue
            row_id = str(row.get("id")) if row.get("id") is not None else None
            try:
                parsed.append(ROW_MODELS[table](**{str(k): v for k, v in row.items()}))
            except ValidationError as error:
                for detail in error.errors():
                    name = ".".join(str(part) for part in detail["loc"])
                    self.problem(_describe(detail), table=table, row=index, row_id=row_id,
                                 field=name or None)
                parsed.append(None)
            if row_id is not None and row_id in first_row:
                self.problem(f"duplicate id {row_id!r} (first used in row {first_row[row_id]})",
                             table, index, row_id, "id")
                parsed[-1] = None
            first_row.setdefault(row_id, index)
        self.all_ids[table] = set(first_row) - {None}
        return parsed

    def read_csv(self, table: str, relative: str) -> list[dict] | None:
        """Rows of a CSV table as dicts, `;`-separated lists split, empty cells dropped. A file
        whose header names none of the table's columns is reported once, its lines not echoed
        (`units: ../../etc/passwd` printed the file back, a problem per line)."""
        path = self.path.parent / relative
        self.sources.append(path)
        content, problems = read_csv_table(path, table, relative, self.file)
        for problem in problems:
            if problem.file == self.file:  # the file cannot be read: located where it is named
                self.problem(problem.message, table=table)
            else:
                self.problems.append(problem)
        if content is None:
            self.unread.add(table)
            return None
        header = content.header
        expected = (set(ROW_MODELS[table].model_fields) if table in ROW_MODELS
                    else {"position", "site", "system", "layer"})
        if not expected & set(header):
            self.unread.add(table)
            self.problems.append(Problem(str(path), "the first line is not a header of this table "
                                         f"(expected columns such as {', '.join(sorted(expected))}); "
                                         "is this the right file?", table, line=content.header_line))
            return None
        rows = []
        for index, (record, line) in enumerate(zip(content.records, content.lines)):
            if len(record) != len(header):
                self.problems.append(Problem(
                    str(path), f"{len(record)} fields where the header has {len(header)}",
                    table, index, line=line))
            row = {}
            for name, cell in zip(header, record):
                cell = cell.strip()
                if cell == "":
                    continue
                row[name] = _split_csv_cell(table, name, cell)
            rows.append(row)
        self.row_files[table] = str(path)
        self.row_lines[table] = content.lines
        return rows

    # -- cross-table checks and arrays

    def assemble(self, doc, periods, layers, layer_weight, depth, systems, rows, limits,
                 settings: Settings) -> Instance | None:
        period_index = {label: t for t, label in enumerate(periods)}
        layer_index = {name: i for i, name in enumerate(layers)}
        sites = [r for r in rows["sites"] if r is not None]
        positions = [r for r in rows["positions"] if r is not None]
        units = [r for r in rows["units"] if r is not None]
        offers = [r for r in rows["substitutes"] if r is not None]
        site_index = {s.id: i for i, s in enumerate(sites)}
        position_index = {p.id: i for i, p in enumerate(positions)}
        position_rows = [row for row, _ in self.indexed("positions", rows)]

        for table, entries in (("sites", sites), ("positions", positions), ("units", units)):
            if not entries and not any(r is None for r in rows[table]) and table not in self.unread:
                self.problem("the table is empty; expected at least one row", table=table)

        used_systems = list(dict.fromkeys([u.system for u in units] + [f.system for f in offers]))
        system_names = [k for k in used_systems if k in systems]
        system_index = {k: i for i, k in enumerate(system_names)}
        owners = list(dict.fromkeys([u.owner for u in units] + [f.owner for f in offers]
                                    + [h for p in positions for h in (p.hosts or [])]))
        owner_index = {o: i for i, o in enumerate(owners)}

        requirement = np.zeros((len(sites), len(layers)), dtype=np.int64)
        for row, site in self.indexed("sites", rows):
            for layer, count in site.require.items():
                if layer not in layer_index:
                    self.problem(f"layer {layer!r} is not defined in `layers` "
                                 f"({', '.join(layers)})", "sites", row, site.id, f"require.{layer}")
                else:
                    requirement[site_index[site.id], layer_index[layer]] = count

        position_lat, position_lon = [], []
        admits = np.zeros((len(positions), len(owners)), dtype=bool)
        for row, position in self.indexed("positions", rows):
            lat, lon = position.lat, position.lon
            if position.at is not None:
                if position.at not in site_index:
                    self.dangling("sites", position.at, "positions", row, position.id, "at")
                    lat = lon = 0.0
                elif lat is not None or lon is not None:
                    self.problem("give either `at` or `lat`/`lon`, not both", "positions", row,
                                 position.id, "at")
                else:
                    site = sites[site_index[position.at]]
                    lat, lon = site.lat, site.lon
            elif lat is None or lon is None:
                self.problem("no location: give `at` (a site id) or both `lat` and `lon`",
                             "positions", row, position.id, "lat")
                lat = lon = 0.0
            position_lat.append(lat)
            position_lon.append(lon)
            p = position_index[position.id]
            if position.hosts is None:
                admits[p, :] = True
            else:
                for host in position.hosts:
                    admits[p, owner_index[host]] = True

        present = np.ones((len(units), len(periods)), dtype=bool)
        home_count = np.zeros(len(positions), dtype=np.int64)
        home_rows: dict[int, list[str]] = {}
        for u, (row, unit) in enumerate(self.indexed("units", rows)):
            if unit.system not in systems:
                self.problem(f"system {unit.system!r} is not in the catalog or `systems` "
                             f"(known: {', '.join(sorted(systems))})", "units", row, unit.id, "system")
            if unit.home not in position_index:
                self.dangling("positions", unit.home, "units", row, unit.id, "home")
            else:
                p = position_index[unit.home]
                home_count[p] += 1
                home_rows.setdefault(p, []).append(unit.id)
                if not admits[p, owner_index[unit.owner]]:
                    self.problem(f"home {unit.home!r} does not admit owner {unit.owner!r} "
                                 f"(hosts: {', '.join(positions[p].hosts or [])})",
                                 "units", row, unit.id, "home")
            for k, (first, last) in enumerate(unit.away):
                span = self.period_range(first, last, period_index, "units", row, unit.id, f"away.{k}")
                if span is not None:
                    present[u, span[0]:span[1] + 1] = False
        for p, count in enumerate(home_count):
            if count > positions[p].capacity:
                self.problem(f"capacity {positions[p].capacity} but {count} units have it as home "
                             f"({', '.join(home_rows[p])}); the reference posture must fit",
                             "positions", position_rows[p], positions[p].id,
                             "capacity")

        earliest = np.zeros(len(offers), dtype=np.int64)
        max_periods = np.zeros(len(offers), dtype=np.int64)
        for f, (row, offer) in enumerate(self.indexed("substitutes", rows)):
            if offer.system not in systems:
                self.problem(f"system {offer.system!r} is not in the catalog or `systems` "
                             f"(known: {', '.join(sorted(systems))})", "substitutes", row, offer.id,
                             "system")
            if offer.earliest is not None:
                if offer.earliest not in period_index:
                    self.problem(f"period {offer.earliest!r} is not in the horizon "
                                 f"({periods[0]} .. {periods[-1]})", "substitutes", row, offer.id,
                                 "earliest")
                else:
                    earliest[f] = period_index[offer.earliest]
            max_periods[f] = offer.max_periods if offer.max_periods is not None else len(periods)
            if 0 < offer.cost < MIN_COST:
                self.problem(f"cost {offer.cost:g} is below {MIN_COST:g}: HiGHS takes such a "
                             "coefficient for 0 (give 0, or scale every cost and the budget up)",
                             "substitutes", row, offer.id, "cost")
            if offer.min_periods > max_periods[f]:
                self.problem(f"min_periods {offer.min_periods} > max_periods {max_periods[f]}",
                             "substitutes", row, offer.id, "min_periods")

        offer_ids = {offer.id for offer in offers}
        for row, unit in self.indexed("units", rows):
            offer, _, number = unit.id.rpartition("#")
            if offer in offer_ids and number.isdigit():
                self.problem(f"{unit.id!r} is the name of a unit of substitute offer {offer!r} "
                             f"({offer}#1 .. {offer}#count); give the unit another id",
                             "units", row, unit.id, "id")

        self.cost_range(offers, rows)

        threats = self.threat_table(rows, layers, layer_index)
        classes = self.threat_class_table(doc.get("threat_classes"), layers, layer_weight)
        if settings.value == "kill-probability":
            self.kill_probabilities(systems, system_names, classes[1], layers, doc.get("systems") or {})
        headings = heading_degrees(settings.headings)
        explicit = None
        if doc.get("coverage") is not None:
            explicit = self.coverage_rows(doc["coverage"], position_index, site_index,
                                          system_index, systems, layer_index,
                                          {t.id: g for g, t in enumerate(threats)}, headings,
                                          (len(system_names), len(positions), len(sites), len(layers)))
        unit_heading = self.unit_headings(rows, headings)
        scenarios = self.scenario_table(doc.get("scenarios"), {u.id: i for i, u in enumerate(units)},
                                        present, period_index)
        if self.problems:
            return None

        radius = np.full((len(system_names), len(layers)), np.nan)
        for k, name in enumerate(system_names):
            for layer, km in systems[name].covers.items():
                if layer in layer_index:  # catalog layers the instance does not use are ignored
                    radius[k, layer_index[layer]] = km
        limits = limits or LimitsSpec()
        instance = Instance(
            name=str(doc.get("name") or self.path.stem), description=str(doc.get("description") or ""),
            path=self.path, sha256="", periods=periods, layers=layers,
            layer_weight=layer_weight, depth_weights=depth, systems=system_names,
            system_radius=radius, owners=owners,
            site_ids=[s.id for s in sites], site_names=[s.name or s.id for s in sites],
            site_lat=np.array([s.lat for s in sites], float), site_lon=np.array([s.lon for s in sites], float),
            site_weight=np.array([s.weight for s in sites], float), requirement=requirement,
            position_ids=[p.id for p in positions], position_lat=np.array(position_lat, float),
            position_lon=np.array(position_lon, float),
            capacity=np.array([p.capacity for p in positions], np.int64), admits=admits,
            unit_ids=[u.id for u in units],
            unit_system=np.array([system_index[u.system] for u in units], np.int64),
            unit_owner=np.array([owner_index[u.owner] for u in units], np.int64),
            unit_home=np.array([position_index[u.home] for u in units], np.int64),
            unit_fixed=np.array([u.fixed for u in units], bool), present=present,
            offer_ids=[f.id for f in offers],
            offer_system=np.array([system_index[f.system] for f in offers], np.int64),
            offer_owner=np.array([owner_index[f.owner] for f in offers], np.int64),
            offer_source=[f.source or "" for f in offers],
            offer_count=np.array([f.count for f in offers], np.int64), offer_earliest=earliest,
            offer_min_periods=np.array([f.min_periods for f in offers], np.int64),
            offer_max_periods=max_periods,
            offer_cost=np.array([f.cost for f in offers], float),
            offer_lead=np.array([f.lead for f in offers], np.int64),
            substitute_budget=limits.substitute_budget, moves_per_period=limits.moves_per_period,
            moves_total=limits.moves_total, objective=settings.objective, target=settings.target,
            target_scope=settings.target_scope,
            explicit_coverage=explicit, scenario_ids=scenarios[0],
            scenario_probability=scenarios[1], scenario_present=scenarios[2],
            threat_ids=[t.id for t in threats], threat_lat=np.array([t.lat for t in threats], float),
            threat_lon=np.array([t.lon for t in threats], float),
            threat_share=np.array([t.share for t in threats], float),
            threat_layers=np.array([[t.layers is None or layer in t.layers for layer in layers]
                                    for t in threats], bool).reshape(len(threats), len(layers)),
            headings=settings.headings,
            system_sector=np.array([systems[k].sector or 360.0 for k in system_names], float),
            system_relocation_days=np.array([systems[k].relocation_days or 0.0 for k in system_names], float),
            period_days=self.period_days, turns_per_period=limits.turns_per_period,
            turns_total=limits.turns_total, value=settings.value, class_ids=classes[0],
            class_layers=classes[1], class_weight=classes[2],
            system_pk=np.array([[systems[k].pk.get(layer, np.nan) for layer in layers]
                                for k in system_names], float).reshape(len(system_names), len(layers)),
        )
        given = unit_heading >= 0  # a unit without a heading faces the best one from its home
        defaults = instance.best_heading[instance.unit_system, instance.unit_home]
        instance.unit_heading = np.where(given & instance.sector_limited[instance.unit_system],
                                         unit_heading, np.where(instance.sector_limited[instance.unit_system],
                                                                defaults, 0)).astype(np.int64)
        return instance

    def threat_class_table(self, spec: Any, layers: list[str],
                           layer_weight: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(ids, (C, L) layers that engage each class, (C,) weights); without
        `threat_classes`, each layer is its own class with the layer's weight."""
        if spec is None:
            return list(layers), np.eye(len(layers), dtype=bool), np.asarray(layer_weight, float)
        if not isinstance(spec, dict) or not spec:
            self.problem("expected a mapping of class name to {layers: [...], weight: w}",
                         table="threat_classes")
            return [], np.zeros((0, len(layers)), bool), np.zeros(0)
        ids, engaging, weights = [], [], []
        for name, value in spec.items():
            threat_class = self.single("threat_classes", ThreatClassSpec, value, field=str(name))
            if threat_class is None:
                continue
            for layer in threat_class.layers:
                if layer not in layers:
                    self.problem(f"layer {layer!r} is not defined in `layers` ({', '.join(layers)})",
                                 table="threat_classes", field=f"{name}.layers")
            ids.append(str(name))
            engaging.append([layer in threat_class.layers for layer in layers])
            weights.append(threat_class.weight)
        return ids, np.array(engaging, bool).reshape(len(ids), len(layers)), np.array(weights, float)

    def kill_probabilities(self, systems: dict[str, SystemSpec], system_names: list[str],
                           class_layers: np.ndarray, layers: list[str], given: dict) -> None:
        """With `value: kill-probability`, every system the instance uses has a `pk` for each
        layer it covers that engages a class; pk layers of the instance's own systems exist."""
        engaging = set(np.array(layers)[class_layers.any(axis=0)]) if len(layers) else set()
        for name in system_names:
            system = systems[name]
            for layer in system.covers:
                if layer in engaging and layer not in system.pk:
                    self.problem(f"no pk for layer {layer!r}: with `value: kill-probability` every "
                                 "system that covers a layer engaging a threat class needs one "
                                 "engagement's kill probability there, in (0, 1)",
                                 table="systems", field=f"{name}.pk.{layer}")
        for name in given:
            system = systems.get(str(name))
            for layer in (system.pk if system is not None else {}):
                if layer not in layers:
                    self.problem(f"layer {layer!r} is not defined in `layers`", table="systems",
                                 field=f"{name}.pk")

    def threat_table(self, rows: dict[str, list], layers: list[str],
                     layer_index: dict[str, int]) -> list[ThreatRow]:
        """The launch areas, their layers known and their shares summing to 1."""
        threats = [t for t in rows["threats"] if t is not None]
        for row, threat in self.indexed("threats", rows):
            for layer in threat.layers or []:
                if layer not in layer_index:
                    self.problem(f"layer {layer!r} is not defined in `layers` ({', '.join(layers)})",
                                 "threats", row, threat.id, "layers")
        if threats and len(threats) == len(rows["threats"]):
            total = sum(t.share for t in threats)
            if abs(total - 1.0) > SHARE_TOLERANCE:
                self.problem(f"the shares sum to {total:.12g}; they must sum to 1 (each launch "
                             "area's share of the threat)", table="threats", field="share")
        return threats

    def unit_headings(self, rows: dict[str, list], headings: np.ndarray) -> np.ndarray:
        """(U,) each unit's heading index at home; -1 where none is given."""
        out = []
        for row, unit in self.indexed("units", rows):
            found = heading_index(unit.heading, headings)
            if found is None:
                self.problem(f"heading {unit.heading:g} is not one of the {len(headings)} headings "
                             f"({', '.join(f'{d:g}' for d in headings)} degrees; set by `headings`)",
                             "units", row, unit.id, "heading")
                found = -1
            out.append(found)
        return np.array(out, dtype=np.int64)

    def cost_range(self, offers: list[SubstituteRow], rows: dict[str, list]) -> None:
        """Nonzero offer costs within `MAX_COST_RATIO` of each other: HiGHS takes a count within
        1e-6 of a whole number as whole, so a cost a million times another could hide a period of
        the cheaper one in the budget (cost 0.002 within a budget of 0.001 beside a cost of 1e9)."""
        priced = [(row, offer) for row, offer in self.indexed("substitutes", rows) if offer.cost > 0]
        if not priced:
            return
        cheapest = min(priced, key=lambda item: item[1].cost)[1]
        for row, offer in priced:
            if offer.cost > MAX_COST_RATIO * cheapest.cost:
                self.problem(f"cost {offer.cost:g} is more than {MAX_COST_RATIO:g} times that of "
                             f"{cheapest.id!r} ({cheapest.cost:g}); costs so far apart cannot be "
                             "held exactly in one budget", "substitutes", row, offer.id, "cost")

    def scenario_table(self, spec: Any, unit_index: dict[str, int], present: np.ndarray,
                       period_index: dict[str, int]) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Scenarios of return dates: ids, probabilities summing to 1, presence per scenario
        (units not named keep their `away`)."""
        empty = ([], np.zeros(0), np.zeros((0,) + present.shape, dtype=bool))
        if spec is None:
            return empty
        if not isinstance(spec, list) or not spec:
            self.problem("expected a non-empty list of {id, probability, away}", table="scenarios")
            return empty
        ids, probabilities, presence, seen = [], [], [], {}
        stated: list[float] = []  # every row's probability, duplicates too: what the user summed
        for index, row in enumerate(spec):
            if not isinstance(row, dict):
                self.problem(f"{row!r}: expected a mapping", table="scenarios", row=index)
                continue
            try:
                scenario = ScenarioRow(**{str(k): v for k, v in row.items()})
            except ValidationError as error:
                for detail in error.errors():
                    self.problem(_describe(detail), "scenarios", index, str(row.get("id")),
                                 ".".join(str(part) for part in detail["loc"]))
                continue
            stated.append(scenario.probability)
            if scenario.id in seen:
                self.problem(f"duplicate id {scenario.id!r} (first used in row {seen[scenario.id]})",
                             "scenarios", index, scenario.id, "id")
                continue
            seen[scenario.id] = index
            here = present.copy()
            for unit, spans in scenario.away.items():
                if unit not in unit_index:
                    self.problem(f"unit {unit!r} does not exist", "scenarios", index, scenario.id,
                                 f"away.{unit}")
                    continue
                here[unit_index[unit]] = True
                for k, (first, last) in enumerate(spans):
                    span = self.period_range(first, last, period_index, "scenarios", index,
                                             scenario.id, f"away.{unit}.{k}")
                    if span is not None:
                        here[unit_index[unit], span[0]:span[1] + 1] = False
            ids.append(scenario.id)
            probabilities.append(scenario.probability)
            presence.append(here)
        if len(stated) == len(spec) and abs(sum(stated) - 1.0) > 1e-9:
            self.problem(f"probabilities sum to {sum(stated):.12g}; expected 1 (within 1e-9)",
                         table="scenarios")
        if not ids:
            return empty
        return ids, np.array(probabilities), np.array(presence)

    def dangling(self, target: str, reference: str, table: str, row: int, row_id: str,
                 field: str) -> None:
        """A reference to a missing row; silent when the row exists but is itself invalid
        (its own problem is already reported)."""
        if reference not in self.all_ids.get(target, set()):
            self.problem(f"{target[:-1]} {reference!r} does not exist", table, row, row_id, field)

    def indexed(self, table: str, rows: dict[str, list]):
        """(row number in the file, parsed row) for rows that passed the schema."""
        return [(i, r) for i, r in enumerate(rows[table]) if r is not None]

    def period_range(self, first: str, last: str, period_index: dict[str, int], table: str,
                     row: int, row_id: str, field: str) -> tuple[int, int] | None:
        ok = True
        for label in (first, last):
            if label not in period_index:
                labels = list(period_index)
                self.problem(f"period {label!r} is not in the horizon ({labels[0]} .. {labels[-1]})",
                             table, row, row_id, field)
                ok = False
        if not ok:
            return None
        if period_index[first] > period_index[last]:
            self.problem(f"range [{first}, {last}] is reversed; expected first <= last",
                         table, row, row_id, field)
            return None
        return period_index[first], period_index[last]

    def coverage_rows(self, relative: Any, position_index, site_index, system_index, systems,
                      layer_index, threat_index, headings, shape) -> np.ndarray | None:
        """(K, P, H, S, L, G) from the explicit table: a row without `heading` holds for every
        heading, one without `threat` against every launch area."""
        if not isinstance(relative, str):
            self.problem("expected the path of a CSV with columns position,site,system,layer",
                         table="coverage")
            return None
        rows = self.read_csv("coverage", relative)
        if rows is None:
            return None
        K, P, S, L = shape
        cover = np.zeros((K, P, len(headings), S, L, max(1, len(threat_index))), dtype=bool)
        lookups = (("position", position_index), ("site", site_index), ("layer", layer_index))
        for index, row in enumerate(rows):
            unknown = set(row) - {"position", "site", "system", "layer", "heading", "threat"}
            for name in sorted(unknown):
                self.problem(f"unknown column {name!r}; expected position,site,system,layer "
                             "(and heading, threat)", "coverage", index, field=name)
            ok = True
            for name, lookup in lookups + (("system", systems),):
                value = row.get(name)
                if value not in lookup:
                    self.problem(f"{value!r} is not a known {name}", "coverage", index, field=name)
                    ok = False
            heading, threat = slice(None), slice(None)
            found = heading_index(row.get("heading"), headings)
            if found is not None and found >= 0:
                heading = found
            elif found is None:
                self.problem(f"{row['heading']!r} is not one of the headings "
                             f"({', '.join(f'{d:g}' for d in headings)} degrees)", "coverage", index,
                             field="heading")
                ok = False
            if row.get("threat") not in (None, ""):
                if row["threat"] not in threat_index:
                    self.problem(f"{row['threat']!r} is not a launch area of `threats`", "coverage",
                                 index, field="threat")
                    ok = False
                else:
                    threat = threat_index[row["threat"]]
            if ok and row["system"] in system_index:
                cover[system_index[row["system"]], position_index[row["position"]], heading,
                      site_index[row["site"]], layer_index[row["layer"]], threat] = True
        return cover


def _split_csv_cell(table: str, column: str, cell: str) -> Any:
    """Expand `;`-separated CSV cells: hosts `US;ROK`, away `2025-03/2025-05;...`,
    require `lower=1;upper=1`."""
    if (table, column) not in CSV_LIST_COLUMNS:
        return cell
    parts = [part.strip() for part in cell.split(";") if part.strip()]
    if column == "away":
        return [part.split("/", 1) if "/" in part else [part, part] for part in parts]
    if column == "require":
        return {k.strip(): v.strip() for k, _, v in (part.partition("=") for part in parts)}
    return parts


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _alias_trouble(root: yaml.Node) -> tuple[str, int] | None:
    """Why a node tree cannot be read safely, and where: an alias that contains itself (which
    no data can hold), or aliases that would expand the document past `MAX_ALIAS_NODES` more
    nodes than it has ("billion laughs": 822 bytes grew past 3 GB). None when it can."""
    size: dict[int, int] = {}
    entered: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        if leaving:
            size[id(node)] = 1 + sum(size[id(child)] for child in _children(node))
            entered.discard(id(node))
            continue
        if id(node) in size:
            continue
        entered.add(id(node))
        stack.append((node, True))
        for child in _children(node):
            if id(child) in entered:
                return (f"not valid here: an alias refers to a node that contains it (line "
                        f"{child.start_mark.line + 1}); such data has no end", node.start_mark.line + 1)
            if id(child) not in size:
                stack.append((child, False))
    expanded, distinct = size[id(root)], len(size)
    if expanded - distinct > max(MAX_ALIAS_NODES, distinct):
        return (f"refused: its aliases expand {distinct} nodes to {expanded}; at most "
                f"{max(MAX_ALIAS_NODES, distinct)} more nodes than the file has are read", 1)
    return None


def _record_lines(node: yaml.Node, path: tuple, lines: dict[tuple, int]) -> None:
    """Map each mapping key / sequence item path to its 1-based line in the YAML file."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue  # a mapping used as a key: the schema reports it, at its parent's line
            child = path + (key.value,)
            lines[child] = key.start_mark.line + 1
            _record_lines(value, child, lines)
    elif isinstance(node, yaml.SequenceNode) and len(path) <= 1:
        for index, item in enumerate(node.value):
            _record_lines(item, path + (index,), lines)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _describe(detail: dict) -> str:
    """A pydantic error as `<value>: <what was expected>`."""
    value = detail.get("input")
    message = detail["msg"]
    if detail["type"] == "missing":
        return "missing; this field is required"
    if detail["type"] == "extra_forbidden":
        return f"unknown field (value {value!r})"
    if isinstance(value, (dict, list)) and len(repr(value)) > 60:
        return message
    return f"{value!r}: {message[0].lower() + message[1:]}"


def build_document(directory: str | Path) -> dict[str, Any]:
    """`settings.yaml` plus CSV tables in a folder -> one validated document, tables inline.

    A table the settings do not name is read from `<table>.csv` in the folder when present.
    """
    directory = Path(directory)
    settings = directory / "settings.yaml"
    reader, document = _parse_file(settings)
    found = {table: f"{table}.csv" for table in TABLES
             if table not in document and (directory / f"{table}.csv").exists()}
    document.update(found)
    loads(_with_tables(_read_bytes(settings), document, found), settings)
    return _inline_tables(reader, document)


def _with_tables(raw_bytes: bytes, document: dict[str, Any], found: dict[str, str]) -> bytes:
    """The settings file's own text with the tables found beside it appended as top-level
    keys, so that every problem keeps its line in the file; the document written out afresh
    only where appending does not give the same document (a flow-style mapping)."""
    text = raw_bytes + b"".join(f"\n{table}: {name}".encode() for table, name in found.items()) + b"\n"
    try:
        if yaml.safe_load(text) == document:
            return text
    except yaml.YAMLError:
        pass
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True).encode()


def inline_document(path: str | Path) -> dict[str, Any]:
    """An instance file's document, validated, with every table inline (CSV tables read)."""
    path = Path(path)
    load(path)  # every problem, located, before anything is inlined
    reader, document = _parse_file(path)
    return _inline_tables(reader, document)


def _parse_file(path: Path) -> tuple[_Reader, dict[str, Any]]:
    reader = _Reader(path)
    document = reader.parse(_read_bytes(path))
    if document is None:
        raise InstanceError(reader.problems)
    return reader, document


def _inline_tables(reader: _Reader, document: dict[str, Any]) -> dict[str, Any]:
    """Replace CSV table paths by their rows, each as its schema writes it."""
    for table in TABLES:
        rows = document.get(table)
        if isinstance(rows, str):
            rows = reader.read_csv(table, rows) or []
        if rows is None:
            continue
        dumped = [ROW_MODELS[table](**row).model_dump(mode="json", exclude_none=True) for row in rows]
        document[table] = [{k: v for k, v in row.items() if k != "note"}
                           | ({"note": row["note"]} if "note" in row else {}) for row in dumped]
        for row in document[table]:
            if "away" in row:
                row["away"] = [list(span) for span in row["away"]]
    return document


def dump_document(document: dict[str, Any], output_dir: Path | None = None,
                  source_dir: Path | None = None) -> str:
    """YAML text of a document; a coverage CSV path is rewritten relative to `output_dir`."""
    document = dict(document)
    if isinstance(document.get("coverage"), str) and output_dir is not None and source_dir is not None:
        target = (Path(source_dir) / document["coverage"]).resolve()
        document["coverage"] = os.path.relpath(target, Path(output_dir).resolve())
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110,
                          default_flow_style=None)
