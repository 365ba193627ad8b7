"""An exhaustive enumerator of per-unit postures for tiny instances, written without model.py.

Every organic unit picks a position in each period it is present (its home if fixed), and a
heading where its system faces one; every substitute unit picks no rotation or one (arrival,
length, positions, headings). Each joint choice is scored with plain numpy (a unit that moved
in covers with 1 - relocation_days / period_days, filling its depth level by that fraction)
and filtered by capacity, requirements (against every launch area threatening the layer),
limits and (for `min-cost`) the per-period coverage target; the lexicographic optimum
(coverage, then cost, then moves, then turns, or cost then moves then turns) is returned.
Vectorized over joint choices, so 10^6 postures take a second.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np


@dataclass
class Agent:
    system: int
    owner: int
    options: np.ndarray  # (O, T) position or -1 when not in theater
    moves: np.ndarray  # (O, T) 1 where the option moves the unit in t
    cost: np.ndarray  # (O,)
    headings: np.ndarray | None = None  # (O, T) heading index (0 where none is chosen)
    turns: np.ndarray | None = None  # (O, T) 1 where the unit turns in t


def _turning(inst, k: int) -> bool:
    """Units of system k choose a heading: a sector under 360 degrees, launch areas and several
    headings (written from DESIGN.md, not from the model)."""
    return bool(inst.threat_ids) and inst.system_sector[k] < 360 and inst.headings > 1


def _with_headings(rows: list, moves: list, inst, k: int, present: list[int], start: tuple | None):
    """Every option of positions `rows` crossed with every heading sequence over `present`;
    `start` is (position, heading) before the first present period (a unit at home), or None."""
    H = inst.headings if _turning(inst, k) else 1
    out_rows, out_moves, out_headings, out_turns = [], [], [], []
    T = inst.T
    for row, move in zip(rows, moves):
        for sequence in itertools.product(range(H), repeat=len(present)):
            heading = np.zeros(T, dtype=int)
            heading[present] = sequence
            turn = np.zeros(T, dtype=int)
            for i, t in enumerate(present):
                if i == 0:
                    before = start if t == 0 else None
                else:
                    before = (row[present[i - 1]], heading[present[i - 1]]) if present[i - 1] == t - 1 else None
                if before is not None and before[0] == row[t] and before[1] != heading[t] and H > 1:
                    turn[t] = 1
            out_rows.append(row)
            out_moves.append(move)
            out_headings.append(heading)
            out_turns.append(turn)
    return out_rows, out_moves, out_headings, out_turns


def organic_agent(inst, u: int) -> Agent:
    T = inst.T
    allowed = ([int(inst.unit_home[u])] if inst.unit_fixed[u]
               else [p for p in range(len(inst.position_ids)) if inst.admits[p, inst.unit_owner[u]]])
    present = [t for t in range(T) if inst.present[u, t]]
    options, moves = [], []
    for choice in itertools.product(allowed, repeat=len(present)):
        row = np.full(T, -1)
        row[present] = choice
        move = np.zeros(T, dtype=int)
        for t in present:
            before = int(inst.unit_home[u]) if t == 0 else row[t - 1]
            if before >= 0 and before != row[t] and (t == 0 or inst.present[u, t - 1]):
                move[t] = 1
        options.append(row)
        moves.append(move)
    k = int(inst.unit_system[u])
    home = (int(inst.unit_home[u]), int(inst.unit_heading[u]))
    if inst.unit_fixed[u]:  # at home, facing its home heading
        headings = [np.where(np.array(r) >= 0, home[1], 0) for r in options]
        turns = [np.zeros(T, dtype=int) for _ in options]
    else:
        options, moves, headings, turns = _with_headings(options, moves, inst, k, present, home)
    return Agent(k, int(inst.unit_owner[u]), np.array(options).reshape(-1, T),
                 np.array(moves).reshape(-1, T), np.zeros(len(options)),
                 np.array(headings).reshape(-1, T), np.array(turns).reshape(-1, T))


def substitute_agent(inst, f: int) -> Agent:
    """One substitute unit of offer f: no rotation, or one rotation with its positions."""
    T = inst.T
    allowed = [p for p in range(len(inst.position_ids)) if inst.admits[p, inst.offer_owner[f]]]
    options, moves, cost = [np.full(T, -1)], [np.zeros(T, dtype=int)], [0.0]
    headings, turns = [np.zeros(T, dtype=int)], [np.zeros(T, dtype=int)]
    k = int(inst.offer_system[f])
    for arrival in range(int(inst.offer_earliest[f]), T):
        shortest = min(int(inst.offer_min_periods[f]), T - arrival)
        for length in range(shortest, min(int(inst.offer_max_periods[f]), T - arrival) + 1):
            for choice in itertools.product(allowed, repeat=length):
                row = np.full(T, -1)
                row[arrival:arrival + length] = choice
                move = np.zeros(T, dtype=int)
                for t in range(arrival + 1, arrival + length):
                    move[t] = int(row[t] != row[t - 1])
                rows, row_moves, row_headings, row_turns = _with_headings(
                    [row], [move], inst, k, list(range(arrival, arrival + length)), None)
                options += rows
                moves += row_moves
                headings += row_headings
                turns += row_turns
                cost += [length * float(inst.offer_cost[f])] * len(rows)
    return Agent(k, int(inst.offer_owner[f]), np.array(options), np.array(moves), np.array(cost),
                 np.array(headings), np.array(turns))


def period_values(inst, positions: np.ndarray, systems: list[int], headings: np.ndarray | None = None,
                  moved: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For joint choices (N, A) of positions (and headings, and whether each unit moved in) in
    one period: coverage value (N,), units covering each (site, layer, launch area) (N, S, L, G)
    and occupancy (N, P)."""
    cells, units, occupancy = period_cells(inst, positions, systems, headings, moved)
    return cells.sum(axis=(1, 2, 3)), units, occupancy


def period_cells(inst, positions: np.ndarray, systems: list[int], headings: np.ndarray | None = None,
                 moved: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As `period_values`, with the value per site, layer (threat class) and launch area
    (N, S, L or C, G)."""
    P, K, H = len(inst.position_ids), len(inst.systems), inst.headings
    headings = np.zeros_like(positions) if headings is None else headings
    moved = np.zeros_like(positions) if moved is None else moved
    counts = np.zeros((positions.shape[0], P, K, H))
    occupancy = np.zeros((positions.shape[0], P), dtype=np.int64)
    for a, k in enumerate(systems):
        standing = positions[:, a] >= 0
        rows = np.nonzero(standing)[0]
        slowed = min(max(inst.system_relocation_days[k] / inst.period_days, 0.0), 1.0)
        weight = 1.0 - slowed * moved[standing, a]
        np.add.at(counts, (rows, positions[standing, a], k, headings[standing, a]), weight)
        np.add.at(occupancy, (rows, positions[standing, a]), 1)
    units = np.einsum("npkh,kphslg->nslg", counts, inst.cover.astype(float))
    if inst.value == "kill-probability":
        by_system = np.einsum("npkh,kphslg->nkslg", counts, inst.cover.astype(float))
        return _defeat_values(inst, by_system), units, occupancy
    J = len(inst.depth_weights)
    levels = np.concatenate([[0.0], np.cumsum(inst.depth_weights)])
    clipped = np.minimum(units, J)
    whole = np.floor(clipped + 1e-9).astype(int)
    filled = levels[whole] + (clipped - whole).clip(0) * np.concatenate([inst.depth_weights, [0.0]])[np.minimum(whole, J)]
    shares = inst.threat_share if inst.threat_ids else np.ones(1)
    threatens = (inst.threat_layers if inst.threat_ids else np.ones((1, len(inst.layers)), bool)).T  # (L, G)
    weight = (inst.site_weight[:, None, None] * inst.layer_weight[None, :, None]
              * shares[None, None, :] * threatens[None])
    return weight[None] * filled, units, occupancy


def _defeat_values(inst, by_system: np.ndarray) -> np.ndarray:
    """(N, S, C, G) value with kill probabilities, the product itself: for every site, threat
    class and launch area, 1 - prod (1 - pk)^n over the systems and the class's layers the
    area threatens, times site weight, class weight and share."""
    shares = inst.threat_share if inst.threat_ids else np.ones(1)
    threatens = inst.threat_layers if inst.threat_ids else np.ones((1, len(inst.layers)), bool)  # (G, L)
    total = np.zeros((by_system.shape[0], by_system.shape[2], len(inst.class_ids), len(shares)))
    for c in range(len(inst.class_ids)):
        for g in range(len(shares)):
            layers = [l for l in range(len(inst.layers)) if inst.class_layers[c, l] and threatens[g, l]]
            if not layers:
                continue
            leak = np.ones(by_system.shape[:1] + by_system.shape[2:3])  # (N, S)
            for k in range(len(inst.systems)):
                for l in layers:
                    pk = inst.system_pk[k, l]
                    if not np.isnan(pk):
                        leak = leak * (1.0 - pk) ** by_system[:, k, :, l, g]
            total[:, :, c, g] = (1.0 - leak) * inst.site_weight[None, :] * inst.class_weight[c] * shares[g]
    return total


def brute_force(inst, objective: str = "coverage") -> tuple[float, float, int] | None:
    """(coverage, substitute cost, moves) of the lexicographic optimum, or None if infeasible."""
    found = brute_force_turns(inst, objective)
    return None if found is None else found[:3]


def brute_force_turns(inst, objective: str = "coverage") -> tuple[float, float, int, int] | None:
    """(coverage, substitute cost, moves, turns) of the lexicographic optimum, or None."""
    agents, choice, coverage, cost, moves = feasible_choices(inst, objective)
    if not len(choice):
        return None
    turns = sum(agent.turns[choice[:, a]].sum(axis=1) for a, agent in enumerate(agents))
    candidates = np.arange(len(choice))
    if objective == "coverage":
        best = coverage[candidates].max()
        candidates = candidates[coverage[candidates] >= best - 1e-7]
    cheapest = cost[candidates].min()
    candidates = candidates[cost[candidates] <= cheapest + 1e-7]
    fewest = moves[candidates].min()
    candidates = candidates[moves[candidates] == fewest]
    least = turns[candidates].min()
    candidates = candidates[turns[candidates] == least]
    return float(coverage[candidates].max()), float(cheapest), int(fewest), int(least)


def feasible_choices(inst, objective: str = "coverage"):
    """(agents, joint choices (N, A) that meet every requirement and limit, and their
    coverage, cost and moves)."""
    agents = [organic_agent(inst, u) for u in range(len(inst.unit_ids))]
    for f in range(len(inst.offer_ids)):
        agents += [substitute_agent(inst, f) for _ in range(int(inst.offer_count[f]))]
    grids = np.meshgrid(*[np.arange(len(a.options)) for a in agents], indexing="ij")
    choice = np.stack([g.ravel() for g in grids], axis=1)  # (N, A)
    # identical substitute units of one offer: keep one order of each pair of choices
    start = len(inst.unit_ids)
    for f in range(len(inst.offer_ids)):
        for a in range(start, start + int(inst.offer_count[f]) - 1):
            choice = choice[choice[:, a] <= choice[:, a + 1]]
        start += int(inst.offer_count[f])
    N, T = choice.shape[0], inst.T
    feasible = np.ones(N, dtype=bool)
    coverage = np.zeros(N)
    moves_by_period = np.zeros((N, T), dtype=int)
    cost = np.zeros(N)
    systems = [a.system for a in agents]
    reference = reference_cells(inst)
    for a, agent in enumerate(agents):
        moves_by_period += agent.moves[choice[:, a]]
        cost += agent.cost[choice[:, a]]
    threatens = (inst.threat_layers if inst.threat_ids else np.ones((1, len(inst.layers)), bool)).T
    required = inst.requirement[:, :, None] * threatens[None]  # (S, L, G)
    turns_by_period = np.zeros((N, T), dtype=int)
    for a, agent in enumerate(agents):
        turns_by_period += agent.turns[choice[:, a]]
    for t in range(T):
        distinct, inverse = _distinct_postures(agents, choice, t)
        cells, units, occupancy = period_cells(inst, distinct[:, 0], systems, distinct[:, 1], distinct[:, 2])
        value = cells.sum(axis=(1, 2, 3))
        meets = (occupancy <= inst.capacity[None, :]).all(axis=1)
        meets &= (units >= required[None] - 1e-9).all(axis=(1, 2, 3))
        if objective == "min-cost":
            if inst.target_scope == "site":
                meets &= (cells >= inst.target * reference - 1e-9).all(axis=(1, 2, 3))
            else:
                meets &= value >= inst.target * reference.sum() - 1e-9
        coverage += value[inverse]
        feasible &= meets[inverse]
    if inst.substitute_budget is not None:
        feasible &= cost <= inst.substitute_budget + 1e-9
    if inst.moves_per_period is not None:
        feasible &= (moves_by_period <= inst.moves_per_period).all(axis=1)
    moves = moves_by_period.sum(axis=1)
    if inst.moves_total is not None:
        feasible &= moves <= inst.moves_total
    if inst.turns_per_period is not None:
        feasible &= (turns_by_period <= inst.turns_per_period).all(axis=1)
    if inst.turns_total is not None:
        feasible &= turns_by_period.sum(axis=1) <= inst.turns_total
    return agents, choice[feasible], coverage[feasible], cost[feasible], moves[feasible]


def _distinct_postures(agents, choice: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (position, heading, moved in) of every agent in period t among the joint
    choices, (n, 3, A), and which of them each choice has: each posture is then valued once."""
    key, radix, states = np.zeros(len(choice), dtype=np.int64), [], []
    for a, agent in enumerate(agents):
        state = np.column_stack([agent.options[:, t], agent.headings[:, t], agent.moves[:, t]])
        values, of_option = np.unique(state, axis=0, return_inverse=True)
        radix.append(int(np.prod([len(v) for v in states], dtype=np.int64)))
        states.append(values)
        key += of_option.ravel()[choice[:, a]] * radix[-1]
    assert np.prod([float(len(v)) for v in states]) < 2.0 ** 62, "too many postures to number"
    keys, inverse = np.unique(key, return_inverse=True)
    distinct = np.zeros((len(keys), 3, len(agents)), dtype=np.int64)
    for a, values in enumerate(states):
        distinct[:, :, a] = values[(keys // radix[a]) % len(values)]
    return distinct, inverse.ravel()


def reference_cells(inst) -> np.ndarray:
    """(S, L or C, G) coverage of every unit at home, none away (the same in every period)."""
    homes = np.tile(inst.unit_home[None, :], (1, 1))
    cells, _, _ = period_cells(inst, homes, [int(k) for k in inst.unit_system],
                               inst.unit_heading[None, :].astype(int))
    return cells[0]


def brute_force_hedged(inst, risk: str = "expected", with_turns: bool = False) -> tuple | None:
    """(expected or worst coverage, expected cost, expected moves) of the lexicographic optimum
    over per-unit plans, one per scenario, that decide with what is known: where every unit and
    substitute stands in t is the same in scenarios whose presence is the same through t, and
    the rotations arriving in t are the same where it is the same through t - lead. Each
    scenario's feasible plans are enumerated; the tree of histories is then searched bottom up,
    keeping the best plans of a subtree for each set of decisions it shares with its siblings.
    The worst scenario's coverage: the highest level every scenario can reach at once (by
    bisection), then the expected cost and moves of plans that reach it everywhere. Where units
    face headings the headings are decided alike too, and expected turns come last
    (`with_turns` returns them as a fourth figure)."""
    plans = []
    for name in inst.scenario_ids:
        plans.append(feasible_choices(inst.in_scenario(name)))
        if not len(plans[-1][1]):
            return None
    if risk == "expected":
        found = _best_joint_plan(inst, plans, np.asarray(inst.scenario_probability, float))
        return found if found is None or with_turns else found[:3]
    levels = np.unique(np.round(np.concatenate([plan[2] for plan in plans]), 9))
    best, low, high = None, 0, len(levels) - 1
    while low <= high:  # the plans reaching a level shrink as it rises
        middle = (low + high) // 2
        found = _best_joint_plan(inst, plans, np.zeros(len(plans)), levels[middle])
        if found is None:
            high = middle - 1
        else:
            best, low = (float(levels[middle]), *found[1:]), middle + 1
    return best if best is None or with_turns else best[:3]


def _best_joint_plan(inst, plans, weight: np.ndarray, level: float = -np.inf):
    """(sum of weight x coverage, expected cost, expected moves) of the best non-anticipative
    joint plan among scenario plans whose coverage reaches `level`, or None."""
    tables = []
    for n, (agents, choice, coverage, cost, moves) in enumerate(plans):
        keep = coverage >= level - 1e-9
        p = float(inst.scenario_probability[n])
        turns = sum(agent.turns[choice[:, a]].sum(axis=1) for a, agent in enumerate(agents))
        tables.append((agents, choice[keep],
                       np.stack([weight[n] * coverage, -p * cost, -p * moves, -p * turns], axis=1)[keep]))
    if not all(len(choice) for _, choice, _ in tables):
        return None
    best = _subtree(inst, tables, list(range(len(tables))), None)
    if not best:
        return None  # every scenario has plans, but none decide alike where they must
    value = max(best.values(), key=lambda entry: _rounded(entry[2]))[2]
    return float(value[0]), float(-value[1]), float(-value[2]), float(-value[3])


def _rounded(value: np.ndarray) -> tuple[float, ...]:
    return tuple(np.round(value, 9))


def _common_history(inst, members: list[int]) -> int:
    """The last period through which every member scenario's presence is the same (-1: none)."""
    present = inst.scenario_present
    h = -1
    while h + 1 < inst.T and all(np.array_equal(present[members[0], :, :h + 2], present[m, :, :h + 2])
                                 for m in members):
        h += 1
    return h


def _subtree(inst, tables, members: list[int], parent: int | None) -> dict:
    """{decisions shared through the parent's common history `parent` (the root: none):
    (scenario, plan row, summed value)}, the best of the member scenarios' joint plans for each."""
    if len(members) == 1:
        n = members[0]
        entries = [(n, row, tables[n][2][row]) for row in range(len(tables[n][1]))]
    else:
        h = _common_history(inst, members)
        groups: dict[bytes, list[int]] = {}
        for m in members:
            groups.setdefault(inst.scenario_present[m, :, :h + 2].tobytes() if h + 1 < inst.T else bytes([m]),
                              []).append(m)
        merged: dict | None = None
        for child in groups.values():
            best = _subtree(inst, tables, child, h)
            merged = best if merged is None else {key: (n, row, value + best[key][2])
                                                  for key, (n, row, value) in merged.items() if key in best}
        entries = list(merged.values())
    keyed: dict = {}
    for n, row, value in entries:
        # decisions are shared through the common history less the notice (known that early)
        key = () if parent is None else _decisions(inst, tables[n], row, parent - inst.scenario_notice)
        if key not in keyed or _rounded(value) > _rounded(keyed[key][2]):
            keyed[key] = (n, row, value)
    return keyed


def _decisions(inst, table, row: int, h: int) -> tuple:
    """What a plan decides with the history through h: every unit's position in 0..h, each
    offer's units on station in 0..h (arrival, position; a multiset: they are alike), and the
    number of each offer's rotations arriving in t <= h + lead."""
    agents, choice, _ = table
    picked = [agent.options[choice[row, a]] for a, agent in enumerate(agents)]
    facing = [agent.headings[choice[row, a]] for a, agent in enumerate(agents)]
    units = len(inst.unit_ids)
    key: list = [tuple(path[:max(h + 1, 0)].tolist()) + tuple(heading[:max(h + 1, 0)].tolist())
                 for path, heading in zip(picked[:units], facing[:units])]
    first = units
    for f in range(len(inst.offer_ids)):
        paths = picked[first:first + int(inst.offer_count[f])]
        headings = facing[first:first + int(inst.offer_count[f])]
        first += int(inst.offer_count[f])
        arrivals = [int(np.argmax(path >= 0)) if (path >= 0).any() else -1 for path in paths]
        key.append(tuple(tuple(sorted((arrival, int(path[t]), int(heading[t]))
                                      for path, heading, arrival in zip(paths, headings, arrivals)
                                      if path[t] >= 0)) for t in range(h + 1)))
        key.append(tuple(arrivals.count(t) for t in range(min(inst.T, h + int(inst.offer_lead[f]) + 1))))
    return tuple(key)


def reaction_value(world, posture, announced: int) -> float | None:
    """The best coverage in `world` (units withdrawn) over per-unit plans that decide as the
    posture (period, unit, position) does before `announced`: every unit's positions, the
    substitutes on station and the rotations requested before then (arriving by announced - 1
    + lead). None when no such plan meets every requirement and limit."""
    agents, choice, coverage, _, _ = feasible_choices(world)
    if not len(choice):
        return None
    planned = _posture_choice(world, agents, posture)
    wanted = _decisions(world, (agents, planned[None], None), 0, announced - 1)
    matching = [row for row in range(len(choice))
                if _decisions(world, (agents, choice, None), row, announced - 1) == wanted]
    return float(coverage[matching].max()) if matching else None


def _posture_choice(world, agents, posture) -> np.ndarray:
    """The agents' option indices of a posture (positions only; headings all 0). Units absent
    from the world keep whatever option is theirs there (their only one: absent)."""
    period = {label: t for t, label in enumerate(world.periods)}
    position = {name: p for p, name in enumerate(world.position_ids)}
    paths: dict[str, np.ndarray] = {}
    for row in posture.itertuples():
        paths.setdefault(row.unit, np.full(world.T, -1))[period[row.period]] = position[row.position]
    picked = []
    for a, unit in enumerate(world.unit_ids):
        path = np.where(world.present[a], paths.get(unit, np.full(world.T, -1)), -1)
        picked.append(int(np.nonzero((agents[a].options == path).all(axis=1))[0][0]))
    first = len(world.unit_ids)
    for f, offer in enumerate(world.offer_ids):
        names = sorted(name for name in paths if name.startswith(f"{offer}#"))
        options = agents[first].options
        chosen = sorted(int(np.nonzero((options == paths[name]).all(axis=1))[0][0]) for name in names)
        chosen = [0] * (int(world.offer_count[f]) - len(chosen)) + chosen
        picked += sorted(chosen)
        first += int(world.offer_count[f])
    return np.array(picked)
