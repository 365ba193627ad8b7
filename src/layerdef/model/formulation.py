"""The formulation: integer unit counts per class of interchangeable units, built as arrays.

Read it beside `models/coverage.md`, which gives the math and names each block defined here.
Units that share system, owner, fixed flag and away periods form a class; the model decides
how many of each class stand at each position in each period (`z`), never which one, so
HiGHS does not explore symmetric copies of one posture. Substitute units are tracked per
rotation cohort (the units of an offer that arrive in the same period), which keeps their
moves exact when rotation lengths force particular units to leave.

The model is built once, vectorized with numpy, as named blocks of columns and rows
(`Formulation`). `solve` hands the arrays to HiGHS in one call; `build_model` turns the same
blocks into a Pyomo model (variables and constraints under the same names) for users who
want to extend it before solving."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from layerdef.core.geometry import angular_offset, heading_degrees
from layerdef.core.instance import Instance
from layerdef.core.scoring import (
    coverage_value,
    covering_units,
    kill_exponent,
    level_values,
    units_by_system,
)
from layerdef.model.blocks import allowed, constraint, defines, objective, variable

INF = float("inf")


#: weighted objectives (lexicographic stages folded into one) keep every coefficient below
#: this, so that a difference of one in the lowest stage stays far above HiGHS's tolerances
LARGEST_WEIGHTED_COEFFICIENT = 1e8


#: cost weighted above moves keeps its coefficients below this: at offer costs of 1e6 a
#: weighted cost-then-moves stage came back "optimal" with moves 5 where 3 were possible
#: (HiGHS prunes within a relative tolerance), while the stages one after the other are exact
LARGEST_COST_THEN_MOVES_COEFFICIENT = 1e5


#: coverage values must lie on a grid at least this fine to fold the stages into one
COVERAGE_GRID_FINEST = 1_000_000


#: above this many nonzeros coverage keeps its own stage: on the large per-unit benchmark model
#: (7.2 M) the weighted objective kept HiGHS's presolve probing past the time limit (601 s for
#: 300 s), and models this big end at the time limit anyway, before any later stage
ONE_STAGE_MAX_NONZEROS = 300_000


@dataclass(frozen=True)
class UnitClass:
    """Interchangeable organic units: same system, owner, fixed flag and presence pattern."""

    system: int
    owner: int
    fixed: bool
    present: tuple[bool, ...]
    members: tuple[int, ...]  # unit indices, in file order

    @property
    def size(self) -> int:
        return len(self.members)


def unit_classes(instance: Instance) -> list[UnitClass]:
    """Group the organic units into classes of interchangeable units (homes do not matter:
    they enter as each class's starting counts)."""
    return classes_in_worlds(instance, instance.present[None])[0]


def classes_in_worlds(instance: Instance, presence: np.ndarray) -> list[list[UnitClass]]:
    """Per world of `presence` (N, U, T), the classes of units interchangeable in every world:
    same system, owner, fixed flag and presence in each; one order of classes for all."""
    groups: dict[tuple, list[int]] = {}
    for u in range(len(instance.unit_ids)):
        key = (int(instance.unit_system[u]), int(instance.unit_owner[u]),
               bool(instance.unit_fixed[u]), presence[:, u, :].tobytes())
        groups.setdefault(key, []).append(u)
    return [[UnitClass(system, owner, fixed, tuple(bool(x) for x in presence[n, members[0]]),
                       members=tuple(members))
             for (system, owner, fixed, _), members in groups.items()]
            for n in range(len(presence))]


def reference_coverage_cells(instance: Instance) -> np.ndarray:
    """(S, L, G, T) coverage value of the reference posture (every unit at home, none away)
    by site, layer, launch area and period; with kill probabilities (S, C, G, T), by threat
    class: the yardstick of the `min-cost` target."""
    standing = np.zeros((len(instance.position_ids), len(instance.systems), instance.H, instance.T),
                        dtype=np.int64)
    np.add.at(standing, (instance.unit_home, instance.unit_system, instance.unit_heading), 1)
    if instance.kill_probability:
        exponent = kill_exponent(instance, units_by_system(instance, standing))
        return instance.class_area_weight[..., None] * -np.expm1(-exponent)
    return coverage_value(instance, covering_units(instance, standing))


def reference_coverage_by_period(instance: Instance) -> np.ndarray:
    """(T,) coverage value of the reference posture."""
    return reference_coverage_cells(instance).sum(axis=(0, 1, 2))


def target_cells(instance: Instance) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(index sets, index, least value) of the `min-cost` target's rows: one per period
    (`target_scope: total`), or one per site, layer (threat class), launch area and period
    that the reference covers (`target_scope: site`)."""
    cells = instance.target * reference_coverage_cells(instance)
    if instance.target_scope == "site":
        index = np.argwhere(cells > 0)
        return ("s", "m" if instance.kill_probability else "l", "g", "t"), index, cells[tuple(index.T)]
    by_period = cells.sum(axis=(0, 1, 2))
    index = np.nonzero(by_period > 0)[0][:, None]
    return ("t",), index, by_period[index[:, 0]]


#: the column blocks that hold the plan's choices (`Formulation.decisions`)
DECISION_BLOCKS = ("z", "z_sub", "facing", "facing_sub", "rotation")


@dataclass
class Block:
    """A named block of columns or rows: `index` holds one tuple of set indices per member."""

    name: str
    start: int
    index: np.ndarray  # (n, d) int64
    sets: tuple[str, ...]  # names of the index sets, e.g. ("p", "c", "t")

    @property
    def size(self) -> int:
        return len(self.index)

    @property
    def ids(self) -> np.ndarray:
        return np.arange(self.start, self.start + self.size)


@dataclass
class Formulation:
    """The whole model as arrays: columns, rows (COO matrix) and the stage objectives."""

    instance: Instance
    objective_kind: str
    classes: list[UnitClass]
    columns: dict[str, Block] = field(default_factory=dict)
    rows: dict[str, Block] = field(default_factory=dict)
    col_lower: list[np.ndarray] = field(default_factory=list)
    col_upper: list[np.ndarray] = field(default_factory=list)
    col_integer: list[np.ndarray] = field(default_factory=list)
    row_lower: list[np.ndarray] = field(default_factory=list)
    row_upper: list[np.ndarray] = field(default_factory=list)
    entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    objectives: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (n_cols,) vector
    cost_weight: float | None = None  # weight of cost in `cost_then_moves`
    most_moves: int = 0  # no plan makes more moves
    coverage_weight: float | None = None  # weight of coverage in `coverage_cost_moves`
    most_tie_break: float = 0.0  # no lexicographically optimal plan has more `cost_then_moves`
    tie_break_step: float = 1.0  # two plans' `cost_then_moves` differ by 0 or at least this
    n_cols: int = 0
    n_rows: int = 0
    fixed_by: set[str] = field(default_factory=set)  # rules that fixed columns (`fix`)

    # -- assembly helpers

    def add_columns(self, name: str, sets: tuple[str, ...], index: np.ndarray, lower, upper,
                    integer: bool) -> Block:
        """A block of columns, added by the `define_*` function that carries its definition;
        the objectives defined so far get zeros for the new columns."""
        allowed(name)
        index = _as_index(index, sets)
        block = Block(name, self.n_cols, index, sets)
        n = len(index)
        self.columns[name] = block
        self.col_lower.append(np.broadcast_to(np.asarray(lower, float), (n,)).copy())
        self.col_upper.append(np.broadcast_to(np.asarray(upper, float), (n,)).copy())
        self.col_integer.append(np.full(n, integer))
        self.n_cols += n
        for key, vector in self.objectives.items():
            self.objectives[key] = np.concatenate([vector, np.zeros(n)])
        return block

    def add_rows(self, name: str, sets: tuple[str, ...], index: np.ndarray, lower, upper,
                 row: np.ndarray, col: np.ndarray, value) -> Block:
        """A block of rows, added by the `define_*` function that carries its definition;
        (row, col, value) are its entries, `row` local to the block."""
        allowed(name)
        index = _as_index(index, sets)
        block = Block(name, self.n_rows, index, sets)
        n = len(index)
        self.rows[name] = block
        self.row_lower.append(np.broadcast_to(np.asarray(lower, float), (n,)).copy())
        self.row_upper.append(np.broadcast_to(np.asarray(upper, float), (n,)).copy())
        row = np.asarray(row, dtype=np.int64)
        self.entries.append((row + self.n_rows, np.asarray(col, dtype=np.int64),
                             np.broadcast_to(np.asarray(value, float), row.shape).copy()))
        self.n_rows += n
        return block

    def fix(self, rule: str, ids: np.ndarray, values: np.ndarray) -> None:
        """Columns fixed at values by a rule that adds no block (a reaction's kept decisions),
        applied by the `define_*` function defining the rule."""
        allowed(rule)
        self.fixed_by.add(rule)
        for block_lower, block_upper, block in zip(self.col_lower, self.col_upper, self.columns.values()):
            inside = (ids >= block.start) & (ids < block.start + block.size)
            block_lower[ids[inside] - block.start] = values[inside]
            block_upper[ids[inside] - block.start] = values[inside]

    def set_objective(self, name: str, vector: np.ndarray) -> None:
        """A stage objective over all columns, set by the `define_*` function defining it."""
        allowed(name)
        self.objectives[name] = vector

    # -- lookups while building

    def lookup(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Dense array of a column block's ids (-1 where the block has no member)."""
        return _lookup(shape, self.columns[name])

    def bounds_of(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) bounds of a column block, in its index order."""
        position = list(self.columns).index(name)
        return self.col_lower[position], self.col_upper[position]

    def mask(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Dense boolean array: where a column block has a member."""
        found = np.zeros(shape, dtype=bool)
        found[tuple(self.columns[name].index.T)] = True
        return found

    def decisions(self) -> np.ndarray:
        """Boolean mask of the columns that say where each class and cohort stands, facing
        which way, and which rotations come (`DECISION_BLOCKS`): the rest follows from them
        (moves, turns, counts, depth). The root step's rounding fixes these alone."""
        mask = np.zeros(self.n_cols, dtype=bool)
        for block in self.columns.values():
            if block.name in DECISION_BLOCKS:
                mask[block.ids] = True
        return mask

    def cohorts(self) -> np.ndarray:
        """(offer, arrival) of every rotation cohort, in the order of `rotation`."""
        index = self.columns["rotation"].index
        return index[index[:, 1] == index[:, 2], :2]

    # -- finished arrays

    @property
    def nonzeros(self) -> int:
        return int(sum(len(row) for row, _, _ in self.entries))

    def coverage_bound(self, weighted_bound: float) -> float:
        """A bound on coverage from one on `coverage_cost_moves` (-L x coverage + tie-break
        >= it, and the tie-break <= `most_tie_break`)."""
        return (self.most_tie_break - weighted_bound) / self.coverage_weight

    def bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (np.concatenate(self.col_lower), np.concatenate(self.col_upper),
                np.concatenate(self.col_integer))

    def row_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(self.row_lower), np.concatenate(self.row_upper)

    def csr(self, without: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row-wise (start, index, value) arrays, as HiGHS takes them; `without` leaves one
        row block out (the rows after it move up; `kept_rows` says which stay)."""
        blocks = (self.entries if without is None
                  else [self.row_entries(name) for name in self.rows if name != without])
        row = np.concatenate([e[0] for e in blocks])
        col = np.concatenate([e[1] for e in blocks])
        value = np.concatenate([e[2] for e in blocks])
        n_rows = self.n_rows
        if without is not None:
            gone = self.rows[without]
            row = np.where(row >= gone.start + gone.size, row - gone.size, row)
            n_rows -= gone.size
        order = np.lexsort((col, row))
        start = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(row, minlength=n_rows), out=start[1:])
        return start, col[order], value[order]

    def kept_rows(self, without: str) -> np.ndarray:
        """Which rows stay when the row block `without` is left out (`csr`)."""
        kept = np.ones(self.n_rows, dtype=bool)
        gone = self.rows[without]
        kept[gone.start:gone.start + gone.size] = False
        return kept

    def violation(self, solution: np.ndarray) -> float:
        """The most by which `solution` breaks a row, a column bound or integrality."""
        activity = np.zeros(self.n_rows)
        for row, col, value in self.entries:
            activity += np.bincount(row, weights=value * solution[col], minlength=self.n_rows)
        lower, upper, integer = self.bounds()
        row_lower, row_upper = self.row_bounds()
        return float(max(np.max(row_lower - activity, initial=0.0),
                         np.max(activity - row_upper, initial=0.0),
                         np.max(lower - solution, initial=0.0),
                         np.max(solution - upper, initial=0.0),
                         np.max(np.abs(solution - np.round(solution))[integer], initial=0.0)))

    def row_entries(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, column, value) entries of one row block, rows numbered from the model's 0."""
        if len(self.entries) == len(self.rows):  # one entry list per block, in order
            return self.entries[list(self.rows).index(name)]
        block = self.rows[name]  # a stacked model: scenario rows have no blocks of their own
        row, col, value = (np.concatenate([entry[i] for entry in self.entries]) for i in range(3))
        inside = (row >= block.start) & (row < block.start + block.size)
        return row[inside], col[inside], value[inside]

    def values(self, solution: np.ndarray, name: str) -> np.ndarray:
        """The solution's values of one column block, in the block's index order."""
        block = self.columns[name]
        return solution[block.start:block.start + block.size]

    def dense(self, solution: np.ndarray, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A column block's rounded values scattered into a dense integer array."""
        out = np.zeros(shape, dtype=np.int64)
        block = self.columns[name]
        if block.size:
            out[tuple(block.index.T)] = np.rint(self.values(solution, name)).astype(np.int64)
        return out


def _as_index(index, sets: tuple[str, ...]) -> np.ndarray:
    """Index tuples as an (n, len(sets)) array; a block without sets has one member."""
    if not sets:
        return np.zeros((1, 0), dtype=np.int64)
    return np.asarray(index, dtype=np.int64).reshape(-1, len(sets))


def _ranks(lengths: np.ndarray) -> np.ndarray:
    """0, 1, ..., n-1 for each n in `lengths`, concatenated."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)


def _lookup(shape: tuple[int, ...], block: Block) -> np.ndarray:
    """Dense array of column ids (-1 where the block has no member) for vectorized lookups."""
    table = np.full(shape, -1, dtype=np.int64)
    if block.size:
        table[tuple(block.index.T)] = block.ids
    return table


@dataclass
class Parameters:
    """The instance's data as the formulation reads it: sizes, and per class of units its
    system, owner, size, presence, homes and whether it moves; fixed units as constants."""

    instance: Instance
    classes: list[UnitClass]
    class_system: np.ndarray  # (C,)
    class_owner: np.ndarray  # (C,)
    class_size: np.ndarray  # (C,)
    class_present: np.ndarray  # (C, T)
    movable: np.ndarray  # (C,)
    homes: np.ndarray  # (C, P) units of each class at home at each position
    home_headings: np.ndarray  # (C, P, H) ... and the heading each faces there
    capacity: np.ndarray  # (P,)
    fixed_count: np.ndarray  # (P, K, H, T) fixed units, constants at their homes and headings
    fixed_units: np.ndarray  # (S, L, G, T) fixed units covering each site and layer against g
    stay: np.ndarray  # (F, T, T) whether a cohort of offer f arrived in a may be on station in t
    value: np.ndarray  # (S, L, G, J) value of each depth level
    oriented: np.ndarray  # (K,) bool: units of the system choose among several headings
    reach: np.ndarray  # (K, P, S, L, G) bool: some heading at p covers (s, l) against g
    sees: np.ndarray  # (K, P, H, G) bool: facing h at p covers some site against g
    factored: np.ndarray  # (K,) bool: oriented, and cover = reach and sees (a disc and a sector)
    all_round: np.ndarray  # (K,) bool: not oriented, and covers alike against every area that threatens

    @property
    def shape(self) -> dict[str, int]:
        """The size of every index set, by its code letter."""
        instance = self.instance
        return {"p": len(instance.position_ids), "c": len(self.classes), "t": instance.T,
                "m": len(instance.class_ids),
                "f": len(instance.offer_ids), "a": instance.T, "d": instance.T,
                "k": len(instance.systems), "s": len(instance.site_ids),
                "l": len(instance.layers), "j": len(instance.depth_weights),
                "g": instance.G, "h": instance.H}


def parameters(instance: Instance, classes: list[UnitClass]) -> Parameters:
    """Derive the arrays every block reads, once."""
    T, P, K, F = instance.T, len(instance.position_ids), len(instance.systems), len(instance.offer_ids)
    C = len(classes)
    class_system = np.array([c.system for c in classes], dtype=np.int64)
    class_present = np.array([c.present for c in classes], dtype=bool).reshape(C, T)
    movable = np.array([not c.fixed for c in classes], dtype=bool)
    H = instance.H
    home_headings = np.zeros((C, P, H), dtype=np.int64)
    for c, unit_class in enumerate(classes):
        members = list(unit_class.members)
        np.add.at(home_headings[c], (instance.unit_home[members], instance.unit_heading[members]), 1)
    homes = home_headings.sum(axis=2)
    fixed_count = np.zeros((P, K, H, T), dtype=np.int64)
    for c in np.nonzero(~movable)[0]:
        fixed_count[:, class_system[c], :, :] += home_headings[c][:, :, None] * class_present[c][None, None, :]
    stay = np.zeros((F, T, T), dtype=bool)
    for f in range(F):
        for a in range(int(instance.offer_earliest[f]), T):
            stay[f, a, a:min(T, a + int(instance.offer_max_periods[f]))] = True
    return Parameters(
        instance, classes, class_system,
        class_owner=np.array([c.owner for c in classes], dtype=np.int64),
        class_size=np.array([c.size for c in classes], dtype=np.int64),
        class_present=class_present, movable=movable, homes=homes, home_headings=home_headings,
        capacity=instance.capacity.astype(np.int64), fixed_count=fixed_count,
        fixed_units=covering_units(instance, fixed_count), stay=stay,
        value=level_values(instance) * (not instance.kill_probability),
        oriented=instance.sector_limited & (H > 1), **_sight(instance))


def _sight(instance: Instance) -> dict[str, np.ndarray]:
    """Where coverage splits into range and sector: `reach` (some heading covers), `sees`
    (the heading covers something against g) and, per system, whether `cover` is exactly
    their conjunction, as the geometry makes it (an explicit coverage table may not)."""
    cover = instance.cover  # (K, P, H, S, L, G)
    reach, sees = cover.any(axis=2), cover.any(axis=(3, 4))
    factored = np.array([bool(np.array_equal(cover[k], reach[k][:, None] & sees[k][:, :, None, None, :]))
                         for k in range(len(instance.systems))], dtype=bool)
    alike = np.array([bool(np.array_equal(cover[k], cover[k].any(axis=4, keepdims=True)
                                          & instance.threatens.T[None, None, None, :, :]))
                      for k in range(len(instance.systems))], dtype=bool)
    oriented = instance.sector_limited & (instance.H > 1)
    counted = not instance.kill_probability  # kill rates differ by system and layer
    return {"reach": reach, "sees": sees, "factored": factored & oriented & counted,
            "all_round": alike & ~oriented & (instance.G > 1) & counted}


def formulate(instance: Instance, objective: str | None = None,
              classes: list[UnitClass] | None = None) -> Formulation:
    """Build the model's arrays for an instance; `objective` is `coverage` or `min-cost`.

    `classes` replaces the classes of interchangeable units (the benchmarks' per-unit
    baseline passes one class per unit). The blocks are added in this order, which is the
    order of HiGHS's columns and rows.
    """
    objective = objective or instance.objective
    form = Formulation(instance, objective, classes if classes is not None else unit_classes(instance))
    data = parameters(instance, form.classes)
    define_z(form, data)
    define_rotation(form, data)
    define_rotation_end(form, data)
    define_z_sub(form, data)
    define_units(form, data)
    define_y(form, data)
    if data.instance.kill_probability:
        define_defeat(form, data)
        define_kill_exponent(form, data)
    define_shortfall(form, data)
    define_move_in(form, data)
    define_move_in_sub(form, data)
    if objective == "min-cost":
        define_target_shortfall(form, data)
    if data.oriented.any():
        define_facing(form, data)
        define_facing_sub(form, data)
        define_moved_facing(form, data)
        define_moved_facing_sub(form, data)
        define_turns(form, data)
        define_turns_sub(form, data)
    if data.instance.downtime.any():
        define_in_action(form, data)
    if data.factored.any():
        define_seeing(form, data)
    if data.all_round.any():
        define_around(form, data)

    define_class_presence(form, data)
    define_rotations_per_offer(form, data)
    define_rotation_length(form, data)
    define_rotation_ends(form, data)
    define_substitute_presence(form, data)
    define_units_definition(form, data)
    define_capacity(form, data)
    define_depth(form, data)
    if data.instance.kill_probability:
        define_kill_exponent_definition(form, data)
        define_defeat_tangents(form, data)
        define_defeat_unit_secants(form, data)
    define_requirement(form, data)
    define_move_definition(form, data)
    define_move_definition_sub(form, data)
    if data.oriented.any():
        define_heading_split(form, data)
        define_heading_split_sub(form, data)
        define_moved_split(form, data)
        define_moved_split_sub(form, data)
        define_moved_within(form, data)
        define_moved_within_sub(form, data)
        define_turn_definition(form, data)
        define_turn_definition_sub(form, data)
        if data.instance.turns_per_period is not None or data.instance.turns_total is not None:
            define_arrivals_from_elsewhere(form, data)
            define_arrivals_from_elsewhere_sub(form, data)
    if data.instance.downtime.any():
        define_in_action_definition(form, data)
    if data.factored.any():
        define_seeing_definition(form, data)
    if data.all_round.any():
        define_around_definition(form, data)

    define_objectives(form, data)
    define_substitute_budget(form, data)
    define_moves_per_period(form, data)
    define_moves_total(form, data)
    if data.oriented.any():
        define_turns_objective(form, data)
        define_turns_per_period(form, data)
        define_turns_total(form, data)
    if objective == "min-cost":
        define_coverage_target(form, data)
    if form.cost_weight is not None:
        define_coverage_cost_moves(form, form.cost_weight * most_substitute_cost(instance) + form.most_moves)
    return form


# ---------------------------------------------------------------------------- variables

@defines(variable("z", "$z_{p,c,t}$",
                  "units of movable class $c$ at $p$ in $t$; only where $c$ is present and its owner may use $p$",
                  "integer $[0, \\min(N_c,\\mathrm{cap}_p)]$"))
def define_z(form: Formulation, data: Parameters) -> None:
    mask = (data.instance.admits[:, data.class_owner][:, :, None] & data.class_present[None, :, :]
            & data.movable[None, :, None])
    index = np.argwhere(mask)
    form.add_columns("z", ("p", "c", "t"), index, 0,
                     np.minimum(data.class_size[index[:, 1]], data.capacity[index[:, 0]]), True)


@defines(variable("rotation", "$r_{f,a,t}$",
                  "units of offer $f$ that arrived in $a$ and are still on station in $t$, for $e_f \\le a \\le t < a + M_f$ (the rotation cohort $(f,a)$)",
                  "integer $[0, n_f]$"))
def define_rotation(form: Formulation, data: Parameters) -> None:
    index = np.argwhere(data.stay)
    form.add_columns("rotation", ("f", "a", "t"), index, 0, data.instance.offer_count[index[:, 0]], True)


@defines(variable("rotation_end", "$e_{f,a,d}$",
                  "units of cohort $(f,a)$ whose rotation ends in $d$, for $\\min(a + m_f, |T|) - 1 \\le d \\le \\min(a + M_f, |T|) - 1$ (the horizon's last period for rotations that outlast it)",
                  "integer $[0, n_f]$"))
def define_rotation_end(form: Formulation, data: Parameters) -> None:
    """Rotation lengths as choices HiGHS branches on."""
    instance, T = data.instance, data.instance.T
    cohorts = form.cohorts()
    first_end = np.minimum(cohorts[:, 1] + instance.offer_min_periods[cohorts[:, 0]] - 1, T - 1)
    last_end = np.minimum(cohorts[:, 1] + instance.offer_max_periods[cohorts[:, 0]] - 1, T - 1)
    ends = last_end - first_end + 1
    index = np.column_stack([np.repeat(cohorts, ends, axis=0),
                             np.repeat(first_end, ends) + _ranks(ends)]).reshape(-1, 3)
    form.add_columns("rotation_end", ("f", "a", "d"), index, 0, instance.offer_count[index[:, 0]], True)


@defines(variable("z_sub", "$x_{p,f,a,t}$", "units of cohort $(f,a)$ at $p$ in $t$", "integer"))
def define_z_sub(form: Formulation, data: Parameters) -> None:
    instance = data.instance
    index = np.argwhere(instance.admits[:, instance.offer_owner][:, :, None, None] & data.stay[None])
    form.add_columns("z_sub", ("p", "f", "a", "t"), index, 0,
                     np.minimum(instance.offer_count[index[:, 1]], data.capacity[index[:, 0]]), True)


@defines(variable("units", "$u_{p,k,h,t}$",
                  "movable units of system $k$ at $p$ facing $h$ in $t$ (classes and substitutes together; $h = 0$ only for systems that see every direction)",
                  "continuous $\\ge 0$"))
def define_units(form: Formulation, data: Parameters) -> None:
    z, z_sub = form.columns["z"].index, form.columns["z_sub"].index
    mask = np.zeros(_dims(data, "pkht"), dtype=bool)
    orientations = data.instance.orientation_mask  # (K, H)
    for k_of, p, t in ((data.class_system[z[:, 1]], z[:, 0], z[:, 2]),
                       (data.instance.offer_system[z_sub[:, 1]], z_sub[:, 0], z_sub[:, 3])):
        for h in range(data.instance.H):
            faces = orientations[k_of, h] & (data.oriented[k_of] | (h == 0))
            mask[p[faces], k_of[faces], h, t[faces]] = True
    index = np.argwhere(mask)
    form.add_columns("units", ("p", "k", "h", "t"), index, 0, data.capacity[index[:, 0]], False)


@defines(variable("y", "$y_{s,l,g,t,j}$",
                  "depth level $j$ of $(s,l)$ against launch area $g$ filled in $t$; only $j$ below the most units that could ever cover $(s,l,g)$",
                  "$[0,1]$"))
def define_y(form: Formulation, data: Parameters) -> None:
    most = form.mask("units", _dims(data, "pkht")) * data.capacity[:, None, None, None]
    depth_room = covering_units(data.instance, most) + data.fixed_units  # (S, L, G, T)
    J = len(data.instance.depth_weights)
    mask = ((data.value[:, :, :, None, :] > 0)
            & (np.arange(J)[None, None, None, None, :] < np.ceil(depth_room[..., None] - 1e-9)))
    form.add_columns("y", ("s", "l", "g", "t", "j"), np.argwhere(mask), 0, 1, False)


@defines(variable("defeat", "$\\theta_{s,m,g,t}$",
                  "kill probabilities: the probability that a missile of class $m$ from $g$ aimed at $s$ in $t$ is defeated, $1 - e^{-\\chi}$ at every integer posture (tangent cuts)",
                  "$[0,1]$"))
def define_defeat(form: Formulation, data: Parameters) -> None:
    form.add_columns("defeat", ("s", "m", "g", "t"), _engaged_rows(form, data), 0, 1, False)


@defines(variable("kill_exponent", "$\\chi_{s,m,g,t}$",
                  "kill probabilities: $\\sum_{k,l} -\\ln(1 - pk_{k,l})\\, n_{k,s,l,g,t}$ over the layers engaging $m$ from $g$; the leak probability is $e^{-\\chi}$",
                  "continuous $\\ge 0$"))
def define_kill_exponent(form: Formulation, data: Parameters) -> None:
    form.add_columns("kill_exponent", ("s", "m", "g", "t"), form.columns["defeat"].index, 0, INF, False)


@defines(variable("shortfall", "$\\sigma_{s,l,g,t}$", "requirement shortfall against a launch area threatening $l$",
                  "$[0,0]$ (elastic: $[0,\\mathrm{req}_{s,l}]$)"))
def define_shortfall(form: Formulation, data: Parameters) -> None:
    """Fixed at 0 unless the elastic model (explaining infeasibility) frees it."""
    required = np.broadcast_to(((data.instance.requirement[:, :, None] > 0)
                                & data.instance.threatens.T[None])[..., None], _dims(data, "slgt"))
    form.add_columns("shortfall", ("s", "l", "g", "t"), np.argwhere(required), 0, 0, False)


@defines(variable("move_in", "$\\mu_{p,c,t}$", "units of class $c$ relocated into $p$ in $t$",
                  "integer $\\ge 0$"))
def define_move_in(form: Formulation, data: Parameters) -> None:
    """Only where the class was present the period before (a return is no move)."""
    C = len(data.classes)
    previous_present = np.concatenate([np.ones((C, 1), bool), data.class_present[:, :-1]], axis=1)
    z = form.columns["z"].index
    form.add_columns("move_in", ("p", "c", "t"), z[previous_present[z[:, 1], z[:, 2]]], 0, INF, True)


@defines(variable("move_in_sub", "$\\nu_{p,f,a,t}$",
                  "units of cohort $(f,a)$ relocated into $p$ in $t > a$", "integer $\\ge 0$"))
def define_move_in_sub(form: Formulation, data: Parameters) -> None:
    """Not in the cohort's arrival period (an arrival is no move)."""
    z_sub = form.columns["z_sub"].index
    form.add_columns("move_in_sub", ("p", "f", "a", "t"), z_sub[z_sub[:, 3] > z_sub[:, 2]], 0, INF, True)


@defines(variable("target_shortfall", "$\\tau_t$ (site scope: $\\tau_{s,l,g,t}$)",
                  "min-cost: coverage target shortfall, per period or per site, layer (threat class), launch area and period",
                  "$[0,0]$ (elastic: free)"))
def define_target_shortfall(form: Formulation, data: Parameters) -> None:
    sets, index, _ = target_cells(data.instance)
    form.add_columns("target_shortfall", sets, index, 0, 0, False)


@defines(variable("facing", "$\\phi_{p,h,c,t}$",
                  "units of class $c$ (of a sector-limited system) at $p$ facing heading $h$ in $t$",
                  "integer $[0, \\min(N_c,\\mathrm{cap}_p)]$"))
def define_facing(form: Formulation, data: Parameters) -> None:
    z = form.columns["z"]
    chosen = data.oriented[data.class_system[z.index[:, 1]]]
    index, member = _headed(z.index[chosen], data.class_system[z.index[chosen, 1]], data)
    form.add_columns("facing", ("p", "h", "c", "t"), index, 0, form.bounds_of("z")[1][chosen][member], True)


@defines(variable("facing_sub", "$\\phi_{p,h,f,a,t}$",
                  "units of cohort $(f,a)$ (of a sector-limited system) at $p$ facing $h$ in $t$",
                  "integer"))
def define_facing_sub(form: Formulation, data: Parameters) -> None:
    z_sub = form.columns["z_sub"]
    chosen = data.oriented[data.instance.offer_system[z_sub.index[:, 1]]]
    index, member = _headed(z_sub.index[chosen], data.instance.offer_system[z_sub.index[chosen, 1]], data)
    form.add_columns("facing_sub", ("p", "h", "f", "a", "t"), index, 0,
                     form.bounds_of("z_sub")[1][chosen][member], True)


@defines(variable("moved_facing", "$m_{p,h,c,t}$",
                  "units of class $c$ that moved into $p$ in $t$ and face $h$ (a move's heading is free)",
                  "integer $\\ge 0$"))
def define_moved_facing(form: Formulation, data: Parameters) -> None:
    move_in = form.columns["move_in"]
    chosen = data.oriented[data.class_system[move_in.index[:, 1]]]
    index, _ = _headed(move_in.index[chosen], data.class_system[move_in.index[chosen, 1]], data)
    form.add_columns("moved_facing", ("p", "h", "c", "t"), index, 0, INF, True)


@defines(variable("moved_facing_sub", "$m_{p,h,f,a,t}$",
                  "units of cohort $(f,a)$ that moved into $p$ in $t$ and face $h$", "integer $\\ge 0$"))
def define_moved_facing_sub(form: Formulation, data: Parameters) -> None:
    move_in_sub = form.columns["move_in_sub"]
    chosen = data.oriented[data.instance.offer_system[move_in_sub.index[:, 1]]]
    index, _ = _headed(move_in_sub.index[chosen], data.instance.offer_system[move_in_sub.index[chosen, 1]], data)
    form.add_columns("moved_facing_sub", ("p", "h", "f", "a", "t"), index, 0, INF, True)


@defines(variable("turns", "$\\rho_{p,h,c,t}$",
                  "units of class $c$ that stood at $p$ in $t-1$ (at home: $t = 0$) and turned to face $h$ in $t$",
                  "continuous $\\ge 0$"))
def define_turns(form: Formulation, data: Parameters) -> None:
    form.add_columns("turns", ("p", "h", "c", "t"), form.columns["moved_facing"].index, 0, INF, False)


@defines(variable("turns_sub", "$\\rho_{p,h,f,a,t}$",
                  "units of cohort $(f,a)$ that stood at $p$ in $t-1$ and turned to face $h$ in $t$",
                  "continuous $\\ge 0$"))
def define_turns_sub(form: Formulation, data: Parameters) -> None:
    form.add_columns("turns_sub", ("p", "h", "f", "a", "t"), form.columns["moved_facing_sub"].index,
                     0, INF, False)


@defines(variable("in_action", "$\\alpha_{p,k,h,t}$",
                  "units of $u_{p,k,h,t}$ in action: those that moved in count $1 - \\delta_k$ ($\\delta_k$ = relocation_days / period_days, clipped to $[0, 1]$)",
                  "continuous $\\ge 0$"))
def define_in_action(form: Formulation, data: Parameters) -> None:
    units = form.columns["units"]
    slowed = data.instance.downtime[units.index[:, 1]] > 0
    form.add_columns("in_action", ("p", "k", "h", "t"), units.index[slowed], 0,
                     data.capacity[units.index[slowed, 0]], False)


@defines(variable("seeing", "$v_{p,k,g,t}$",
                  "units of sector-limited system $k$ at $p$ in action in $t$ facing a heading that sees launch area $g$; the depth and requirement rows count them in place of each heading's $u$ (or $\\alpha$) where that shortens the rows",
                  "continuous $\\ge 0$"))
def define_seeing(form: Formulation, data: Parameters) -> None:
    index = np.argwhere(_seeing_mask(form, data))
    form.add_columns("seeing", ("p", "k", "g", "t"), index, 0, data.capacity[index[:, 0]], False)


@defines(variable("around", "$w_{s,l,t}$",
                  "units in action in $t$ of systems that see every direction covering $(s,l)$, alike against every launch area that threatens $l$; the rows of each launch area count them once where that shortens the rows",
                  "continuous $\\ge 0$"))
def define_around(form: Formulation, data: Parameters) -> None:
    index = np.argwhere(_around_mask(form, data))
    form.add_columns("around", ("s", "l", "t"), index, 0, INF, False)


# ---------------------------------------------------------------------------- constraints

@defines(constraint("class_presence", "$\\sum_p z_{p,c,t} = N_c$ for present $(c,t)$",
                    "every present unit stands somewhere"))
def define_class_presence(form: Formulation, data: Parameters) -> None:
    index = np.argwhere(data.class_present & data.movable[:, None])
    z = form.columns["z"]
    size = data.class_size[index[:, 0]]
    form.add_rows("class_presence", ("c", "t"), index, size, size,
                  _row_of(index, _dims(data, "ct"))[z.index[:, 1], z.index[:, 2]], z.ids, 1.0)


@defines(constraint("rotations_per_offer", "$\\sum_{a} r_{f,a,a} \\le n_f$",
                    "at most `count` rotations (one per unit)"))
def define_rotations_per_offer(form: Formulation, data: Parameters) -> None:
    rotation = form.columns["rotation"]
    arrivals = rotation.index[:, 1] == rotation.index[:, 2]
    form.add_rows("rotations_per_offer", ("f",), np.arange(len(data.instance.offer_ids)), -INF,
                  data.instance.offer_count, rotation.index[arrivals, 0], rotation.ids[arrivals], 1.0)


@defines(constraint("rotation_length",
                    "$r_{f,a,t} = r_{f,a,t-1}$ for $t < a + m_f$; $r_{f,a,t} \\le r_{f,a,t-1}$ after",
                    "a cohort stays whole for `min_periods` (truncated by the horizon's end: no row beyond it), then only shrinks; no variable beyond `max_periods`"))
def define_rotation_length(form: Formulation, data: Parameters) -> None:
    rotation = form.columns["rotation"]
    later = rotation.index[:, 1] != rotation.index[:, 2]
    index = rotation.index[later]
    within_min = index[:, 2] < index[:, 1] + data.instance.offer_min_periods[index[:, 0]]
    local = np.arange(len(index))
    earlier = form.lookup("rotation", _dims(data, "fat"))[index[:, 0], index[:, 1], index[:, 2] - 1]
    form.add_rows("rotation_length", ("f", "a", "t"), index, np.where(within_min, 0.0, -INF), 0.0,
                  np.concatenate([local, local]), np.concatenate([rotation.ids[later], earlier]),
                  np.concatenate([np.ones(len(index)), -np.ones(len(index))]))


@defines(constraint("rotation_ends", "$r_{f,a,t} = \\sum_{d \\ge t} e_{f,a,d}$",
                    'the cohort\'s units on station in $t$ are those whose rotation ends in $t$ or later (implies `rotation_length`; the choice of a rotation\'s length is then a variable HiGHS branches on and cuts with: see "Rotation ends" below)'))
def define_rotation_ends(form: Formulation, data: Parameters) -> None:
    rotation, rotation_end = form.columns["rotation"], form.columns["rotation_end"]
    ends = rotation_end.index
    on_station = ends[:, 2] - ends[:, 1] + 1  # periods a..d of each end
    end_of = np.repeat(np.arange(len(ends)), on_station)
    period = ends[end_of, 1] + _ranks(on_station)
    rotation_col = form.lookup("rotation", _dims(data, "fat"))
    form.add_rows("rotation_ends", ("f", "a", "t"), rotation.index, 0.0, 0.0,
                  np.concatenate([rotation_col[ends[end_of, 0], ends[end_of, 1], period] - rotation.start,
                                  np.arange(rotation.size)]),
                  np.concatenate([rotation_end.ids[end_of], rotation.ids]),
                  np.concatenate([np.ones(len(end_of)), -np.ones(rotation.size)]))


@defines(constraint("substitute_presence", "$\\sum_p x_{p,f,a,t} = r_{f,a,t}$",
                    "the cohort's units stand somewhere"))
def define_substitute_presence(form: Formulation, data: Parameters) -> None:
    rotation, z_sub = form.columns["rotation"], form.columns["z_sub"]
    rotation_col = form.lookup("rotation", _dims(data, "fat"))
    form.add_rows("substitute_presence", ("f", "a", "t"), rotation.index, 0.0, 0.0,
                  np.concatenate([rotation_col[tuple(z_sub.index[:, 1:].T)] - rotation.start,
                                  np.arange(rotation.size)]),
                  np.concatenate([z_sub.ids, rotation.ids]),
                  np.concatenate([np.ones(z_sub.size), -np.ones(rotation.size)]))


@defines(constraint("units_definition",
                    "$u_{p,k,h,t} = \\sum_{c: k_c = k} z_{p,c,t} + \\sum_{f: k_f = k, a} x_{p,f,a,t}$ (sector-limited systems: $\\phi_{p,h,c,t}$, $\\phi_{p,h,f,a,t}$)",
                    "units per (position, system, heading): coverage rows stay short"))
def define_units_definition(form: Formulation, data: Parameters) -> None:
    units = form.columns["units"]
    units_col = form.lookup("units", _dims(data, "pkht"))
    rows, cols = [np.arange(units.size)], [units.ids]
    for count, facing, system_of in (("z", "facing", data.class_system),
                                     ("z_sub", "facing_sub", data.instance.offer_system)):
        block = form.columns[count]
        k = system_of[block.index[:, 1]]
        direct = ~data.oriented[k]  # every-direction systems face heading 0
        p, t = block.index[direct, 0], block.index[direct, -1]
        rows.append(units_col[p, k[direct], 0, t] - units.start)
        cols.append(block.ids[direct])
        if facing in form.columns:
            split = form.columns[facing]
            k = system_of[split.index[:, 2]]
            rows.append(units_col[split.index[:, 0], k, split.index[:, 1], split.index[:, -1]] - units.start)
            cols.append(split.ids)
    parts = np.concatenate(cols[1:])
    form.add_rows("units_definition", ("p", "k", "h", "t"), units.index, 0.0, 0.0,
                  np.concatenate(rows), np.concatenate(cols),
                  np.concatenate([np.ones(units.size), -np.ones(len(parts))]))


@defines(constraint("capacity", "$\\sum_{k,h} u_{p,k,h,t} \\le \\mathrm{cap}_p - \\text{fixed units at } p$",
                    "capacity"))
def define_capacity(form: Formulation, data: Parameters) -> None:
    units = form.columns["units"]
    index = np.argwhere(form.mask("units", _dims(data, "pkht")).any(axis=(1, 2)))
    fixed_occupancy = data.fixed_count.sum(axis=(1, 2))
    form.add_rows("capacity", ("p", "t"), index, -INF,
                  data.capacity[index[:, 0]] - fixed_occupancy[tuple(index.T)],
                  _row_of(index, _dims(data, "pt"))[units.index[:, 0], units.index[:, 3]], units.ids, 1.0)


@defines(constraint("depth",
                    "$\\sum_j y_{s,l,g,t,j} \\le \\sum_{p,k,h} \\mathrm{cover}_{k,p,h,s,l,g}\\, u_{p,k,h,t} + \\bar f_{s,l,g,t}$ ($\\alpha_{p,k,h,t}$ in place of $u$ for systems with relocation downtime)",
                    "depth levels cannot exceed the covering units"))
def define_depth(form: Formulation, data: Parameters) -> None:
    y = form.columns["y"]
    index = np.argwhere(form.mask("y", _dims(data, "slgtj")).any(axis=4))
    depth_row = _row_of(index, _dims(data, "slgt"))
    cover_rows, cover_cols, cover_values = _coverage_entries(form, data, depth_row)
    form.add_rows("depth", ("s", "l", "g", "t"), index, -INF, data.fixed_units[tuple(index.T)],
                  np.concatenate([depth_row[tuple(y.index[:, :4].T)], cover_rows]),
                  np.concatenate([y.ids, cover_cols]),
                  np.concatenate([np.ones(y.size), -cover_values]))


@defines(constraint("requirement",
                    "$\\sum_{p,k,h} \\mathrm{cover}_{k,p,h,s,l,g}\\, u_{p,k,h,t} + \\bar f_{s,l,g,t} + \\sigma_{s,l,g,t} \\ge \\mathrm{req}_{s,l}$",
                    "the requirement, in every period, against every launch area that threatens the layer"))
def define_requirement(form: Formulation, data: Parameters) -> None:
    shortfall = form.columns["shortfall"]
    required = shortfall.index
    cover_rows, cover_cols, cover_values = _coverage_entries(form, data, _row_of(required, _dims(data, "slgt")))
    form.add_rows("requirement", ("s", "l", "g", "t"), required,
                  data.instance.requirement[required[:, 0], required[:, 1]]
                  - data.fixed_units[tuple(required.T)], INF,
                  np.concatenate([cover_rows, np.arange(len(required))]),
                  np.concatenate([cover_cols, shortfall.ids]),
                  np.concatenate([cover_values, np.ones(len(required))]))


@defines(constraint("move_definition", "$\\mu_{p,c,t} \\ge z_{p,c,t} - z_{p,c,t-1}$ ($t=0$: $- h_{c,p}$)",
                    "relocations into $p$; none counted when $c$ returns after an absence"))
def define_move_definition(form: Formulation, data: Parameters) -> None:
    move_in = form.columns["move_in"]
    index = move_in.index
    z_col = form.lookup("z", _dims(data, "pct"))
    first = index[:, 2] == 0
    before = z_col[index[:, 0], index[:, 1], np.maximum(index[:, 2] - 1, 0)]
    local = np.arange(move_in.size)
    form.add_rows("move_definition", ("p", "c", "t"), index,
                  np.where(first, -data.homes[index[:, 1], index[:, 0]], 0.0), INF,
                  np.concatenate([local, local, local[~first]]),
                  np.concatenate([move_in.ids, z_col[tuple(index.T)], before[~first]]),
                  np.concatenate([np.ones(move_in.size), -np.ones(move_in.size), np.ones((~first).sum())]))


@defines(constraint("move_definition_sub", "$\\nu_{p,f,a,t} \\ge x_{p,f,a,t} - x_{p,f,a,t-1}$",
                    "relocations of substitutes; arrivals are not moves"))
def define_move_definition_sub(form: Formulation, data: Parameters) -> None:
    move_in_sub = form.columns["move_in_sub"]
    index = move_in_sub.index
    z_sub_col = form.lookup("z_sub", _dims(data, "pfat"))
    earlier = index.copy()
    earlier[:, 3] -= 1
    local = np.arange(move_in_sub.size)
    form.add_rows("move_definition_sub", ("p", "f", "a", "t"), index, 0.0, INF,
                  np.concatenate([local, local, local]),
                  np.concatenate([move_in_sub.ids, z_sub_col[tuple(index.T)], z_sub_col[tuple(earlier.T)]]),
                  np.concatenate([np.ones(move_in_sub.size), -np.ones(move_in_sub.size),
                                  np.ones(move_in_sub.size)]))


@defines(constraint("heading_split", "$\\sum_h \\phi_{p,h,c,t} = z_{p,c,t}$",
                    "every unit of a sector-limited class faces one heading"))
def define_heading_split(form: Formulation, data: Parameters) -> None:
    _split_rows(form, "heading_split", "z", "facing", data.class_system, data)


@defines(constraint("heading_split_sub", "$\\sum_h \\phi_{p,h,f,a,t} = x_{p,f,a,t}$",
                    "every substitute unit of a sector-limited system faces one heading"))
def define_heading_split_sub(form: Formulation, data: Parameters) -> None:
    _split_rows(form, "heading_split_sub", "z_sub", "facing_sub", data.instance.offer_system, data)


@defines(constraint("moved_split", "$\\sum_h m_{p,h,c,t} = \\mu_{p,c,t}$",
                    "the units that moved in face some heading"))
def define_moved_split(form: Formulation, data: Parameters) -> None:
    _split_rows(form, "moved_split", "move_in", "moved_facing", data.class_system, data)


@defines(constraint("moved_split_sub", "$\\sum_h m_{p,h,f,a,t} = \\nu_{p,f,a,t}$",
                    "the substitutes that moved in face some heading"))
def define_moved_split_sub(form: Formulation, data: Parameters) -> None:
    _split_rows(form, "moved_split_sub", "move_in_sub", "moved_facing_sub", data.instance.offer_system, data)


@defines(constraint("moved_within", "$m_{p,h,c,t} \\le \\phi_{p,h,c,t}$",
                    "units that moved in are among those facing $h$"))
def define_moved_within(form: Formulation, data: Parameters) -> None:
    _within_rows(form, "moved_within", "moved_facing", "facing", _dims(data, "phct"))


@defines(constraint("moved_within_sub", "$m_{p,h,f,a,t} \\le \\phi_{p,h,f,a,t}$",
                    "substitutes that moved in are among those facing $h$"))
def define_moved_within_sub(form: Formulation, data: Parameters) -> None:
    _within_rows(form, "moved_within_sub", "moved_facing_sub", "facing_sub", _dims(data, "phfat"))


@defines(constraint("turn_definition",
                    "$\\rho_{p,h,c,t} \\ge \\phi_{p,h,c,t} - m_{p,h,c,t} - \\phi_{p,h,c,t-1}$ ($t = 0$: $-$ the units of $c$ at home at $p$ facing $h$)",
                    "units facing $h$ that neither moved in nor faced $h$ there before have turned; exact once turns are minimized"))
def define_turn_definition(form: Formulation, data: Parameters) -> None:
    turns = form.columns["turns"]
    p, h, c, t = turns.index.T
    facing = form.lookup("facing", _dims(data, "phct"))
    first = t == 0
    before = facing[p, h, c, np.maximum(t - 1, 0)]
    _turn_rows(form, "turn_definition", "turns", "moved_facing", facing[p, h, c, t], before, first,
               np.where(first, -data.home_headings[c, p, h], 0.0))


@defines(constraint("turn_definition_sub",
                    "$\\rho_{p,h,f,a,t} \\ge \\phi_{p,h,f,a,t} - m_{p,h,f,a,t} - \\phi_{p,h,f,a,t-1}$ for $t > a$",
                    "substitutes turn like organic units; an arrival's heading is free"))
def define_turn_definition_sub(form: Formulation, data: Parameters) -> None:
    turns = form.columns["turns_sub"]
    p, h, f, a, t = turns.index.T
    facing = form.lookup("facing_sub", _dims(data, "phfat"))
    _turn_rows(form, "turn_definition_sub", "turns_sub", "moved_facing_sub", facing[p, h, f, a, t],
               facing[p, h, f, a, t - 1], np.zeros(len(t), bool), 0.0)


@defines(constraint("arrivals_from_elsewhere",
                    "$2 \\mu_{p,c,t} + z_{p,c,t-1} - z_{p,c,t} \\le \\sum_q \\mu_{q,c,t}$ ($t = 0$: $h_{c,p}$ for $z_{p,c,-1}$)",
                    "with turn limits only: the units counted as moving into $p$ come from other positions (arrivals at $p$ at most the departures from elsewhere), so that a move never stands in for a turn; a swap of two units stays possible"))
def define_arrivals_from_elsewhere(form: Formulation, data: Parameters) -> None:
    move_in = form.columns["move_in"]
    chosen = np.nonzero(data.oriented[data.class_system[move_in.index[:, 1]]])[0]
    p, c, t = move_in.index[chosen].T
    z_col = form.lookup("z", _dims(data, "pct"))
    first = t == 0
    group = _row_of(np.unique(np.column_stack([c, t]), axis=0), _dims(data, "ct"))[c, t]
    _arrival_rows(form, "arrivals_from_elsewhere", move_in, chosen, group, z_col[p, c, t],
                  z_col[p, c, np.maximum(t - 1, 0)], first,
                  np.where(first, -data.homes[c, p].astype(float), 0.0))


@defines(constraint("arrivals_from_elsewhere_sub",
                    "$2 \\nu_{p,f,a,t} + x_{p,f,a,t-1} - x_{p,f,a,t} + r_{f,a,t} - r_{f,a,t-1} \\le \\sum_q \\nu_{q,f,a,t}$ for $t > a$",
                    "with turn limits only: substitutes that move in come from other positions"))
def define_arrivals_from_elsewhere_sub(form: Formulation, data: Parameters) -> None:
    move_in_sub = form.columns["move_in_sub"]
    chosen = np.nonzero(data.oriented[data.instance.offer_system[move_in_sub.index[:, 1]]])[0]
    p, f, a, t = move_in_sub.index[chosen].T
    z_sub_col = form.lookup("z_sub", _dims(data, "pfat"))
    rotation = form.lookup("rotation", _dims(data, "fat"))
    group = _row_of(np.unique(np.column_stack([f, a, t]), axis=0), _dims(data, "fat"))[f, a, t]
    _arrival_rows(form, "arrivals_from_elsewhere_sub", move_in_sub, chosen, group,
                  z_sub_col[p, f, a, t], z_sub_col[p, f, a, t - 1], np.zeros(len(t), bool), 0.0,
                  (rotation[f, a, t], rotation[f, a, t - 1]))


@defines(constraint("in_action_definition",
                    "$\\alpha_{p,k,h,t} = u_{p,k,h,t} - \\delta_k \\cdot (\\text{units of } k \\text{ that moved into } p \\text{ in } t \\text{ facing } h)$",
                    "relocation downtime: a unit that moved in covers with weight $1 - \\delta_k$ in that period"))
def define_in_action_definition(form: Formulation, data: Parameters) -> None:
    in_action = form.columns["in_action"]
    row_of = _row_of(in_action.index, _dims(data, "pkht"))
    units_col = form.lookup("units", _dims(data, "pkht"))
    index = in_action.index
    rows = [np.arange(in_action.size), np.arange(in_action.size)]
    cols = [in_action.ids, units_col[tuple(index.T)]]
    values = [np.ones(in_action.size), -np.ones(in_action.size)]
    sources = (("move_in", data.class_system, False), ("move_in_sub", data.instance.offer_system, False),
               ("moved_facing", data.class_system, True), ("moved_facing_sub", data.instance.offer_system, True))
    for name, system_of, headed in sources:
        if name not in form.columns:
            continue
        block = form.columns[name]
        k = system_of[block.index[:, 2 if headed else 1]]
        keep = np.ones(len(k), bool) if headed else ~data.oriented[k]
        h = block.index[:, 1] if headed else np.zeros(len(k), np.int64)
        row = row_of[block.index[:, 0], k, h, block.index[:, -1]]
        keep &= row >= 0
        rows.append(row[keep])
        cols.append(block.ids[keep])
        values.append(data.instance.downtime[k[keep]])
    form.add_rows("in_action_definition", ("p", "k", "h", "t"), index, 0.0, 0.0,
                  np.concatenate(rows), np.concatenate(cols), np.concatenate(values))


@defines(constraint("kill_exponent_definition",
                    "$\\chi_{s,m,g,t} = \\sum_{k,p,h,l \\in m,\\, g \\to l} -\\ln(1 - pk_{k,l})\\, \\mathrm{cover}_{k,p,h,s,l,g}\\, u_{p,k,h,t} + \\bar\\chi_{s,m,g,t}$ ($\\alpha$ for systems with relocation downtime; $\\bar\\chi$ from fixed units)",
                    "kill probabilities: the exponent of the leak probability"))
def define_kill_exponent_definition(form: Formulation, data: Parameters) -> None:
    exponent = form.columns["kill_exponent"]
    row_of = _row_of(exponent.index, _dims(data, "smgt"))
    instance = data.instance
    covering = _covering_columns(form, data)
    k, p, h, s, l, g = np.nonzero(instance.cover)
    rate = instance.kill_rate[k, l]
    rows, cols, values = [np.arange(exponent.size)], [exponent.ids], [np.ones(exponent.size)]
    for c in range(len(instance.class_ids)):
        engaged = instance.engaging[c, g, l] & (rate > 0)
        for t in range(instance.T):
            row, column = row_of[s[engaged], c, g[engaged], t], covering[p[engaged], k[engaged], h[engaged], t]
            keep = (row >= 0) & (column >= 0)
            rows.append(row[keep])
            cols.append(column[keep])
            values.append(-rate[engaged][keep])
    fixed = _fixed_exponent(data)[tuple(exponent.index.T)]
    # a unit covering s in two layers of the class enters its row once, with both rates
    pairs, where = np.unique(np.column_stack([np.concatenate(rows), np.concatenate(cols)]), axis=0,
                             return_inverse=True)
    summed = np.bincount(where.ravel(), weights=np.concatenate(values), minlength=len(pairs))
    form.add_rows("kill_exponent_definition", ("s", "m", "g", "t"), exponent.index, fixed, fixed,
                  pairs[:, 0], pairs[:, 1], summed)


@defines(constraint("defeat_tangents",
                    "$\\theta_{s,m,g,t} \\le 1 - e^{-x_0} + e^{-x_0} (\\chi_{s,m,g,t} - x_0)$ for $x_0$ in $\\bar\\chi + j\\, r$, $r$ each kill rate, $j \\le$ `TANGENTS_PER_RATE`; more at the $\\chi$ of every plan that overstates $\\theta$ (`violated_tangents`)",
                    "kill probabilities: $\\theta$ below the concave $1 - e^{-\\chi}$, exact at every point cut"))
def define_defeat_tangents(form: Formulation, data: Parameters) -> None:
    defeat = form.columns["defeat"]
    rates = np.unique(data.instance.kill_rate[data.instance.kill_rate > 0])
    fixed = _fixed_exponent(data)[tuple(defeat.index.T)]
    points = np.concatenate([fixed[:, None], fixed[:, None] + (np.arange(1, TANGENTS_PER_RATE + 1)[None, :, None]
                                                               * rates[None, None, :]).reshape(1, -1)], axis=1)
    member = np.repeat(np.arange(defeat.size), points.shape[1])
    x0 = points.ravel()
    _defeat_lines(form, "defeat_tangents", member, *tangent(x0))


@defines(constraint("defeat_unit_secants",
                    "$\\theta_{s,m,g,t} \\le f(\\bar\\chi) + \\sum_{p,k,h} \\frac{f(\\bar\\chi + (1 - \\delta_k)\\, c_{k,p,h}) - f(\\bar\\chi)}{1 - \\delta_k}\\, u_{p,k,h,t}$, $f(x) = 1 - e^{-x}$, $c_{k,p,h}$ the exponent one unit of $k$ at $p$ facing $h$ adds to the row (its coefficient in `kill_exponent_definition`), $\\alpha$ in place of $u$ for systems with relocation downtime",
                    "kill probabilities: each unit adds at most what it adds alone to the fixed units ($f$ is concave, so its increments are subadditive), and a unit that moved in adds at least $(1 - \\delta_k)\\, c$, whose chord from $\\bar\\chi$ is the steepest; holds at every plan, and gives a fraction of a unit only that fraction of its value"))
def define_defeat_unit_secants(form: Formulation, data: Parameters) -> None:
    defeat = form.columns["defeat"]
    row, column, rate = _unit_exponents(form)
    base = _fixed_exponent(data)[tuple(defeat.index.T)]
    kept = 1.0 - data.instance.downtime[_system_of_columns(form, data)[column]]
    least = kept * rate
    gain = np.where(least > 1e-12, (np.expm1(-base[row]) - np.expm1(-(base[row] + least))) / np.maximum(kept, 1e-12),
                    np.exp(-base[row]) * rate)  # a unit of no value while it moves: the tangent at the base
    form.add_rows("defeat_unit_secants", ("s", "m", "g", "t"), defeat.index, -INF, -np.expm1(-base),
                  np.concatenate([np.arange(defeat.size), row]),
                  np.concatenate([defeat.ids, column]), np.concatenate([np.ones(defeat.size), -gain]))


def _unit_exponents(form: Formulation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, covering column, exponent one unit there adds) of every unit entry of
    `kill_exponent_definition` (rows numbered from the block's first, as the defeat columns)."""
    block = form.rows["kill_exponent_definition"]
    row, column, value = form.row_entries("kill_exponent_definition")
    units = value < 0  # the exponent's own entry is +1, each unit's minus its rates
    return row[units] - block.start, column[units], -value[units]


def _system_of_columns(form: Formulation, data: Parameters) -> np.ndarray:
    """The system of every `units` and `in_action` column (-1 for the other columns)."""
    system = np.full(form.n_cols, -1, dtype=np.int64)
    for name in ("units", "in_action"):
        if name in form.columns:
            system[form.columns[name].ids] = form.columns[name].index[:, 1]
    return system


def _defeat_lines(form: Formulation, name: str, member: np.ndarray, slope: np.ndarray,
                  rhs: np.ndarray) -> None:
    """Rows theta - slope chi <= rhs, one per entry of `member` (a defeat column's position),
    for the lines that bound the probability of defeat from above."""
    defeat, exponent = form.columns["defeat"], form.columns["kill_exponent"]
    n = len(member)
    form.add_rows(name, ("s", "m", "g", "t"), defeat.index[member], -INF, rhs,
                  np.concatenate([np.arange(n), np.arange(n)]),
                  np.concatenate([defeat.ids[member], exponent.ids[member]]),
                  np.concatenate([np.ones(n), -slope]))


@defines(constraint("seeing_definition",
                    "$v_{p,k,g,t} = \\sum_{h: \\text{facing } h \\text{ at } p \\text{ sees } g} u_{p,k,h,t}$ ($\\alpha_{p,k,h,t}$ for systems with relocation downtime)",
                    "units that see a launch area, counted once for every row that reaches it"))
def define_seeing_definition(form: Formulation, data: Parameters) -> None:
    seeing = form.columns["seeing"]
    covering = _covering_columns(form, data)
    member, h = np.nonzero(data.sees[seeing.index[:, 1], seeing.index[:, 0], :, seeing.index[:, 2]])
    p, k, t = seeing.index[member, 0], seeing.index[member, 1], seeing.index[member, 3]
    column = covering[p, k, h, t]
    keep = column >= 0
    form.add_rows("seeing_definition", ("p", "k", "g", "t"), seeing.index, 0.0, 0.0,
                  np.concatenate([np.arange(seeing.size), member[keep]]),
                  np.concatenate([seeing.ids, column[keep]]),
                  np.concatenate([np.ones(seeing.size), -np.ones(int(keep.sum()))]))


@defines(constraint("around_definition",
                    "$w_{s,l,t} = \\sum_{p,k: k \\text{ sees every direction}} \\mathrm{cover}_{k,p,0,s,l}\\, u_{p,k,0,t}$ ($\\alpha_{p,k,0,t}$ for systems with relocation downtime)",
                    "units that see every direction, counted once for every launch area's rows"))
def define_around_definition(form: Formulation, data: Parameters) -> None:
    around = form.columns["around"]
    covering = _covering_columns(form, data)[:, :, 0, :]  # (P, K, T)
    disc = data.instance.cover[:, :, 0, :, :, :].any(axis=4) & data.all_round[:, None, None, None]
    row_of = _row_of(around.index, _dims(data, "slt"))
    rows, cols = [np.arange(around.size)], [around.ids]
    k, p, s, l = np.nonzero(disc)
    for t in range(data.instance.T):
        row, column = row_of[s, l, t], covering[p, k, t]
        keep = (row >= 0) & (column >= 0)
        rows.append(row[keep])
        cols.append(column[keep])
    n = sum(len(part) for part in rows[1:])
    form.add_rows("around_definition", ("s", "l", "t"), around.index, 0.0, 0.0,
                  np.concatenate(rows), np.concatenate(cols),
                  np.concatenate([np.ones(around.size), -np.ones(n)]))


# ---------------------------------------------------------------------------- objectives and limits

@defines(objective("coverage", "$\\sum_{s,l,t,j} v_{s,l,j}\\, y_{s,l,t,j}$", "coverage value"),
         objective("substitute_cost", "$\\sum_{f,a,t} \\kappa_f r_{f,a,t}$", "substitute cost"),
         objective("moves", "$\\sum \\mu + \\sum \\nu$", "moves"),
         objective("cost_then_moves", "$W \\cdot \\text{cost} + \\text{moves}$",
                   "cost then moves in one stage (below)"))
def define_objectives(form: Formulation, data: Parameters) -> None:
    """The stage objectives as vectors over all columns; cost and moves folded into one
    stage when that is exact (`cost_then_moves_weight`)."""
    instance = data.instance
    y, rotation = form.columns["y"], form.columns["rotation"]
    coverage = np.zeros(form.n_cols)
    coverage[y.ids] = data.value[y.index[:, 0], y.index[:, 1], y.index[:, 2], y.index[:, 4]]
    if "defeat" in form.columns:
        defeat = form.columns["defeat"]
        coverage[defeat.ids] = instance.class_area_weight[tuple(defeat.index[:, :3].T)]
    cost = np.zeros(form.n_cols)
    cost[rotation.ids] = instance.offer_cost[rotation.index[:, 0]]
    moves = np.zeros(form.n_cols)
    moves[form.columns["move_in"].ids] = 1.0
    moves[form.columns["move_in_sub"].ids] = 1.0
    for name, vector in (("coverage", coverage), ("substitute_cost", cost), ("moves", moves)):
        form.set_objective(name, vector)
    T = instance.T
    most_moves = int(data.class_size[data.movable].sum() * T + instance.offer_count.sum() * T)
    if instance.moves_total is not None:
        most_moves = min(most_moves, instance.moves_total)
    if instance.moves_per_period is not None:
        most_moves = min(most_moves, instance.moves_per_period * T)
    form.most_moves = most_moves
    form.cost_weight = cost_then_moves_weight(cost, moves, instance.offer_cost, most_moves)
    if form.cost_weight is not None:
        form.set_objective("cost_then_moves", form.cost_weight * cost + moves)


@defines(constraint("substitute_budget", "$\\sum_{f,a,t} \\kappa_f r_{f,a,t} \\le B$", "substitute budget"))
def define_substitute_budget(form: Formulation, data: Parameters) -> None:
    rotation = form.columns["rotation"]
    if data.instance.substitute_budget is not None and rotation.size:
        form.add_rows("substitute_budget", (), None, -INF, data.instance.substitute_budget,
                      np.zeros(rotation.size), rotation.ids,
                      form.objectives["substitute_cost"][rotation.ids])


@defines(constraint("moves_per_period",
                    "$\\sum_{p,c} \\mu_{p,c,t} + \\sum_{p,f,a} \\nu_{p,f,a,t} \\le \\bar M_t$",
                    "moves per period"))
def define_moves_per_period(form: Formulation, data: Parameters) -> None:
    period, ids = _moves(form)
    if data.instance.moves_per_period is not None and len(ids):
        periods = np.unique(period)
        form.add_rows("moves_per_period", ("t",), periods, -INF, data.instance.moves_per_period,
                      _row_of(periods[:, None], (data.instance.T,))[period], ids, 1.0)


@defines(constraint("moves_total", "$\\sum_{t} (\\dots) \\le \\bar M$", "moves in total"))
def define_moves_total(form: Formulation, data: Parameters) -> None:
    _, ids = _moves(form)
    if data.instance.moves_total is not None and len(ids):
        form.add_rows("moves_total", (), None, -INF, data.instance.moves_total, np.zeros(len(ids)), ids, 1.0)


@defines(constraint("coverage_target",
                    "$\\sum_{s,l,g,j} v_{s,l,g,t,j}\\, y_{s,l,g,t,j} + \\tau_t \\ge \\theta\\, R_t$; site scope: $\\sum_j v_{s,l,g,t,j}\\, y_{s,l,g,t,j} + \\tau_{s,l,g,t} \\ge \\theta\\, R_{s,l,g,t}$ wherever $R_{s,l,g,t} > 0$ (kill probabilities: $w_s \\omega_m \\pi_g\\, \\theta_{s,m,g,t}$ in place of the depth levels)",
                    "min-cost: each period's coverage at least `target` x the reference posture's (`target_scope: total`), or every site's, layer's (threat class's), launch area's and period's (`target_scope: site`: no gap anywhere)"))
def define_coverage_target(form: Formulation, data: Parameters) -> None:
    instance = data.instance
    target_shortfall = form.columns["target_shortfall"]
    sets, targeted, least = target_cells(instance)
    shape = _dims(data, "".join(sets))
    key = slice(0, 4) if len(sets) > 1 else slice(3, 4)  # y and defeat begin (s, l|m, g, t)
    target_row = _row_of(targeted, shape)
    valued = [form.columns["y"]] + ([form.columns["defeat"]] if "defeat" in form.columns else [])
    rows, cols = [np.arange(len(targeted))], [target_shortfall.ids]
    for block in valued:  # depth levels, or probabilities of defeat
        row = target_row[tuple(block.index[:, key].T)]
        rows.append(row[row >= 0])
        cols.append(block.ids[row >= 0])
    cols_all = np.concatenate(cols)
    values = np.concatenate([np.ones(len(targeted)), form.objectives["coverage"][cols_all[len(targeted):]]])
    form.add_rows("coverage_target", sets, targeted, least, INF, np.concatenate(rows), cols_all, values)


@defines(objective("turns", "$\\sum \\rho$", "turns: the last stage, after moves"))
def define_turns_objective(form: Formulation, data: Parameters) -> None:
    vector = np.zeros(form.n_cols)
    vector[form.columns["turns"].ids] = 1.0
    vector[form.columns["turns_sub"].ids] = 1.0
    form.set_objective("turns", vector)


@defines(constraint("turns_per_period", "$\\sum_{p,h,\\cdot} \\rho_{p,h,\\cdot,t} \\le \\bar R_t$",
                    "turns per period"))
def define_turns_per_period(form: Formulation, data: Parameters) -> None:
    period, ids = _turn_columns(form)
    if data.instance.turns_per_period is not None and len(ids):
        periods = np.unique(period)
        form.add_rows("turns_per_period", ("t",), periods, -INF, data.instance.turns_per_period,
                      _row_of(periods[:, None], (data.instance.T,))[period], ids, 1.0)


@defines(constraint("turns_total", "$\\sum \\rho \\le \\bar R$", "turns in total"))
def define_turns_total(form: Formulation, data: Parameters) -> None:
    _, ids = _turn_columns(form)
    if data.instance.turns_total is not None and len(ids):
        form.add_rows("turns_total", (), None, -INF, data.instance.turns_total, np.zeros(len(ids)), ids, 1.0)


# ---------------------------------------------------------------------------- helpers of the blocks

def _dims(data: Parameters, sets: str) -> tuple[int, ...]:
    """The shape of a dense array over the index sets named by their code letters."""
    shape = data.shape
    return tuple(shape[name] for name in sets)


def _row_of(index: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Dense array of the local row of each index tuple (-1 where there is no row)."""
    table = np.full(shape, -1, dtype=np.int64)
    table[tuple(np.asarray(index).reshape(-1, len(shape)).T)] = np.arange(len(index))
    return table


def _covering_columns(form: Formulation, data: Parameters) -> np.ndarray:
    """(P, K, H, T) the column that counts the units covering from (p, k, h) in t: in_action
    for systems with relocation downtime, else units; -1 where there is none."""
    covering = form.lookup("units", _dims(data, "pkht"))
    if "in_action" in form.columns:
        in_action = form.lookup("in_action", _dims(data, "pkht"))
        covering = np.where(in_action >= 0, in_action, covering)
    return covering


def _seeing_mask(form: Formulation, data: Parameters) -> np.ndarray:
    """(P, K, G, T) where a `seeing` column shortens the rows: a factored system, and more
    entries saved in the rows its (p, k, g) reaches (one per heading but one) than its
    definition adds (one per heading, and itself)."""
    covering = _covering_columns(form, data) >= 0  # (P, K, H, T)
    headings = np.einsum("pkht,kphg->pkgt", covering.astype(np.int64), data.sees.astype(np.int64))
    reached = data.reach.sum(axis=(2, 3)).transpose(1, 0, 2)[..., None]  # (P, K, G, 1)
    pays = _shortens(reached * (headings - 1), headings + 1) & (headings >= 1)
    return pays & data.factored[None, :, None, None]


#: the tangent cuts each (site, class, launch area, period) starts with: at the fixed units'
#: exponent and at 1 .. this many engagements of each kill rate beyond it; the solve adds the
#: cut at every plan's own exponent where its probability of defeat is overstated
TANGENTS_PER_RATE = 2


def tangent(x0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(slope, right-hand side) of the tangent cut of 1 - exp(-x) at x0:
    theta - slope chi <= rhs, with slope = exp(-x0) and rhs = 1 - exp(-x0) (1 + x0)."""
    slope = np.exp(-np.asarray(x0, float))
    return slope, 1.0 - slope * (1.0 + x0)


def defeat_pairs(form: Formulation) -> tuple[np.ndarray, np.ndarray]:
    """(defeat ids, kill exponent ids) of every (site, class, area, period), in every
    scenario of a stacked model."""
    pairs = [(block.ids, form.columns[name[:-len("defeat")] + "kill_exponent"].ids)
             for name, block in form.columns.items() if block.name == "defeat"]
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate([a for a, _ in pairs]), np.concatenate([b for _, b in pairs])


def violated_tangents(form: Formulation, solution: np.ndarray,
                      tolerance: float = 1e-9) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(defeat id, exponent id, slope, rhs) of the tangent cut at the plan's own exponent
    wherever its probability of defeat exceeds 1 - exp(-chi): added, they make that plan's
    value exact; a plan that overstates none is valued exactly already."""
    defeat, exponent = defeat_pairs(form)
    chi = np.maximum(solution[exponent], 0.0)
    over = solution[defeat] > -np.expm1(-chi) + tolerance
    slope, rhs = tangent(chi[over])
    return defeat[over], exponent[over], slope, rhs


def _engaged_rows(form: Formulation, data: Parameters) -> np.ndarray:
    """(s, c, g, t) where a probability of defeat is worth something and some unit, fixed or
    movable, could engage."""
    instance = data.instance
    most = form.mask("units", _dims(data, "pkht")) * data.capacity[:, None, None, None]
    could = units_by_system(instance, most + data.fixed_count)  # (K, S, L, G, T)
    engaged = np.einsum("kl,cgl,kslgt->scgt", (instance.kill_rate > 0).astype(float),
                        instance.engaging.astype(float), could) > 0
    return np.argwhere(engaged & (instance.class_area_weight[..., None] > 0))


def _fixed_exponent(data: Parameters) -> np.ndarray:
    """(S, C, G, T) the kill exponent of the fixed units alone."""
    return kill_exponent(data.instance, units_by_system(data.instance, data.fixed_count))


def _around_mask(form: Formulation, data: Parameters) -> np.ndarray:
    """(S, L, T) where an `around` column shortens the rows: more entries saved in the rows of
    the launch areas threatening l (one per covering column in each but one) than its
    definition adds (one per covering column, and itself)."""
    covering = _covering_columns(form, data)[:, :, 0, :] >= 0  # (P, K, T)
    disc = data.instance.cover[:, :, 0, :, :, :].any(axis=4) & data.all_round[:, None, None, None]
    columns = np.einsum("kpsl,pkt->slt", disc.astype(np.int64), covering.astype(np.int64))
    areas = data.instance.threatens.sum(axis=0)[None, :, None]  # (1, L, 1)
    return _shortens(columns * (areas - 1), columns + 1) & (columns >= 1)


#: count units once per launch area (`seeing`, `around`) only where the rows get shorter;
#: the tests set it False to build them wherever they are exact, tiny instances included
ONLY_WHERE_SHORTER = True


def _shortens(saved: np.ndarray, added: np.ndarray) -> np.ndarray:
    """Where counting once saves more matrix entries than it adds (everywhere, when
    `ONLY_WHERE_SHORTER` is off)."""
    return saved > added if ONLY_WHERE_SHORTER else np.ones(np.shape(saved), dtype=bool)


def _coverage_entries(form: Formulation, data: Parameters,
                      row_of: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, 1) of cover[k,p,h,s,l,g] x units[p,k,h,t] for the rows `row_of[s, l, g, t]`
    (in_action in place of units for systems with relocation downtime; seeing[p,k,g,t] once
    in place of every heading's where it exists)."""
    covering = _covering_columns(form, data)
    seeing, around = (form.lookup(name, _dims(data, sets)) if name in form.columns
                      else np.full(_dims(data, sets), -1, dtype=np.int64)
                      for name, sets in (("seeing", "pkgt"), ("around", "slt")))
    k, p, h, s, l, g = np.nonzero(data.instance.cover)
    reach_k, reach_p, reach_s, reach_l, reach_g = np.nonzero(data.reach & data.factored[:, None, None, None, None])
    around_s, around_l, around_g = np.nonzero(data.instance.threatens.T[None, :, :]
                                              & np.ones((data.shape["s"], 1, 1), dtype=bool))
    replaced = data.all_round[k]
    rows, cols = [], []
    for t in range(data.instance.T):
        for column, row in ((np.where((seeing[p, k, g, t] >= 0) | (replaced & (around[s, l, t] >= 0)),
                                      -1, covering[p, k, h, t]), row_of[s, l, g, t]),
                            (seeing[reach_p, reach_k, reach_g, t], row_of[reach_s, reach_l, reach_g, t]),
                            (around[around_s, around_l, t], row_of[around_s, around_l, around_g, t])):
            keep = (column >= 0) & (row >= 0)
            rows.append(row[keep])
            cols.append(column[keep])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    return rows, cols, np.ones(len(cols))


def _headed(index: np.ndarray, system: np.ndarray, data: Parameters) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) index tuples starting with the position -> (m, d + 1), each with every heading
    worth facing there (`Instance.useful_headings`) inserted after the position; and which
    tuple each came from."""
    useful = data.instance.useful_headings[system, index[:, 0]]  # (n, H)
    member, heading = np.nonzero(useful)
    out = np.column_stack([index[member, :1], heading, index[member, 1:]]).astype(np.int64)
    return out.reshape(-1, index.shape[1] + 1), member


def _split_rows(form: Formulation, name: str, whole: str, parts: str, system_of: np.ndarray,
                data: Parameters) -> None:
    """sum_h parts[p, h, ...] = whole[p, ...] for the members of `whole` of oriented systems."""
    total, split = form.columns[whole], form.columns[parts]
    chosen = data.oriented[system_of[total.index[:, 1]]]
    n = int(chosen.sum())
    shape = _dims(data, "".join(total.sets))
    row_of = _row_of(total.index[chosen], shape)[tuple(np.delete(split.index, 1, axis=1).T)]
    form.add_rows(name, total.sets, total.index[chosen], 0.0, 0.0,
                  np.concatenate([row_of, np.arange(n)]),
                  np.concatenate([split.ids, total.ids[chosen]]),
                  np.concatenate([np.ones(split.size), -np.ones(n)]))


def _within_rows(form: Formulation, name: str, part: str, whole: str, shape: tuple[int, ...]) -> None:
    """part <= whole, member by member (the same index)."""
    block = form.columns[part]
    whole_col = form.lookup(whole, shape)[tuple(block.index.T)]
    local = np.arange(block.size)
    form.add_rows(name, block.sets, block.index, -INF, 0.0, np.concatenate([local, local]),
                  np.concatenate([block.ids, whole_col]),
                  np.concatenate([np.ones(block.size), -np.ones(block.size)]))


def _turn_rows(form: Formulation, name: str, turns: str, moved: str, now: np.ndarray,
               before: np.ndarray, first: np.ndarray, lower) -> None:
    """turns - facing + moved + facing before >= lower (before: none where `first`)."""
    block, moved_block = form.columns[turns], form.columns[moved]
    local = np.arange(block.size)
    earlier = ~first & (before >= 0)  # no column: nobody faced that heading there before
    form.add_rows(name, block.sets, block.index, lower, INF,
                  np.concatenate([local, local, local, local[earlier]]),
                  np.concatenate([block.ids, now, moved_block.ids, before[earlier]]),
                  np.concatenate([np.ones(block.size), -np.ones(block.size), np.ones(block.size),
                                  np.ones(int(earlier.sum()))]))


def _arrival_rows(form: Formulation, name: str, moved: Block, chosen: np.ndarray, group: np.ndarray,
                  now: np.ndarray, before: np.ndarray, first: np.ndarray, upper,
                  staying: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """2 moved[p] + count before[p] - count now[p] - sum of moved over the group (+ the group's
    total now - its total before, `staying`: a cohort shrinks as rotations end) <= upper, one
    row per member `chosen` of `moved` (group: its class or cohort and period)."""
    n = len(chosen)
    local = np.arange(n)
    pairs = [(i, j) for g in range(int(group.max(initial=-1)) + 1)
             for i in np.nonzero(group == g)[0] for j in np.nonzero(group == g)[0] if i != j]
    others_rows = np.array([i for i, _ in pairs], dtype=np.int64)
    others_cols = np.array([j for _, j in pairs], dtype=np.int64)
    rows = [local, local, local[~first], others_rows]
    cols = [moved.ids[chosen], now, before[~first], moved.ids[chosen][others_cols]]
    values = [np.ones(n), -np.ones(n), np.ones(int((~first).sum())), -np.ones(len(others_rows))]
    if staying is not None:
        rows += [local, local]
        cols += [staying[0], staying[1]]
        values += [np.ones(n), -np.ones(n)]
    form.add_rows(name, moved.sets, moved.index[chosen], -INF, upper,  # own: 2 - 1
                  np.concatenate(rows), np.concatenate(cols), np.concatenate(values))


def _turn_columns(form: Formulation) -> tuple[np.ndarray, np.ndarray]:
    """(period, column id) of every turn column, organic then substitute."""
    turns, turns_sub = form.columns["turns"], form.columns["turns_sub"]
    return (np.concatenate([turns.index[:, 3], turns_sub.index[:, 4]]),
            np.concatenate([turns.ids, turns_sub.ids]))


def _moves(form: Formulation) -> tuple[np.ndarray, np.ndarray]:
    """(period, column id) of every move column, organic then substitute."""
    move_in, move_in_sub = form.columns["move_in"], form.columns["move_in_sub"]
    return (np.concatenate([move_in.index[:, 2], move_in_sub.index[:, 3]]),
            np.concatenate([move_in.ids, move_in_sub.ids]))


def posture_solution(form: Formulation, where: np.ndarray, substitutes: list[tuple] = (),
                     headings: np.ndarray | None = None) -> np.ndarray:
    """Column values of a posture: `where[u, t]` is the position of organic unit u in t (its
    home when fixed, ignored when away) and `headings[u, t]` the heading it faces (default: its
    home heading at home, else the best one there); each substitute unit is (offer, periods on
    station, positions[, headings]). HiGHS starts from such a plan (the greedy one, or a
    previous plan)."""
    instance = form.instance
    P, T, K, H = len(instance.position_ids), instance.T, len(instance.systems), instance.H
    C, F = len(form.classes), len(instance.offer_ids)
    oriented = instance.sector_limited & (H > 1)
    z, facing, moved_facing, turns = (np.zeros((P, C, T)), np.zeros((P, H, C, T)),
                                      np.zeros((P, H, C, T)), np.zeros((P, H, C, T)))
    standing, fixed = np.zeros((P, K, H, T)), np.zeros((P, K, H, T))
    moved_units = np.zeros((P, K, H, T))  # units that moved in, for the downtime
    homes = np.zeros((P, C))
    moved_in = np.zeros((P, C, T))
    for c, unit_class in enumerate(form.classes):
        k = unit_class.system
        for u in unit_class.members:
            homes[instance.unit_home[u], c] += 1
            before = (int(instance.unit_home[u]), int(instance.unit_heading[u]))
            for t in range(T):
                if not instance.present[u, t]:
                    before = None
                    continue
                p = int(instance.unit_home[u] if unit_class.fixed else where[u, t])
                h = _unit_heading(instance, u, p, t, headings) if oriented[k] else 0
                if unit_class.fixed:
                    fixed[p, k, int(instance.unit_heading[u]) if oriented[k] else 0, t] += 1
                    continue
                standing[p, k, h, t] += 1
                z[p, c, t] += 1
                facing[p, h, c, t] += 1
                if before is not None and before[0] != p:
                    moved_in[p, c, t] += 1
                    moved_facing[p, h, c, t] += 1
                    moved_units[p, k, h, t] += 1
                elif before is not None and before[1] != h and oriented[k]:
                    turns[p, h, c, t] += 1
                before = (p, h)
    rotation, z_sub = np.zeros((F, T, T)), np.zeros((P, F, T, T))
    facing_sub, moved_facing_sub, turns_sub, moved_in_sub = (np.zeros((P, H, F, T, T)) for _ in range(4))
    for substitute in substitutes:
        f, periods, positions = substitute[:3]
        k = int(instance.offer_system[f])
        given = substitute[3] if len(substitute) > 3 else [None] * len(periods)
        arrival, before = periods[0], None
        for t, p, h in zip(periods, positions, given):
            h = (int(instance.best_heading[k, p]) if h is None else int(h)) if oriented[k] else 0
            rotation[f, arrival, t] += 1
            z_sub[p, f, arrival, t] += 1
            facing_sub[p, h, f, arrival, t] += 1
            standing[p, k, h, t] += 1
            if before is not None and before[0] != p:
                moved_in_sub[p, h, f, arrival, t] += 1
                moved_facing_sub[p, h, f, arrival, t] += 1
                moved_units[p, k, h, t] += 1
            elif before is not None and before[1] != h:
                turns_sub[p, h, f, arrival, t] += 1
            before = (p, h)
    solution = np.zeros(form.n_cols)
    ending = rotation - np.concatenate([rotation[:, :, 1:], np.zeros((F, T, 1))], axis=2)
    in_action = standing - instance.downtime[None, :, None, None] * moved_units
    tables = {"z": z, "units": standing, "rotation": rotation, "z_sub": z_sub, "rotation_end": ending,
              "facing": facing, "facing_sub": facing_sub, "moved_facing": moved_facing,
              "moved_facing_sub": moved_facing_sub, "turns": turns, "turns_sub": turns_sub,
              "in_action": in_action}
    tables.update(_counted_once(instance, in_action))
    if instance.kill_probability:
        exponent = kill_exponent(instance, units_by_system(instance, in_action + fixed))
        tables.update({"kill_exponent": exponent, "defeat": -np.expm1(-exponent)})
    for name, table in tables.items():
        if name in form.columns:
            block = form.columns[name]
            solution[block.ids] = table[tuple(block.index.T)]
    covering = covering_units(instance, in_action + fixed)
    block = form.columns["y"]
    s, l, g, t, j = block.index.T
    solution[block.ids] = np.clip(covering[s, l, g, t] - j, 0.0, 1.0)
    per_unit = oriented.any() or instance.downtime.any()  # moves counted unit by unit
    block = form.columns["move_in"]
    p, c, t = block.index.T
    before = np.where(t == 0, homes[p, c], z[p, c, np.maximum(t - 1, 0)])
    solution[block.ids] = moved_in[p, c, t] if per_unit else np.maximum(z[p, c, t] - before, 0.0)
    block = form.columns["move_in_sub"]
    p, f, a, t = block.index.T
    solution[block.ids] = (moved_in_sub[p, :, f, a, t].sum(axis=1) if per_unit
                           else np.maximum(z_sub[p, f, a, t] - z_sub[p, f, a, t - 1], 0.0))
    return solution


def _counted_once(instance: Instance, in_action: np.ndarray) -> dict[str, np.ndarray]:
    """The `seeing` (P, K, G, T) and `around` (S, L, T) values of movable units in action
    `in_action[p, k, h, t]`, as their definitions count them."""
    sight = _sight(instance)
    seeing = np.einsum("pkht,kphg->pkgt", in_action, sight["sees"].astype(float))
    disc = instance.cover[:, :, 0, :, :, :].any(axis=4) & sight["all_round"][:, None, None, None]
    around = np.einsum("kpsl,pkt->slt", disc.astype(float), in_action[:, :, 0, :])
    return {"seeing": seeing, "around": around}


def _unit_heading(instance: Instance, u: int, p: int, t: int, headings: np.ndarray | None) -> int:
    """The heading organic unit u faces at p in t: as given, else its home heading at home, else
    the best one there."""
    if headings is not None and headings[u, t] >= 0:
        return int(headings[u, t])
    if p == instance.unit_home[u]:
        return int(instance.unit_heading[u])
    return int(instance.best_heading[instance.unit_system[u], p])


def plan_solution(form: Formulation, posture) -> np.ndarray:
    """Column values of a posture table (period, unit, position[, heading]), substitutes
    included."""
    instance = form.instance
    period = {label: t for t, label in enumerate(instance.periods)}
    position = {p: i for i, p in enumerate(instance.position_ids)}
    unit = {u: i for i, u in enumerate(instance.unit_ids)}
    offer_of = instance.substitute_offer
    degrees = heading_degrees(instance.H)
    where = np.repeat(instance.unit_home[:, None], instance.T, axis=1)
    headings = np.full(where.shape, -1, dtype=np.int64)
    stays: dict[str, list[tuple[int, int, int | None]]] = {}
    has_heading = "heading" in posture.columns
    for row in posture.itertuples():
        heading = getattr(row, "heading", None) if has_heading else None
        h = (None if heading is None or heading != heading
             else int(np.argmin(angular_offset(float(heading), degrees))))
        if row.unit in unit:
            where[unit[row.unit], period[row.period]] = position[row.position]
            headings[unit[row.unit], period[row.period]] = -1 if h is None else h
        else:
            stays.setdefault(row.unit, []).append((period[row.period], position[row.position], h))
    substitutes = [(offer_of[name], [t for t, _, _ in sorted(stay, key=lambda x: x[0])],
                    [p for _, p, _ in sorted(stay, key=lambda x: x[0])],
                    [h for _, _, h in sorted(stay, key=lambda x: x[0])])
                   for name, stay in stays.items()]
    return posture_solution(form, where, substitutes, headings)


def common_grid(values: np.ndarray, finest: int = 10_000) -> int | None:
    """Smallest integer D <= `finest` with every value x D an integer (within 1e-9), else None:
    sums of these values with integer multipliers then differ by 0 or at least 1/D."""
    grid = 1
    for value in np.unique(np.abs(np.asarray(values, float))):
        scaled = value * grid
        if abs(scaled - round(scaled)) <= 1e-9 * max(1.0, scaled):
            continue
        denominator = Fraction(float(value)).limit_denominator(finest).denominator
        grid = grid * denominator // math.gcd(grid, denominator)
        scaled = value * grid
        if grid > finest or abs(scaled - round(scaled)) > 1e-9 * max(1.0, scaled):
            return None
    return grid


def cost_then_moves_weight(cost: np.ndarray, moves: np.ndarray, offer_cost: np.ndarray,
                           most_moves: int) -> float | None:
    """Weight W such that W x cost + moves is least at the least cost, then fewest moves.

    When every offer's cost lies on a grid 1/D (`common_grid`), two plans' costs differ by at
    least 1/D, so weighting cost by D x (most moves + 1) puts any cost difference above every
    difference in moves. None when no such grid exists or the weights would get too large
    for double precision; the stages then run one after the other.
    """
    grid = common_grid(offer_cost)
    if grid is None:
        return None
    weight = float(grid * (most_moves + 1))
    if weight * float(np.abs(cost).max(initial=0.0)) > LARGEST_COST_THEN_MOVES_COEFFICIENT:
        return None
    return weight


def coverage_first_weight(coverage: np.ndarray, most_tie_break: float,
                          downtime: np.ndarray = np.zeros(0)) -> float | None:
    """Weight L such that -L x coverage + `cost_then_moves` is least at the most coverage,
    then the least cost, then the fewest moves.

    When every coverage value lies on a grid 1/D (`common_grid`), two plans' coverages (depth
    levels filled, as at any optimum) differ by at least 1/D, so weighting coverage by
    D x (`most_tie_break` + 1) puts any coverage difference above every difference in cost
    and moves. None when no such grid exists or the weights would get too large for double
    precision; the stages then run one after the other. With relocation downtime a level may
    be filled by a fraction: a sum of whole counts and multiples of each `downtime` share, so
    the grid must hold the values times those shares too.
    """
    values = coverage[coverage != 0]
    shares = np.unique(downtime[downtime > 0])
    grid = common_grid(np.concatenate([values, *(values * share for share in shares)]),
                       finest=COVERAGE_GRID_FINEST)
    if grid is None:
        return None
    weight = float(grid) * (most_tie_break + 1.0)
    if weight * float(np.abs(values).max(initial=0.0)) > LARGEST_WEIGHTED_COEFFICIENT:
        return None
    return weight


def most_substitute_cost(instance: Instance) -> float:
    """No plan's substitute cost exceeds this: every offer on station all the time, or the budget."""
    most = float(instance.offer_cost @ instance.offer_count) * instance.T
    return most if instance.substitute_budget is None else min(most, float(instance.substitute_budget))


@defines(objective("coverage_cost_moves",
                   "$-\\Lambda \\cdot \\text{coverage} + W \\cdot \\text{cost} + \\text{moves}$",
                   "all three in one stage (below)"))
def define_coverage_cost_moves(form: Formulation, most_tie_break: float) -> None:
    """The one-stage objective (to minimize), when it is exact and the model is small enough
    (`ONE_STAGE_MAX_NONZEROS`)."""
    if form.nonzeros > ONE_STAGE_MAX_NONZEROS or form.instance.kill_probability:
        return  # probabilities of defeat lie on no grid
    weight = coverage_first_weight(form.objectives["coverage"], most_tie_break, form.instance.downtime)
    if weight is None or "cost_then_moves" not in form.objectives:
        return
    step = common_grid(form.objectives["cost_then_moves"], finest=COVERAGE_GRID_FINEST)
    if step is not None:
        form.coverage_weight, form.most_tie_break, form.tie_break_step = weight, most_tie_break, 1 / step
        form.set_objective("coverage_cost_moves", form.objectives["cost_then_moves"]
                           - weight * form.objectives["coverage"])


def build_model(instance: Instance, objective: str | None = None):
    """The Pyomo model of an instance, to extend before `layerdef.solve(inst, model=...)`.

    Variables and constraints carry the names of `models/coverage.md` (`z`, `z_sub`,
    `rotation`, `units`, `y`, ..., `class_presence`, `depth`, `requirement`, ...); the
    stage objectives are `maximize_coverage`, `minimize_cost` and `minimize_moves` (and
    `minimize_turns` where units face headings, over the expression `turns_objective`), with
    one active. Same arrays as the fast path, so both solve the same model.
    """
    import pyomo.environ as pyo
    from pyomo.core.expr.numeric_expr import LinearExpression

    form = formulate(instance, objective)
    model = pyo.ConcreteModel(name=instance.name)
    model.formulation = form
    lower, upper, integer = form.bounds()
    columns = []
    for name, block in form.columns.items():
        column_of = {_key(key): block.start + i for i, key in enumerate(block.index)}
        var = pyo.Var(list(column_of), domain=pyo.Integers if block.size and integer[block.start] else pyo.Reals,
                      bounds=lambda _, *key, _columns=column_of: (
                          _finite(lower[_columns[_key(key)]]), _finite(upper[_columns[_key(key)]])))
        model.add_component(name, var)
        columns.extend(var[key] for key in column_of)
    start, index, value = form.csr()
    row_lower, row_upper = form.row_bounds()

    def row(i: int):
        terms = slice(start[i], start[i + 1])
        expression = LinearExpression(constant=0, linear_coefs=value[terms].tolist(),
                                      linear_vars=[columns[j] for j in index[terms]])
        return (_finite(row_lower[i]), expression, _finite(row_upper[i]))

    for name, block in form.rows.items():
        if not block.sets:
            model.add_component(name, pyo.Constraint(expr=row(block.start)))
            continue
        row_of = {_key(key): block.start + i for i, key in enumerate(block.index)}
        model.add_component(name, pyo.Constraint(list(row_of), rule=lambda _, *key, _rows=row_of:
                                                 row(_rows[_key(key)])))
    expressions = {}
    for name, vector in form.objectives.items():
        nonzero = np.nonzero(vector)[0]
        # `turns` is also the variable of each class's turns (and `turns_total` the limit row)
        taken = name in form.columns or name in form.rows
        expressions[name] = f"{name}_objective" if taken else name
        model.add_component(expressions[name], pyo.Expression(expr=LinearExpression(
            constant=0, linear_coefs=vector[nonzero].tolist(),
            linear_vars=[columns[j] for j in nonzero])))
    model.maximize_coverage = pyo.Objective(expr=model.coverage, sense=pyo.maximize)
    model.minimize_cost = pyo.Objective(expr=model.substitute_cost, sense=pyo.minimize)
    model.minimize_moves = pyo.Objective(expr=model.moves, sense=pyo.minimize)
    stages = [model.maximize_coverage, model.minimize_cost, model.minimize_moves]
    for name in ("cost_then_moves", "coverage_cost_moves", "turns"):
        if name in form.objectives:
            objective = pyo.Objective(expr=getattr(model, expressions[name]), sense=pyo.minimize)
            model.add_component(f"minimize_{name}", objective)
            stages.append(objective)
    for stage in stages:
        stage.deactivate()
    (model.minimize_cost if form.objective_kind == "min-cost" else model.maximize_coverage).activate()
    model.columns = columns
    return model


def _key(row) -> tuple | int:
    values = tuple(int(v) for v in row)
    return values[0] if len(values) == 1 else values


def _finite(bound: float) -> float | None:
    return None if not np.isfinite(bound) else float(bound)
