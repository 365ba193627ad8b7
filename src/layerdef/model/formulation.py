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

from layerdef.core.instance import Instance
from layerdef.core.scoring import coverage_value, covering_units, level_values
from layerdef.model.blocks import BLOCK_NAMES

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


def reference_coverage_by_period(instance: Instance) -> np.ndarray:
    """(T,) coverage value of the reference posture (every unit at home, none away), the
    yardstick of the `min-cost` target."""
    standing = np.zeros((len(instance.position_ids), len(instance.systems), instance.T), dtype=np.int64)
    np.add.at(standing, (instance.unit_home, instance.unit_system), 1)
    return coverage_value(instance, covering_units(instance, standing)).sum(axis=(0, 1))


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

    # -- assembly helpers

    def add_columns(self, name: str, sets: tuple[str, ...], index: np.ndarray, lower, upper,
                    integer: bool) -> Block:
        """A block of columns, defined in `layerdef.model.blocks` with its math."""
        _defined(name)
        index = _as_index(index, sets)
        block = Block(name, self.n_cols, index, sets)
        n = len(index)
        self.columns[name] = block
        self.col_lower.append(np.broadcast_to(np.asarray(lower, float), (n,)).copy())
        self.col_upper.append(np.broadcast_to(np.asarray(upper, float), (n,)).copy())
        self.col_integer.append(np.full(n, integer))
        self.n_cols += n
        return block

    def add_rows(self, name: str, sets: tuple[str, ...], index: np.ndarray, lower, upper,
                 row: np.ndarray, col: np.ndarray, value) -> Block:
        """A block of rows, defined in `layerdef.model.blocks` with its math; (row, col, value)
        are its entries, `row` local to the block."""
        _defined(name)
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
        return self.entries[list(self.rows).index(name)]

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


def _defined(name: str) -> None:
    """Every block has its definition (math and meaning) in `layerdef.model.blocks`, from which
    models/ is generated: a block without one is a bug, caught where it is added."""
    if name not in BLOCK_NAMES:
        raise ValueError(f"block {name!r} has no definition in layerdef.model.blocks")


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


def formulate(instance: Instance, objective: str | None = None,
              classes: list[UnitClass] | None = None) -> Formulation:
    """Build the model's arrays for an instance; `objective` is `coverage` or `min-cost`.

    `classes` replaces the classes of interchangeable units (the benchmarks' per-unit
    baseline passes one class per unit).
    """
    objective = objective or instance.objective
    form = Formulation(instance, objective, classes if classes is not None else unit_classes(instance))
    T, P = instance.T, len(instance.position_ids)
    S, L, K = len(instance.site_ids), len(instance.layers), len(instance.systems)
    F, J = len(instance.offer_ids), len(instance.depth_weights)
    classes = form.classes
    C = len(classes)
    class_system = np.array([c.system for c in classes], dtype=np.int64)
    class_owner = np.array([c.owner for c in classes], dtype=np.int64)
    class_size = np.array([c.size for c in classes], dtype=np.int64)
    class_present = np.array([c.present for c in classes], dtype=bool).reshape(C, T)
    movable = np.array([not c.fixed for c in classes], dtype=bool)
    homes = np.zeros((C, P), dtype=np.int64)
    for c, unit_class in enumerate(classes):
        np.add.at(homes[c], instance.unit_home[list(unit_class.members)], 1)
    capacity = instance.capacity.astype(np.int64)

    # fixed units are constants at their homes: units[p, k, t] and their coverage counts
    fixed_count = np.zeros((P, K, T), dtype=np.int64)
    for c in np.nonzero(~movable)[0]:
        fixed_count[:, class_system[c], :] += homes[c][:, None] * class_present[c][None, :]
    fixed_units = covering_units(instance, fixed_count)

    # z[p, c, t]: units of movable class c at p in t
    z_mask = (instance.admits[:, class_owner][:, :, None] & class_present[None, :, :]
              & movable[None, :, None])
    z_index = np.argwhere(z_mask)
    z = form.add_columns("z", ("p", "c", "t"), z_index, 0,
                         np.minimum(class_size[z_index[:, 1]], capacity[z_index[:, 0]]), True)
    z_col = _lookup((P, C, T), z)

    # rotation[f, a, t]: units of offer f that arrived in a and are still on station in t
    stay = np.zeros((F, T, T), dtype=bool)
    for f in range(F):
        for a in range(int(instance.offer_earliest[f]), T):
            stay[f, a, a:min(T, a + int(instance.offer_max_periods[f]))] = True
    rotation_index = np.argwhere(stay)
    rotation = form.add_columns("rotation", ("f", "a", "t"), rotation_index, 0,
                                instance.offer_count[rotation_index[:, 0]], True)
    rotation_col = _lookup((F, T, T), rotation)

    # rotation_end[f, a, d]: units of cohort (f, a) whose rotation ends in d (the last period of
    # the horizon for rotations that outlast it): rotation lengths as choices HiGHS branches on
    cohorts = rotation_index[rotation_index[:, 1] == rotation_index[:, 2], :2]
    first_end = np.minimum(cohorts[:, 1] + instance.offer_min_periods[cohorts[:, 0]] - 1, T - 1)
    last_end = np.minimum(cohorts[:, 1] + instance.offer_max_periods[cohorts[:, 0]] - 1, T - 1)
    ends = last_end - first_end + 1
    end_index = np.column_stack([np.repeat(cohorts, ends, axis=0),
                                 np.repeat(first_end, ends) + _ranks(ends)]).reshape(-1, 3)
    rotation_end = form.add_columns("rotation_end", ("f", "a", "d"), end_index, 0,
                                    instance.offer_count[end_index[:, 0]], True)

    # z_sub[p, f, a, t]: units of cohort (f, a) at p in t
    z_sub_mask = instance.admits[:, instance.offer_owner][:, :, None, None] & stay[None]
    z_sub_index = np.argwhere(z_sub_mask)
    z_sub = form.add_columns(
        "z_sub", ("p", "f", "a", "t"), z_sub_index, 0,
        np.minimum(instance.offer_count[z_sub_index[:, 1]], capacity[z_sub_index[:, 0]]), True)
    z_sub_col = _lookup((P, F, T, T), z_sub)

    # units[p, k, t]: movable units of system k at p in t (classes and substitutes)
    units_mask = np.zeros((P, K, T), dtype=bool)
    units_mask[z_index[:, 0], class_system[z_index[:, 1]], z_index[:, 2]] = True
    units_mask[z_sub_index[:, 0], instance.offer_system[z_sub_index[:, 1]], z_sub_index[:, 3]] = True
    units_index = np.argwhere(units_mask)
    units = form.add_columns("units", ("p", "k", "t"), units_index, 0, capacity[units_index[:, 0]],
                             False)
    units_col = _lookup((P, K, T), units)

    # depth levels y[s, l, t, j] of the (site, layer) pairs some unit can cover and that count
    value = level_values(instance)  # (S, L, J)
    most = units_mask * capacity[:, None, None]  # (P, K, T) most movable units of k at p in t
    depth_room = covering_units(instance, most) + fixed_units  # (S, L, T)
    y_mask = (value[:, :, None, :] > 0) & (np.arange(J)[None, None, None, :] < depth_room[..., None])
    y_index = np.argwhere(y_mask)
    y = form.add_columns("y", ("s", "l", "t", "j"), y_index, 0, 1, False)

    # shortfall[s, l, t]: units missing against a requirement (fixed at 0 unless elastic)
    required = np.argwhere(np.broadcast_to(instance.requirement[:, :, None] > 0, (S, L, T)))
    shortfall = form.add_columns("shortfall", ("s", "l", "t"), required, 0, 0, False)

    # move_in[p, c, t] and move_in_sub[p, f, a, t]: units arriving at p by relocation
    previous_present = np.concatenate([np.ones((C, 1), bool), class_present[:, :-1]], axis=1)
    move_index = z_index[previous_present[z_index[:, 1], z_index[:, 2]]]
    move_in = form.add_columns("move_in", ("p", "c", "t"), move_index, 0, INF, True)
    sub_move_index = z_sub_index[z_sub_index[:, 3] > z_sub_index[:, 2]]
    move_in_sub = form.add_columns("move_in_sub", ("p", "f", "a", "t"), sub_move_index, 0, INF,
                                   True)

    target_shortfall = None
    if objective == "min-cost":
        reference = reference_coverage_by_period(instance)
        targeted = np.nonzero(instance.target * reference > 0)[0]
        target_shortfall = form.add_columns("target_shortfall", ("t",), targeted, 0, 0, False)

    # ------------------------------------------------------------------ rows
    # class_presence[c, t]: every present unit of a movable class stands somewhere
    presence_index = np.argwhere(class_present & movable[:, None])
    presence_row = np.full((C, T), -1, dtype=np.int64)
    presence_row[tuple(presence_index.T)] = np.arange(len(presence_index))
    size = class_size[presence_index[:, 0]]
    form.add_rows("class_presence", ("c", "t"), presence_index, size, size,
                  presence_row[z_index[:, 1], z_index[:, 2]], z.ids, 1.0)

    # rotations_per_offer[f]: at most `count` rotations (one per unit) in the horizon
    arrivals = rotation_index[:, 1] == rotation_index[:, 2]
    form.add_rows("rotations_per_offer", ("f",), np.arange(F), -INF, instance.offer_count,
                  rotation_index[arrivals, 0], rotation.ids[arrivals], 1.0)

    # rotation_length[f, a, t]: a cohort stays whole for min_periods, then only shrinks
    later = ~arrivals
    length_index = rotation_index[later]
    n_length = len(length_index)
    within_min = length_index[:, 2] < length_index[:, 1] + instance.offer_min_periods[length_index[:, 0]]
    local = np.arange(n_length)
    earlier_col = rotation_col[length_index[:, 0], length_index[:, 1], length_index[:, 2] - 1]
    form.add_rows("rotation_length", ("f", "a", "t"), length_index, np.where(within_min, 0.0, -INF),
                  0.0, np.concatenate([local, local]),
                  np.concatenate([rotation.ids[later], earlier_col]),
                  np.concatenate([np.ones(n_length), -np.ones(n_length)]))

    # rotation_ends[f, a, t]: the units of cohort (f, a) on station in t are those ending in t or later
    on_station = end_index[:, 2] - end_index[:, 1] + 1  # periods a..d of each end
    end_of = np.repeat(np.arange(len(end_index)), on_station)
    period = end_index[end_of, 1] + _ranks(on_station)
    form.add_rows("rotation_ends", ("f", "a", "t"), rotation_index, 0.0, 0.0,
                  np.concatenate([rotation_col[end_index[end_of, 0], end_index[end_of, 1], period]
                                  - rotation.start, np.arange(rotation.size)]),
                  np.concatenate([rotation_end.ids[end_of], rotation.ids]),
                  np.concatenate([np.ones(len(end_of)), -np.ones(rotation.size)]))

    # substitute_presence[f, a, t]: the cohort's units stand somewhere
    form.add_rows("substitute_presence", ("f", "a", "t"), rotation_index, 0.0, 0.0,
                  np.concatenate([rotation_col[tuple(z_sub_index[:, 1:].T)] - rotation.start,
                                  np.arange(rotation.size)]),
                  np.concatenate([z_sub.ids, rotation.ids]),
                  np.concatenate([np.ones(z_sub.size), -np.ones(rotation.size)]))

    # units_definition[p, k, t]: units = sum of z and z_sub of system k at p in t
    z_units = units_col[z_index[:, 0], class_system[z_index[:, 1]], z_index[:, 2]] - units.start
    sub_units = (units_col[z_sub_index[:, 0], instance.offer_system[z_sub_index[:, 1]], z_sub_index[:, 3]]
                 - units.start)
    form.add_rows("units_definition", ("p", "k", "t"), units_index, 0.0, 0.0,
                  np.concatenate([np.arange(units.size), z_units, sub_units]),
                  np.concatenate([units.ids, z.ids, z_sub.ids]),
                  np.concatenate([np.ones(units.size), -np.ones(z.size), -np.ones(z_sub.size)]))

    # capacity[p, t]: units standing at p, fixed ones included, within its capacity
    capacity_index = np.argwhere(units_mask.any(axis=1))
    capacity_row = np.full((P, T), -1, dtype=np.int64)
    capacity_row[tuple(capacity_index.T)] = np.arange(len(capacity_index))
    fixed_occupancy = fixed_count.sum(axis=1)
    form.add_rows("capacity", ("p", "t"), capacity_index, -INF,
                  capacity[capacity_index[:, 0]] - fixed_occupancy[tuple(capacity_index.T)],
                  capacity_row[units_index[:, 0], units_index[:, 2]], units.ids, 1.0)

    # coverage terms: units[p, k, t] for every (p, k) covering (s, l), per row (s, l, t)
    def coverage_entries(row_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, column) of cover[k,p,s,l] * units[p,k,t] for the rows `row_of[s, l, t]`."""
        k, p, s, l = np.nonzero(instance.cover)
        rows, cols = [], []
        for t in range(T):
            column = units_col[p, k, t]
            row = row_of[s, l, t]
            keep = (column >= 0) & (row >= 0)
            rows.append(row[keep])
            cols.append(column[keep])
        return np.concatenate(rows), np.concatenate(cols)

    # depth[s, l, t]: filled depth levels cannot exceed the units covering (s, l) in t
    depth_index = np.argwhere(y_mask.any(axis=3))
    depth_row = np.full((S, L, T), -1, dtype=np.int64)
    depth_row[tuple(depth_index.T)] = np.arange(len(depth_index))
    cover_rows, cover_cols = coverage_entries(depth_row)
    form.add_rows("depth", ("s", "l", "t"), depth_index, -INF, fixed_units[tuple(depth_index.T)],
                  np.concatenate([depth_row[tuple(y_index[:, :3].T)], cover_rows]),
                  np.concatenate([y.ids, cover_cols]),
                  np.concatenate([np.ones(y.size), -np.ones(len(cover_cols))]))

    # requirement[s, l, t]: units covering (s, l) in t, plus any allowed shortfall, >= req
    requirement_row = np.full((S, L, T), -1, dtype=np.int64)
    requirement_row[tuple(required.T)] = np.arange(len(required))
    cover_rows, cover_cols = coverage_entries(requirement_row)
    form.add_rows("requirement", ("s", "l", "t"), required,
                  instance.requirement[required[:, 0], required[:, 1]] - fixed_units[tuple(required.T)],
                  INF, np.concatenate([cover_rows, np.arange(len(required))]),
                  np.concatenate([cover_cols, shortfall.ids]),
                  1.0)

    # move_definition[p, c, t]: move_in >= z[t] - z[t-1] (in the first period, minus the homes)
    n_moves = move_in.size
    first = move_index[:, 2] == 0
    before_col = z_col[move_index[:, 0], move_index[:, 1], np.maximum(move_index[:, 2] - 1, 0)]
    local = np.arange(n_moves)
    form.add_rows("move_definition", ("p", "c", "t"), move_index,
                  np.where(first, -homes[move_index[:, 1], move_index[:, 0]], 0.0), INF,
                  np.concatenate([local, local, local[~first]]),
                  np.concatenate([move_in.ids, z_col[tuple(move_index.T)], before_col[~first]]),
                  np.concatenate([np.ones(n_moves), -np.ones(n_moves), np.ones((~first).sum())]))

    # move_definition_sub[p, f, a, t]: move_in_sub >= z_sub[t] - z_sub[t-1]
    n_sub_moves = move_in_sub.size
    local = np.arange(n_sub_moves)
    earlier = sub_move_index.copy()
    earlier[:, 3] -= 1
    form.add_rows("move_definition_sub", ("p", "f", "a", "t"), sub_move_index, 0.0, INF,
                  np.concatenate([local, local, local]),
                  np.concatenate([move_in_sub.ids, z_sub_col[tuple(sub_move_index.T)],
                                  z_sub_col[tuple(earlier.T)]]),
                  np.concatenate([np.ones(n_sub_moves), -np.ones(n_sub_moves), np.ones(n_sub_moves)]))

    # stage objectives, as vectors over all columns
    coverage_vector = np.zeros(form.n_cols)
    coverage_vector[y.ids] = value[y_index[:, 0], y_index[:, 1], y_index[:, 3]]
    cost_vector = np.zeros(form.n_cols)
    cost_vector[rotation.ids] = instance.offer_cost[rotation_index[:, 0]]
    moves_vector = np.zeros(form.n_cols)
    moves_vector[move_in.ids] = 1.0
    moves_vector[move_in_sub.ids] = 1.0
    form.objectives = {"coverage": coverage_vector, "substitute_cost": cost_vector,
                       "moves": moves_vector}
    most_moves = int(class_size[movable].sum() * T + instance.offer_count.sum() * T)
    if instance.moves_total is not None:
        most_moves = min(most_moves, instance.moves_total)
    if instance.moves_per_period is not None:
        most_moves = min(most_moves, instance.moves_per_period * T)
    form.most_moves = most_moves
    form.cost_weight = cost_then_moves_weight(cost_vector, moves_vector, instance.offer_cost,
                                              most_moves)
    if form.cost_weight is not None:
        form.objectives["cost_then_moves"] = form.cost_weight * cost_vector + moves_vector

    # limits
    if instance.substitute_budget is not None and rotation.size:
        form.add_rows("substitute_budget", (), None, -INF, instance.substitute_budget,
                      np.zeros(rotation.size), rotation.ids, cost_vector[rotation.ids])
    move_period = np.concatenate([move_index[:, 2], sub_move_index[:, 3]])
    move_ids = np.concatenate([move_in.ids, move_in_sub.ids])
    if instance.moves_per_period is not None and len(move_ids):
        periods = np.unique(move_period)
        period_row = np.full(T, -1, dtype=np.int64)
        period_row[periods] = np.arange(len(periods))
        form.add_rows("moves_per_period", ("t",), periods, -INF, instance.moves_per_period,
                      period_row[move_period], move_ids, 1.0)
    if instance.moves_total is not None and len(move_ids):
        form.add_rows("moves_total", (), None, -INF, instance.moves_total,
                      np.zeros(len(move_ids)), move_ids, 1.0)
    if target_shortfall is not None:
        # coverage_target[t]: the period's coverage value >= target x reference coverage
        targeted = target_shortfall.index[:, 0]
        target_row = np.full(T, -1, dtype=np.int64)
        target_row[targeted] = np.arange(len(targeted))
        in_target = target_row[y_index[:, 2]] >= 0
        form.add_rows("coverage_target", ("t",), targeted, instance.target * reference[targeted], INF,
                      np.concatenate([target_row[y_index[in_target, 2]], np.arange(len(targeted))]),
                      np.concatenate([y.ids[in_target], target_shortfall.ids]),
                      np.concatenate([coverage_vector[y.ids[in_target]], np.ones(len(targeted))]))
    if form.cost_weight is not None:
        add_coverage_cost_moves(form, form.cost_weight * most_substitute_cost(instance) + most_moves)
    return form


def posture_solution(form: Formulation, where: np.ndarray,
                     substitutes: list[tuple[int, list[int], list[int]]] = ()) -> np.ndarray:
    """Column values of a posture: `where[u, t]` is the position of organic unit u in t (its
    home when fixed, ignored when away); each substitute unit is (offer, periods on station,
    positions). HiGHS starts from such a plan (the greedy one, or a previous plan)."""
    instance = form.instance
    P, T, K = len(instance.position_ids), instance.T, len(instance.systems)
    C, F = len(form.classes), len(instance.offer_ids)
    z = np.zeros((P, C, T))
    movable, fixed = np.zeros((P, K, T)), np.zeros((P, K, T))
    homes = np.zeros((P, C))
    for c, unit_class in enumerate(form.classes):
        for u in unit_class.members:
            homes[instance.unit_home[u], c] += 1
            for t in np.nonzero(instance.present[u])[0]:
                p = instance.unit_home[u] if unit_class.fixed else where[u, t]
                (fixed if unit_class.fixed else movable)[p, unit_class.system, t] += 1
                z[p, c, t] += 0 if unit_class.fixed else 1
    rotation, z_sub = np.zeros((F, T, T)), np.zeros((P, F, T, T))
    for f, periods, positions in substitutes:
        arrival = periods[0]
        for t, p in zip(periods, positions):
            rotation[f, arrival, t] += 1
            z_sub[p, f, arrival, t] += 1
            movable[p, instance.offer_system[f], t] += 1
    solution = np.zeros(form.n_cols)
    ending = rotation - np.concatenate([rotation[:, :, 1:], np.zeros((F, T, 1))], axis=2)
    for name, table in (("z", z), ("units", movable), ("rotation", rotation), ("z_sub", z_sub),
                        ("rotation_end", ending)):
        block = form.columns[name]
        solution[block.ids] = table[tuple(block.index.T)]
    covering = covering_units(instance, movable + fixed)
    block = form.columns["y"]
    s, l, t, j = block.index.T
    solution[block.ids] = (j < covering[s, l, t]).astype(float)
    block = form.columns["move_in"]
    p, c, t = block.index.T
    before = np.where(t == 0, homes[p, c], z[p, c, np.maximum(t - 1, 0)])
    solution[block.ids] = np.maximum(z[p, c, t] - before, 0.0)
    block = form.columns["move_in_sub"]
    p, f, a, t = block.index.T
    solution[block.ids] = np.maximum(z_sub[p, f, a, t] - z_sub[p, f, a, t - 1], 0.0)
    return solution


def plan_solution(form: Formulation, posture) -> np.ndarray:
    """Column values of a posture table (period, unit, position), substitutes included."""
    instance = form.instance
    period = {label: t for t, label in enumerate(instance.periods)}
    position = {p: i for i, p in enumerate(instance.position_ids)}
    unit = {u: i for i, u in enumerate(instance.unit_ids)}
    offer_of = instance.substitute_offer
    where = np.repeat(instance.unit_home[:, None], instance.T, axis=1)
    stays: dict[str, list[tuple[int, int]]] = {}
    for row in posture.itertuples():
        if row.unit in unit:
            where[unit[row.unit], period[row.period]] = position[row.position]
        else:
            stays.setdefault(row.unit, []).append((period[row.period], position[row.position]))
    substitutes = [(offer_of[name], [t for t, _ in sorted(stay)], [p for _, p in sorted(stay)])
                   for name, stay in stays.items()]
    return posture_solution(form, where, substitutes)


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


def coverage_first_weight(coverage: np.ndarray, most_tie_break: float) -> float | None:
    """Weight L such that -L x coverage + `cost_then_moves` is least at the most coverage,
    then the least cost, then the fewest moves.

    When every coverage value lies on a grid 1/D (`common_grid`), two plans' coverages (depth
    levels filled, as at any optimum) differ by at least 1/D, so weighting coverage by
    D x (`most_tie_break` + 1) puts any coverage difference above every difference in cost
    and moves. None when no such grid exists or the weights would get too large for double
    precision; the stages then run one after the other.
    """
    values = coverage[coverage != 0]
    grid = common_grid(values, finest=COVERAGE_GRID_FINEST)
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


def add_coverage_cost_moves(form: Formulation, most_tie_break: float) -> None:
    """The one-stage objective `coverage_cost_moves` (to minimize), when it is exact and the
    model is small enough (`ONE_STAGE_MAX_NONZEROS`)."""
    if form.nonzeros > ONE_STAGE_MAX_NONZEROS:
        return
    weight = coverage_first_weight(form.objectives["coverage"], most_tie_break)
    if weight is None or "cost_then_moves" not in form.objectives:
        return
    step = common_grid(form.objectives["cost_then_moves"], finest=COVERAGE_GRID_FINEST)
    if step is not None:
        form.coverage_weight, form.most_tie_break, form.tie_break_step = weight, most_tie_break, 1 / step
        form.objectives["coverage_cost_moves"] = (form.objectives["cost_then_moves"]
                                                  - weight * form.objectives["coverage"])


def build_model(instance: Instance, objective: str | None = None):
    """The Pyomo model of an instance, to extend before `layerdef.solve(inst, model=...)`.

    Variables and constraints carry the names of `models/coverage.md` (`z`, `z_sub`,
    `rotation`, `units`, `y`, ..., `class_presence`, `depth`, `requirement`, ...); the
    stage objectives are `maximize_coverage`, `minimize_cost` and `minimize_moves`, with
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
    for name, vector in form.objectives.items():
        nonzero = np.nonzero(vector)[0]
        model.add_component(name, pyo.Expression(expr=LinearExpression(
            constant=0, linear_coefs=vector[nonzero].tolist(),
            linear_vars=[columns[j] for j in nonzero])))
    model.maximize_coverage = pyo.Objective(expr=model.coverage, sense=pyo.maximize)
    model.minimize_cost = pyo.Objective(expr=model.substitute_cost, sense=pyo.minimize)
    model.minimize_moves = pyo.Objective(expr=model.moves, sense=pyo.minimize)
    stages = [model.maximize_coverage, model.minimize_cost, model.minimize_moves]
    for name in ("cost_then_moves", "coverage_cost_moves"):
        if name in form.objectives:
            objective = pyo.Objective(expr=getattr(model, name), sense=pyo.minimize)
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
