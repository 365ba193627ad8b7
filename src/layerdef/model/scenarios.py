"""The hedged model: one copy of the deterministic formulation per return-date scenario,
linked by non-anticipativity (models/scenarios.md).

The copies are built on the same classes of interchangeable units (formed over every
scenario's presence, so that class c means the same units in every copy) and stacked
block-diagonally; in scenarios whose history (who is present in every period so far) is the
same up to t, the decisions of t are the same, and a substitute rotation starting in t is the
same wherever the histories agree up to t - lead. Objective: expected coverage (or the worst
scenario's), then expected cost, then expected moves."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from layerdef.core.instance import Instance
from layerdef.model.blocks import defines, hedged_objective, hedged_rule
from layerdef.model.formulation import (
    DECISION_BLOCKS,
    Block,
    Formulation,
    UnitClass,
    classes_in_worlds,
    cost_then_moves_weight,
    define_coverage_cost_moves,
    formulate,
    most_substitute_cost,
)

INF = float("inf")


def scenario_classes(instance: Instance) -> list[list[UnitClass]]:
    """Per scenario, the classes of units interchangeable in every scenario, in one order."""
    return classes_in_worlds(instance, instance.scenario_present)


@dataclass
class Hedged:
    """The stacked model: `form` for HiGHS, and each scenario's own formulation and offset."""

    form: Formulation
    scenarios: list[Instance]
    forms: list[Formulation]
    offsets: list[int]

    def part(self, solution: np.ndarray, n: int) -> np.ndarray:
        return solution[self.offsets[n]:self.offsets[n] + self.forms[n].n_cols]


def formulate_hedged(instance: Instance, risk: str = "expected") -> Hedged:
    """The stacked model of every scenario, linked; `risk` is `expected` or `worst`."""
    worlds = [instance.in_scenario(name) for name in instance.scenario_ids]
    forms = [formulate(world, "coverage", classes=classes)
             for world, classes in zip(worlds, scenario_classes(instance))]
    hedged = _stacked(instance, worlds, forms)
    define_nonanticipativity(hedged, instance)
    if risk == "worst":
        define_worst_coverage(hedged)
        define_worst_scenario(hedged)
    define_expected_objectives(hedged, instance, risk)
    # the worst coverage is no column sum on a grid: its stages stay apart
    if risk == "expected" and hedged.form.cost_weight is not None:
        define_coverage_cost_moves(hedged.form, hedged.form.cost_weight * most_substitute_cost(instance)
                                   + hedged.form.most_moves)
    return hedged


def _stacked(instance: Instance, worlds: list[Instance], forms: list[Formulation]) -> Hedged:
    """The scenarios' formulations side by side: block `name` of scenario n is `n:name`."""
    stacked = Formulation(instance, "coverage", classes=forms[0].classes)
    offsets = []
    for n, form in enumerate(forms):
        offsets.append(stacked.n_cols)
        for name, block in form.columns.items():
            stacked.columns[f"{n}:{name}"] = Block(name, block.start + stacked.n_cols, block.index, block.sets)
        stacked.col_lower += form.col_lower
        stacked.col_upper += form.col_upper
        stacked.col_integer += form.col_integer
        stacked.row_lower += form.row_lower
        stacked.row_upper += form.row_upper
        stacked.entries += [(row + stacked.n_rows, col + stacked.n_cols, value)
                            for row, col, value in form.entries]
        stacked.n_cols += form.n_cols
        stacked.n_rows += form.n_rows
    return Hedged(stacked, worlds, forms, offsets)


@defines(hedged_objective("coverage", "$\\sum_\\sigma \\pi_\\sigma\\, \\text{coverage}_\\sigma$ (or $\\eta$)",
                          "expected (or worst) coverage"),
         hedged_objective("substitute_cost", "$\\sum_\\sigma \\pi_\\sigma\\, \\text{cost}_\\sigma$",
                          "then expected substitute cost"),
         hedged_objective("moves", "$\\sum_\\sigma \\pi_\\sigma\\, \\text{moves}_\\sigma$",
                          "then expected moves"),
         hedged_objective("cost_then_moves", "$W \\cdot \\text{cost} + \\text{moves}$",
                          "expected cost, then expected moves, in one stage when exact (below)"),
         hedged_objective("turns", "$\\sum_\\sigma \\pi_\\sigma\\, \\text{turns}_\\sigma$",
                          "then expected turns, where units face headings"))
def define_expected_objectives(hedged: Hedged, instance: Instance, risk: str) -> None:
    """Expected values of the scenarios' objectives (coverage: the worst scenario's, $\\eta$
    alone, under `risk="worst"`: expected coverage is then no tie-break); expected cost, then
    expected moves, in one exact stage when every probability x offer cost lies on a grid
    (`common_grid`): expected costs then differ by at least its step, and expected moves never
    exceed the most moves of a scenario."""
    form, probability = hedged.form, instance.scenario_probability
    names = ["coverage", "substitute_cost", "moves"] + (["turns"] if "turns" in hedged.forms[0].objectives else [])
    for name in names:
        form.set_objective(name, np.concatenate(
            [p * part.objectives[name] for p, part in zip(probability, hedged.forms)]
            + [np.zeros(form.n_cols - sum(part.n_cols for part in hedged.forms))]))
    if risk == "worst":
        worst = np.zeros(form.n_cols)
        worst[form.columns["worst_coverage"].start] = 1.0
        form.set_objective("coverage", worst)
    most_moves = max(part.most_moves for part in hedged.forms)
    weight = cost_then_moves_weight(form.objectives["substitute_cost"], form.objectives["moves"],
                                    np.outer(probability, instance.offer_cost), most_moves)
    if weight is not None:
        form.cost_weight, form.most_moves = weight, most_moves
        form.set_objective("cost_then_moves", weight * form.objectives["substitute_cost"]
                           + form.objectives["moves"])


def _columns(hedged: Hedged, n: int, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Dense stacked-column ids of scenario n's block (-1 where absent)."""
    table = np.full(shape, -1, dtype=np.int64)
    block = hedged.forms[n].columns[name]
    if block.size:
        table[tuple(block.index.T)] = block.ids + hedged.offsets[n]
    return table


@defines(
    hedged_rule("nonanticipativity",
                "$z^\\sigma_{p,c,t} = z^{\\sigma'}_{p,c,t}$, $x^\\sigma_{p,f,a,t} = x^{\\sigma'}_{p,f,a,t}$ ($a \\le t$), $r^\\sigma_{f,a,t} = r^{\\sigma'}_{f,a,t}$ ($a < t$), and the headings $\\phi^\\sigma = \\phi^{\\sigma'}$ in $t$, whenever $h_\\sigma(t) = h_{\\sigma'}(t)$ (the history up to $t + \\nu$ with a notice of $\\nu$ periods, `scenario_notice`)",
                "decisions of period $t$ (where units stand and which way they face, stays and stops of substitutes) are the same in scenarios that look alike up to $t$; moves and turns follow"),
    hedged_rule("nonanticipativity",
                "$r^\\sigma_{f,t,t} = r^{\\sigma'}_{f,t,t}$ whenever $h_\\sigma(t-\\ell_f) = h_{\\sigma'}(t-\\ell_f)$",
                "a rotation starting in $t$ is requested with what is known at $t - \\ell_f$ (before the horizon: the same everywhere)"),
    hedged_rule("nonanticipativity",
                "$y^\\sigma_{s,l,t,j} = y^{\\sigma'}_{s,l,t,j}$, $u^\\sigma_{p,k,t} = u^{\\sigma'}_{p,k,t}$, $\\mu^\\sigma_{p,c,t} = \\mu^{\\sigma'}_{p,c,t}$, $\\nu^\\sigma_{p,f,a,t} = \\nu^{\\sigma'}_{p,f,a,t}$ whenever $h_\\sigma(t) = h_{\\sigma'}(t)$",
                "(`FOLLOWING`) what follows from the decisions up to $t$ (depth levels, unit counts, moves) is tied too: in such scenarios the covering counts and the move bounds of period $t$ are the same, so some optimal plan has these equal and nothing is lost (tested against the model without them, both risks). HiGHS's presolve then folds the copies into one: the 2025 replay's presolved model 14,026 -> 10,543 rows, its LP by dual simplex 11 -> 5.3 s, its hedged stage 145-152 s -> 77 s"))
def define_nonanticipativity(hedged: Hedged, instance: Instance) -> None:
    """Equal decisions wherever the histories agree, and equal `FOLLOWING` columns."""
    present = instance.scenario_present  # (N, U, T)
    N, T = present.shape[0], instance.T
    P, C, F = len(instance.position_ids), len(hedged.forms[0].classes), len(instance.offer_ids)
    z = [_columns(hedged, n, "z", (P, C, T)) for n in range(N)]
    rotation = [_columns(hedged, n, "rotation", (F, T, T)) for n in range(N)]
    z_sub = [_columns(hedged, n, "z_sub", (P, F, T, T)) for n in range(N)]
    H = instance.H
    facing = ([_columns(hedged, n, "facing", (P, H, C, T)) for n in range(N)]
              if "facing" in hedged.forms[0].columns else None)
    facing_sub = ([_columns(hedged, n, "facing_sub", (P, H, F, T, T)) for n in range(N)]
                  if "facing_sub" in hedged.forms[0].columns else None)
    pairs: list[tuple[np.ndarray, np.ndarray]] = []

    def groups(until: int) -> list[list[int]]:
        """Scenarios with the same presence of every unit in periods 0..until (and as far
        ahead as the notice reaches)."""
        found: dict[bytes, list[int]] = {}
        known = max(0, until + 1 + instance.scenario_notice)
        for n in range(N):
            found.setdefault(present[n, :, :known].tobytes(), []).append(n)
        return [members for members in found.values() if len(members) > 1]

    for t in range(T):
        for members in groups(t):
            lead, other = members[0], members[1:]
            for n in other:
                pairs.append((z[lead][:, :, t].ravel(), z[n][:, :, t].ravel()))
                pairs.append((rotation[lead][:, :t, t].ravel(), rotation[n][:, :t, t].ravel()))
                pairs.append((z_sub[lead][:, :, :t + 1, t].ravel(), z_sub[n][:, :, :t + 1, t].ravel()))
                if facing is not None:  # which way units face is decided like where they stand
                    pairs.append((facing[lead][..., t].ravel(), facing[n][..., t].ravel()))
                    pairs.append((facing_sub[lead][:, :, :, :t + 1, t].ravel(),
                                  facing_sub[n][:, :, :, :t + 1, t].ravel()))
                pairs += _same_period_pairs(hedged, lead, n, t)
        for f in range(F):
            for members in groups(t - int(instance.offer_lead[f])):
                for n in members[1:]:
                    pairs.append((rotation[members[0]][f, t, t:t + 1], rotation[n][f, t, t:t + 1]))
    if not pairs:
        return
    left = np.concatenate([a for a, _ in pairs])
    right = np.concatenate([b for _, b in pairs])
    keep = (left >= 0) & (right >= 0)
    left, right = left[keep], right[keep]
    form = hedged.form
    local = np.arange(len(left))
    form.add_rows("nonanticipativity", ("i",), local, 0.0, 0.0, np.concatenate([local, local]),
                  np.concatenate([left, right]), np.concatenate([np.ones(len(left)), -np.ones(len(left))]))


@defines(hedged_rule("kept_decisions",
                     "$z_{p,c,t} = \\bar z_{p,c,t}$, $\\phi_{p,h,c,t} = \\bar\\phi_{p,h,c,t}$, $x_{p,f,a,t} = \\bar x_{p,f,a,t}$, $r_{f,a,t} = \\bar r_{f,a,t}$ for $t < A$, and $r_{f,a,a} = \\bar r_{f,a,a}$ for $a - \\ell_f < A$",
                     "a reaction to a withdrawal announced in $A$ (`layerdef stress`) keeps the plan's decisions before $A$, and every rotation requested before $A$: the deterministic model of the withdrawn world with the plan's trunk fixed, as the hedged model's non-anticipativity would tie it"))
def define_kept_decisions(form: Formulation, plan: np.ndarray, until: int) -> None:
    """Fix the decision columns (`DECISION_BLOCKS`) of the periods before `until` at the
    plan's column values, and the arrivals requested before it."""
    lead = form.instance.offer_lead
    kept_ids = []
    for block in form.columns.values():
        if block.name not in DECISION_BLOCKS or not block.size:
            continue
        period = block.index[:, block.sets.index("t")]
        kept = period < until
        if block.name == "rotation":
            offer, arrival = block.index[:, 0], block.index[:, 1]
            kept |= (arrival == period) & (arrival - lead[offer] < until)
        kept_ids.append(block.ids[kept])
    ids = np.concatenate(kept_ids) if kept_ids else np.zeros(0, np.int64)
    form.fix("kept_decisions", ids, plan[ids])


#: columns that follow from the decisions up to their period (depth levels, unit counts, moves):
#: some optimal plan has them equal wherever histories are, so tying them loses nothing
FOLLOWING = ("units", "y", "move_in", "move_in_sub")


def _same_period_pairs(hedged: Hedged, lead: int, other: int, t: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(lead's, other's) column ids of the FOLLOWING blocks in period t with equal indices."""
    pairs = []
    for name in FOLLOWING:
        blocks = [hedged.forms[n].columns[name] for n in (lead, other)]
        if not all(block.size for block in blocks):
            continue
        position = blocks[0].sets.index("t")
        dims = np.maximum(blocks[0].index.max(axis=0), blocks[1].index.max(axis=0)) + 1
        keys, ids = [], []
        for n, block in zip((lead, other), blocks):
            now = block.index[:, position] == t
            keys.append(np.ravel_multi_index(tuple(block.index[now].T), dims))
            ids.append(block.ids[now] + hedged.offsets[n])
        _, left, right = np.intersect1d(keys[0], keys[1], return_indices=True)
        pairs.append((ids[0][left], ids[1][right]))
    return pairs


def _per_scenario(hedged: Hedged, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, value) entries of one row per scenario n holding n's objective `name`."""
    rows, cols, values = [], [], []
    for n, part in enumerate(hedged.forms):
        vector = part.objectives[name]
        nonzero = np.nonzero(vector)[0]
        rows.append(np.full(len(nonzero), n))
        cols.append(nonzero + hedged.offsets[n])
        values.append(vector[nonzero])
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(values)


@defines(hedged_rule("worst_coverage", "$\\eta$", "the worst scenario's coverage (free)"))
def define_worst_coverage(hedged: Hedged) -> None:
    hedged.form.add_columns("worst_coverage", (), None, -INF, INF, False)


@defines(hedged_rule("worst_scenario", "$\\eta \\le \\sum_{s,l,t,j} v\\, y^\\sigma$ for every $\\sigma$",
             "`risk=\"worst\"`: $\\eta$ is the worst scenario's coverage"))
def define_worst_scenario(hedged: Hedged) -> None:
    form = hedged.form
    eta = form.columns["worst_coverage"]
    rows, cols, values = _per_scenario(hedged, "coverage")
    scenarios = np.arange(len(hedged.forms))
    form.add_rows("worst_scenario", ("n",), scenarios, -INF, 0.0,
                  np.concatenate([scenarios, rows]), np.concatenate([np.full(len(scenarios), eta.start), cols]),
                  np.concatenate([np.ones(len(scenarios)), -values]))
