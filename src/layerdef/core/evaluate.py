"""Score any posture with numpy alone: the independent check of every solver result.

A posture is a table (period, unit, position) of every unit in theater. Organic units keep
their ids; substitute units are `offer#1` ... `offer#count`. The evaluation counts the units
covering each site in each layer, values them with the depth weights, counts moves exactly
as DESIGN.md defines them and lists every rule the posture breaks (capacity, hosts,
presence, rotations, limits), so a hand-made posture can be scored and checked too."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from layerdef.core.geometry import heading_degrees, heading_index
from layerdef.core.instance import Instance
from layerdef.core.scoring import (
    coverage_value,
    covering_units,
    defeat_value,
    kill_exponent,
    units_by_system,
)
from layerdef.errors import InstanceError, Problem

POSTURE_COLUMNS = ["period", "unit", "position"]


#: a posture may also say which way each unit faces (degrees, one of the instance's headings);
#: solutions always do where a unit may face more than one
HEADING_COLUMN = "heading"


TURN_COLUMNS = ["period", "unit", "position", "from_heading", "to_heading"]


#: a shortfall below this (units) is rounding, not a gap
SHORT = 1e-9


#: `request_by`: the period in which the rotation must be requested, its lead before `first`
#: (the first period when the lead reaches back before the horizon).
SUBSTITUTE_COLUMNS = ["offer", "unit", "first", "last", "periods", "cost", "request_by"]


def expected(figures: Sequence[Mapping[str, float]], probability: Sequence[float]) -> dict[str, float]:
    """Each figure's expectation over the scenarios, from one mapping of figures per scenario
    (in the order of `probability`): the one place expected values are taken."""
    return {name: float(sum(p * float(f[name]) for p, f in zip(probability, figures)))
            for name in figures[0]}


@dataclass
class Evaluation:
    """Everything one posture achieves and breaks; arrays are (S, L, G, T) unless noted (G = 1
    without launch areas)."""

    instance: Instance
    units: np.ndarray  # (S, L, G, T) units covering the site in the layer against the area
    value: np.ndarray  # (S, L, G, T) coverage value
    shortfall: np.ndarray  # (S, L, G, T) units missing against the requirement
    moves: pd.DataFrame  # period, unit, from, to
    substitutes: pd.DataFrame  # SUBSTITUTE_COLUMNS
    violations: list[str] = field(default_factory=list)
    turns: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=TURN_COLUMNS))
    #: with `value: kill-probability`: (S, C, G, T) the probability that a missile of class c
    #: from g aimed at s is defeated, and what that is worth (the plan's value); `value` then
    #: keeps the depth-weighted coverage per layer, for the coverage table
    defeat: np.ndarray | None = None
    defeat_value: np.ndarray | None = None

    @property
    def scored(self) -> np.ndarray:
        """The array whose sum is the plan's value: the depth values, or the defeat values."""
        return self.value if self.defeat_value is None else self.defeat_value

    @property
    def value_by_period(self) -> np.ndarray:
        return self.scored.sum(axis=(0, 1, 2))

    @property
    def turns_total(self) -> int:
        return len(self.turns)

    @property
    def total(self) -> float:
        return float(self.scored.sum())

    @property
    def substitute_cost(self) -> float:
        return float(self.substitutes["cost"].sum()) if len(self.substitutes) else 0.0

    @property
    def moves_total(self) -> int:
        return len(self.moves)

    @property
    def figures(self) -> dict[str, float]:
        """The objectives' values, as a solution document names them (turns only where a unit
        may face more than one heading)."""
        figures = {"coverage": self.total, "substitute_cost": self.substitute_cost,
                   "moves": float(self.moves_total)}
        if self.instance.has_turns:
            figures["turns"] = float(self.turns_total)
        if self.defeat is not None:
            figures["leakers_per_100"] = self.leakers_per_100
        return figures

    @property
    def moves_by_period(self) -> np.ndarray:
        index = {label: t for t, label in enumerate(self.instance.periods)}
        return np.bincount([index[p] for p in self.moves["period"]],
                           minlength=self.instance.T).astype(int)

    @property
    def feasible(self) -> bool:
        return not self.violations and not (self.shortfall > SHORT).any()

    @property
    def coverage(self) -> pd.DataFrame:
        """One row per (period, site, layer) that some unit could cover or that is required,
        and per launch area threatening the layer when the instance has launch areas (column
        `threat`); counts are fractional only where relocation downtime makes them so."""
        inst = self.instance
        relevant = ((inst.cover.any(axis=(0, 1, 2)) | (inst.requirement > 0)[:, :, None])
                    & inst.threatens.T[None])  # (S, L, G)
        s, l, g = np.nonzero(relevant)
        T = inst.T
        count = (lambda a: a) if inst.downtime.any() else (lambda a: a.astype(int))
        return pd.DataFrame({
            **_period_rows(inst, s, ("layer", inst.layers, l), g),
            "units": count(self.units[s, l, g, :].T.ravel()),
            "value": self.value[s, l, g, :].T.ravel(),
            "required": np.tile(inst.requirement[s, l], T).astype(int),
            "shortfall": count(self.shortfall[s, l, g, :].T.ravel()),
        })

    @property
    def leakers_per_100(self) -> float | None:
        """With kill probabilities: of 100 missiles, spread over the sites, classes, launch
        areas and periods by their weights, how many get through every layer (100 x (1 - the
        value against the most possible)); None with depth weights."""
        if self.defeat is None:
            return None
        most = self.instance.class_area_weight.sum() * self.instance.T
        return float(100.0 * (1.0 - self.defeat_value.sum() / most)) if most > 0 else 0.0

    @property
    def defeat_table(self) -> pd.DataFrame:
        """With kill probabilities: per period, site, threat class (and launch area) that some
        layer engages, the probability of defeat, leakers per 100 missiles there, the value and
        the most it could be (certain defeat)."""
        inst = self.instance
        s, m, g = np.nonzero(inst.class_area_weight > 0)
        T = inst.T
        defeat = self.defeat[s, m, g, :].T.ravel()
        return pd.DataFrame({**_period_rows(inst, s, ("class", inst.class_ids, m), g), "defeat": defeat, "leakers_per_100": 100.0 * (1.0 - defeat),
                             "value": self.defeat_value[s, m, g, :].T.ravel(),
                             "most": np.tile(inst.class_area_weight[s, m, g], T)})

    @property
    def unmet(self) -> pd.DataFrame:
        """The requirements this posture misses: site, layer, period, required, units."""
        table = self.coverage
        return table[table["shortfall"] > 0].reset_index(drop=True)

    def summary_row(self) -> dict:
        return {"coverage": self.total, "substitute_cost": self.substitute_cost,
                "moves": self.moves_total, "unmet_requirements": int((self.shortfall > SHORT).sum()),
                "violations": len(self.violations)}


def _period_rows(inst: Instance, s: np.ndarray, middle: tuple[str, list[str], np.ndarray],
                 g: np.ndarray) -> dict[str, np.ndarray]:
    """The key columns of a table with a row per period and (site, `middle`, launch area):
    period, site, the middle column (layer or class), and threat where there are launch areas."""
    name, labels, index = middle
    T = inst.T
    table = {"period": np.repeat(inst.periods, len(s)),
             "site": np.tile(np.array(inst.site_ids, dtype=object)[s], T),
             name: np.tile(np.array(labels, dtype=object)[index], T)}
    if inst.threat_ids:
        table["threat"] = np.tile(np.array(inst.threat_ids, dtype=object)[g], T)
    return table


def evaluate(instance: Instance, posture: pd.DataFrame) -> Evaluation:
    """Score a posture (period, unit, position; `layerdef.io.csvfile.read_posture` reads one
    from CSV) on an instance; raise InstanceError for rows that name unknown periods, units or
    positions."""
    source = posture.attrs.get("source", "posture")
    rows = _resolve(instance, posture, source)
    T, P, K, H = instance.T, len(instance.position_ids), len(instance.systems), instance.H
    violations: list[str] = []

    moves = _moves(instance, rows)
    moved = _moved_rows(instance, rows, moves)
    weight = np.where(moved, 1.0 - instance.downtime[rows["system"]], 1.0)
    counts = np.zeros((P, K, H, T), dtype=float if instance.downtime.any() else np.int64)
    np.add.at(counts, (rows["position"], rows["system"], rows["heading"], rows["period"]),
              weight if counts.dtype == float else 1)
    units = covering_units(instance, counts)  # (S, L, G, T)
    value = coverage_value(instance, units)
    shortfall = np.maximum(instance.requirement[:, :, None, None] - units, 0) * instance.threatens.T[None, :, :, None]

    occupancy = np.zeros((P, T), dtype=np.int64)
    np.add.at(occupancy, (rows["position"], rows["period"]), 1)
    for p, t in zip(*np.nonzero(occupancy > instance.capacity[:, None])):
        violations.append(f"capacity: {occupancy[p, t]} units at {instance.position_ids[p]} in "
                          f"{instance.periods[t]} (capacity {instance.capacity[p]})")
    for i in np.nonzero(~instance.admits[rows["position"], rows["owner"]])[0]:
        violations.append(f"hosts: {rows['unit_id'][i]} ({instance.owners[rows['owner'][i]]}) may "
                          f"not stand at {instance.position_ids[rows['position'][i]]} "
                          f"({instance.periods[rows['period'][i]]})")
    _check_presence(instance, rows, violations)
    substitutes = _substitutes(instance, rows, violations)
    turns = _turns(instance, rows)
    _check_limits(instance, moves, substitutes, turns, violations)
    evaluation = Evaluation(instance, units, value, shortfall, moves, substitutes, violations, turns)
    if instance.kill_probability:
        exponent = kill_exponent(instance, units_by_system(instance, counts))
        evaluation.defeat = -np.expm1(-exponent)
        evaluation.defeat_value = defeat_value(instance, exponent)
    return evaluation


def substitute_index(instance: Instance) -> dict[str, int]:
    """Substitute unit id -> offer index."""
    return instance.substitute_offer


def _resolve(instance: Instance, posture: pd.DataFrame, source: str) -> dict[str, np.ndarray]:
    """Index arrays for each posture row; every unknown label is a located problem."""
    period_index = {label: t for t, label in enumerate(instance.periods)}
    position_index = {p: i for i, p in enumerate(instance.position_ids)}
    unit_index = {u: i for i, u in enumerate(instance.unit_ids)}
    offer_of = substitute_index(instance)
    problems: list[Problem] = []
    out = {name: np.zeros(len(posture), dtype=np.int64)
           for name in ("period", "position", "system", "owner", "unit", "offer", "heading")}
    headings = posture[HEADING_COLUMN].tolist() if HEADING_COLUMN in posture.columns else [None] * len(posture)
    degrees = heading_degrees(instance.H)
    seen: dict[tuple[str, str], int] = {}
    lines = posture.attrs.get("lines") or range(2, len(posture) + 2)  # else: header on line 1
    for i, (period, unit, position) in enumerate(posture[POSTURE_COLUMNS].itertuples(index=False)):
        line = lines[i]

        def bad(field: str, message: str) -> None:
            problems.append(Problem(source, message, "posture", i, str(unit), field, line))

        if period not in period_index:
            bad("period", f"{period!r} is not a period of the horizon "
                          f"({instance.periods[0]} .. {instance.periods[-1]})")
        if position not in position_index:
            bad("position", f"{position!r} is not a position of the instance")
        if unit in unit_index:
            u = unit_index[unit]
            out["unit"][i], out["offer"][i] = u, -1
            out["system"][i], out["owner"][i] = instance.unit_system[u], instance.unit_owner[u]
        elif unit in offer_of:
            f = offer_of[unit]
            out["unit"][i], out["offer"][i] = -1, f
            out["system"][i], out["owner"][i] = instance.offer_system[f], instance.offer_owner[f]
        else:
            bad("unit", f"{unit!r} is neither a unit nor a substitute unit (offer#k)")
        if (period, unit) in seen:
            bad("unit", f"{unit!r} is placed twice in {period} (first in row {seen[period, unit]})")
        seen[period, unit] = i
        out["period"][i] = period_index.get(period, 0)
        out["position"][i] = position_index.get(position, 0)
        if instance.sector_limited[out["system"][i]]:
            heading = heading_index(headings[i], degrees)
            if heading is None:
                bad(HEADING_COLUMN, f"{headings[i]!r} is not a heading of the instance "
                                    f"(degrees {', '.join(f'{d:g}' for d in degrees)})")
                continue
            if heading < 0:  # not given: the home heading at home, else the best one there
                u = out["unit"][i]
                at_home = u >= 0 and out["position"][i] == instance.unit_home[u]
                heading = (int(instance.unit_heading[u]) if at_home
                           else int(instance.best_heading[out["system"][i], out["position"][i]]))
            out["heading"][i] = heading
    if problems:
        raise InstanceError(problems)
    out["unit_id"] = posture["unit"].to_numpy(dtype=object)
    return out


def _check_presence(instance: Instance, rows: dict, violations: list[str]) -> None:
    """Organic units stand exactly when present; fixed units stand at their homes."""
    placed = np.zeros_like(instance.present)
    organic = rows["unit"] >= 0
    placed[rows["unit"][organic], rows["period"][organic]] = True
    for u, t in zip(*np.nonzero(placed & ~instance.present)):
        violations.append(f"presence: {instance.unit_ids[u]} is away in {instance.periods[t]} "
                          "but placed")
    for u, t in zip(*np.nonzero(~placed & instance.present)):
        violations.append(f"presence: {instance.unit_ids[u]} is in theater in "
                          f"{instance.periods[t]} but not placed")
    for i in np.nonzero(organic)[0]:
        u = rows["unit"][i]
        if instance.unit_fixed[u] and rows["position"][i] != instance.unit_home[u]:
            violations.append(f"fixed: {instance.unit_ids[u]} must stay at its home "
                              f"{instance.position_ids[instance.unit_home[u]]}")


def _moves(instance: Instance, rows: dict) -> pd.DataFrame:
    """A move is a unit in theater in t-1 and t at different positions; in the first period,
    an organic unit not at its home has moved. Arrivals and returns are not moves."""
    where: dict[str, dict[int, int]] = {}
    for unit, t, p in zip(rows["unit_id"], rows["period"], rows["position"]):
        where.setdefault(unit, {})[int(t)] = int(p)
    unit_index = {u: i for i, u in enumerate(instance.unit_ids)}
    records = []
    for unit, stands in where.items():
        for t in sorted(stands):
            if t - 1 in stands:
                before = stands[t - 1]
            elif t == 0 and unit in unit_index:
                before = int(instance.unit_home[unit_index[unit]])
            else:
                continue
            if before != stands[t]:
                records.append((t, unit, instance.position_ids[before], instance.position_ids[stands[t]]))
    records.sort(key=lambda r: (r[0], r[1]))
    return pd.DataFrame({
        "period": [instance.periods[r[0]] for r in records], "unit": [r[1] for r in records],
        "from": [r[2] for r in records], "to": [r[3] for r in records]})


def _moved_rows(instance: Instance, rows: dict, moves: pd.DataFrame) -> np.ndarray:
    """(rows,) bool: the posture row is a unit in the period it moved in (out of action for
    part of it: relocation downtime)."""
    moved = set(zip(moves["period"], moves["unit"]))
    return np.array([(instance.periods[t], unit) in moved
                     for t, unit in zip(rows["period"], rows["unit_id"])], dtype=bool)


def _turns(instance: Instance, rows: dict) -> pd.DataFrame:
    """A turn is a unit of a sector-limited system at the same position in t-1 and t facing
    another heading; in the first period, an organic unit at its home facing other than its
    home heading. A move's new heading is free."""
    stands: dict[str, dict[int, tuple[int, int]]] = {}
    for unit, t, p, h, k in zip(rows["unit_id"], rows["period"], rows["position"], rows["heading"],
                                rows["system"]):
        if instance.sector_limited[k]:
            stands.setdefault(unit, {})[int(t)] = (int(p), int(h))
    unit_index = {u: i for i, u in enumerate(instance.unit_ids)}
    degrees = heading_degrees(instance.H)
    records = []
    for unit, where in stands.items():
        for t in sorted(where):
            if t - 1 in where:
                before = where[t - 1]
            elif t == 0 and unit in unit_index:
                u = unit_index[unit]
                before = (int(instance.unit_home[u]), int(instance.unit_heading[u]))
            else:
                continue
            if before[0] == where[t][0] and before[1] != where[t][1]:
                records.append((t, unit, instance.position_ids[where[t][0]], float(degrees[before[1]]),
                                float(degrees[where[t][1]])))
    records.sort(key=lambda r: (r[0], r[1]))
    return pd.DataFrame({"period": [instance.periods[r[0]] for r in records],
                         **{name: [r[i + 1] for r in records] for i, name in enumerate(TURN_COLUMNS[1:])}},
                        columns=TURN_COLUMNS)


def _substitutes(instance: Instance, rows: dict, violations: list[str]) -> pd.DataFrame:
    """One row per substitute unit requested; rotations must be one contiguous stay within
    [earliest, ...] of min_periods (truncated by the horizon's end) to max_periods."""
    periods: dict[str, list[int]] = {}
    offer_of: dict[str, int] = {}
    for unit, t, f in zip(rows["unit_id"], rows["period"], rows["offer"]):
        if f >= 0:
            periods.setdefault(unit, []).append(int(t))
            offer_of[unit] = int(f)
    records = []
    for unit in sorted(periods, key=lambda u: (offer_of[u], min(periods[u]), u)):
        f, stay = offer_of[unit], sorted(periods[unit])
        first, last, length = stay[0], stay[-1], len(stay)
        offer = instance.offer_ids[f]
        if last - first + 1 != length:
            violations.append(f"rotation: {unit} comes more than once; one rotation per unit")
        if first < instance.offer_earliest[f]:
            violations.append(f"rotation: {unit} arrives in {instance.periods[first]}, before the "
                              f"earliest {instance.periods[instance.offer_earliest[f]]}")
        shortest = min(int(instance.offer_min_periods[f]), instance.T - first)
        if length < shortest:
            violations.append(f"rotation: {unit} stays {length} periods, less than min_periods "
                              f"{instance.offer_min_periods[f]}")
        if length > instance.offer_max_periods[f]:
            violations.append(f"rotation: {unit} stays {length} periods, more than max_periods "
                              f"{instance.offer_max_periods[f]}")
        records.append((offer, unit, instance.periods[first], instance.periods[last], length,
                        length * float(instance.offer_cost[f]),
                        instance.periods[max(first - int(instance.offer_lead[f]), 0)]))
    return pd.DataFrame(records, columns=SUBSTITUTE_COLUMNS)


def _check_limits(instance: Instance, moves: pd.DataFrame, substitutes: pd.DataFrame,
                  turns: pd.DataFrame, violations: list[str]) -> None:
    cost = float(substitutes["cost"].sum()) if len(substitutes) else 0.0
    if instance.substitute_budget is not None and cost > instance.substitute_budget + 1e-9:
        violations.append(f"limits: substitute cost {cost:g} exceeds the budget "
                          f"{instance.substitute_budget:g}")
    for events, what in ((moves, "moves"), (turns, "turns")):
        total, per_period = getattr(instance, f"{what}_total"), getattr(instance, f"{what}_per_period")
        if total is not None and len(events) > total:
            violations.append(f"limits: {len(events)} {what} exceed {what}_total {total}")
        if per_period is not None:
            for period, count in events.groupby("period").size().items():
                if count > per_period:
                    violations.append(f"limits: {count} {what} in {period} exceed {what}_per_period "
                                      f"{per_period}")
