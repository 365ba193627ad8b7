"""A greedy starting plan: relocate units, period by period, while it pays; then request the
substitutes that add the most coverage per unit of cost.

From the current posture, period by period from the first, repeatedly move the one unit whose
move to another position from that period on (where it then stays) adds the most coverage
over the rest of the horizon, keeping capacities, hosts and requirements, until the period's
move limit or the total is used or no move pays (a unit may move again later). Then, while the
budget and the offers allow, request the one rotation (offer, arrival, length, position) with
the most coverage per cost. HiGHS starts from this plan, so a time-limited solve returns at
least this much.
"""

from __future__ import annotations

import time

import numpy as np

from layerdef.geometry import covering_units
from layerdef.instance import Instance

SHORTLIST = 24  # positions evaluated exactly per unit and step


#: A substitute unit of the plan: (offer, periods on station, position in each).
Rotation = tuple[int, list[int], list[int]]


def greedy_plan(instance: Instance, seconds: float = 5.0) -> tuple[np.ndarray, list[Rotation]]:
    """The relocations of `greedy_posture`, then the substitutes requested greedily."""
    started = time.perf_counter()
    where, state = _relocate(instance, 0.8 * seconds)  # the requests are cheap: keep them a fifth
    return where, _request(state, seconds - (time.perf_counter() - started))


def greedy_posture(instance: Instance, seconds: float = 5.0) -> np.ndarray:
    """(U, T) position of every unit in every period (homes where not moved)."""
    return _relocate(instance, seconds)[0]


def _relocate(instance: Instance, seconds: float) -> tuple[np.ndarray, "_State"]:
    started = time.perf_counter()
    T = instance.T
    where = np.repeat(instance.unit_home[:, None], T, axis=1)
    present = instance.present
    standing = np.zeros((len(instance.position_ids), len(instance.systems), T), dtype=np.int64)
    np.add.at(standing, (where[present], instance.unit_system[np.nonzero(present)[0]],
                         np.nonzero(present)[1]), 1)
    state = _State(instance, covering_units(instance, standing), standing.sum(axis=1))
    per_period = min(x for x in (instance.moves_per_period, len(instance.unit_ids)) if x is not None)
    remaining = instance.moves_total if instance.moves_total is not None else len(instance.unit_ids)
    for t in range(T):
        for _ in range(min(per_period, remaining)):
            if time.perf_counter() - started > seconds:
                return where, state
            best = (1e-9, None, None)
            scores = state.position_scores(t)
            for u in range(len(instance.unit_ids)):
                if instance.unit_fixed[u] or not present[u, t]:
                    continue
                gain, q = state.best_move(u, int(where[u, t]), present[u] & (np.arange(T) >= t), scores)
                if gain > best[0]:
                    best = (gain, u, q)
            _, u, q = best
            if u is None:
                break
            span = present[u] & (np.arange(T) >= t)
            state.apply(u, int(where[u, t]), q, span)
            where[u, t:] = q
            remaining -= 1
    return where, state


def _request(state: "_State", seconds: float) -> list[Rotation]:
    """Substitute rotations in order of coverage gained per cost (gain alone when free), each
    within the budget, the offer's count, its earliest period and rotation lengths, at a
    position that admits its owner and has room in every period of the stay."""
    started = time.perf_counter()
    instance, T = state.instance, state.instance.T
    budget = np.inf if instance.substitute_budget is None else float(instance.substitute_budget)
    left = instance.offer_count.copy()
    rotations: list[Rotation] = []
    while left.any() and time.perf_counter() - started < seconds:
        best = (0.0, 0.0, None)  # (gain per cost, gain, (f, arrival, length, q))
        per_period = state.period_gains()  # (K, P, T)
        for f in np.nonzero(left)[0]:
            k, cost = instance.offer_system[f], float(instance.offer_cost[f])
            gains = np.concatenate([np.zeros((len(instance.position_ids), 1)),
                                    np.cumsum(per_period[k], axis=1)], axis=1)
            full = np.concatenate([np.zeros((len(instance.position_ids), 1)),
                                   np.cumsum(state.occupancy >= instance.capacity[:, None], axis=1)], axis=1)
            admits = instance.admits[:, instance.offer_owner[f]]
            for arrival in range(int(instance.offer_earliest[f]), T):
                shortest = min(int(instance.offer_min_periods[f]), T - arrival)
                for length in range(shortest, min(int(instance.offer_max_periods[f]), T - arrival) + 1):
                    if cost * length > budget + 1e-9:
                        break
                    gain = gains[:, arrival + length] - gains[:, arrival]
                    gain[~admits | (full[:, arrival + length] > full[:, arrival])] = -np.inf
                    q = int(np.argmax(gain))
                    ratio = gain[q] / (cost * length) if cost > 0 else np.inf
                    if gain[q] > 1e-9 and (ratio, gain[q]) > best[:2]:
                        best = (ratio, float(gain[q]), (int(f), arrival, length, q))
        if best[2] is None:
            break
        f, arrival, length, q = best[2]
        span = np.zeros(T, dtype=bool)
        span[arrival:arrival + length] = True
        state.add(int(instance.offer_system[f]), q, span)
        rotations.append((f, list(range(arrival, arrival + length)), [q] * length))
        budget -= float(instance.offer_cost[f]) * length
        left[f] -= 1
    return rotations


class _State:
    """Units covering every site, layer and period, and occupancy of every position, as moves
    are applied; values a candidate move exactly."""

    def __init__(self, instance: Instance, units: np.ndarray, occupancy: np.ndarray):
        self.instance = instance
        self.units = units  # (S, L, T)
        self.occupancy = occupancy  # (P, T)
        self.cover = instance.cover.astype(np.int16)  # (K, P, S, L)
        self.levels = np.concatenate([[0.0], np.cumsum(instance.depth_weights)])
        self.weight = instance.site_weight[:, None, None] * instance.layer_weight[None, :, None]
        self.required = instance.requirement[:, :, None]

    def marginal(self) -> np.ndarray:
        """(S, L, T): what one more covering unit would add at each site, layer and period."""
        J = len(self.instance.depth_weights)
        return self.weight * (self.levels[np.minimum(self.units + 1, J)] - self.levels[np.minimum(self.units, J)])

    def position_scores(self, t: int) -> np.ndarray:
        """(K, P): what one more unit of each system at each position would add in period t;
        ranks the candidates before they are valued exactly."""
        return np.einsum("kpsl,sl->kp", self.cover, self.marginal()[:, :, t])

    def best_move(self, u: int, p: int, span: np.ndarray, scores: np.ndarray) -> tuple[float, int | None]:
        """The best position for unit u (at p) over the periods in `span`, and its gain."""
        inst, J = self.instance, len(self.instance.depth_weights)
        k = inst.unit_system[u]
        room = (self.occupancy[:, span] < inst.capacity[:, None]).all(axis=1)
        candidates = np.nonzero(room & inst.admits[:, inst.unit_owner[u]])[0]
        candidates = candidates[candidates != p]
        if not len(candidates):
            return -np.inf, None
        if len(candidates) > SHORTLIST:
            candidates = candidates[np.argsort(-scores[k, candidates])[:SHORTLIST]]
        reach = self.cover[k, candidates]  # (Q, S, L)
        sites, layers = np.nonzero((reach != self.cover[k, p][None]).any(axis=0))  # all that changes
        delta = (reach[:, sites, layers] - self.cover[k, p][sites, layers][None])[..., None] * span
        before = self.units[sites, layers]  # (n, T)
        after = before[None] + delta  # (Q, n, T)
        required = self.required[sites, layers][None]
        keeps = ((after >= required) | (required <= 0) | (before[None] < required)).all(axis=(1, 2))
        weight = self.weight[sites, layers][None]
        gain = (weight * (self.levels[np.minimum(after, J)]
                          - self.levels[np.minimum(before, J)][None])).sum(axis=(1, 2))
        gain[~keeps] = -np.inf
        q = int(np.argmax(gain))
        return float(gain[q]), int(candidates[q])

    def period_gains(self) -> np.ndarray:
        """(K, P, T): what one more unit of each system at each position adds in each period."""
        return np.einsum("kpsl,slt->kpt", self.cover, self.marginal())

    def add(self, k: int, q: int, span: np.ndarray) -> None:
        """One more unit of system k at q in the periods of `span` (a substitute)."""
        self.units += (self.cover[k, q][..., None] * span[None, None, :]).astype(np.int64)
        self.occupancy[q, span] += 1

    def apply(self, u: int, p: int, q: int, span: np.ndarray) -> None:
        k = self.instance.unit_system[u]
        self.units += ((self.cover[k, q] - self.cover[k, p])[..., None] * span[None, None, :]).astype(np.int64)
        self.occupancy[p, span] -= 1
        self.occupancy[q, span] += 1
