"""A starting plan: greedy relocations and substitute requests, then a local search.

From the current posture, period by period from the first, repeatedly move the one unit whose
move to another position from that period on (where it then stays) adds the most coverage
over the rest of the horizon, keeping capacities, hosts and requirements, until the period's
move limit or the total is used or no move pays (a unit may move again later). Then, while the
budget and the offers allow, request the one rotation (offer, arrival, length, position) with
the most coverage per cost. The local search (`improve_plan`) then re-places stays, trades a
relocation for a better one when the limits are used up, swaps two units (between two full
positions no single move can), and trades one or two rotations for better ones within the
budget they free. HiGHS starts from this plan, so a time-limited solve
returns at least this much; where the solver's root step runs (`solve.starting_plan`) it
replaces the local search."""

from __future__ import annotations

import itertools
import time
from typing import Callable

import numpy as np

from layerdef.core.instance import Instance, period_mask
from layerdef.core.scoring import cumulative_levels, site_layer_weight

SHORTLIST = 24  # positions evaluated exactly per unit and step


TRADE_SHORTLIST = 30  # stays tried in place of an undone relocation


REPORT_EVERY_S = 5.0


#: A substitute unit of the plan: (offer, periods on station, position in each).
Rotation = tuple[int, list[int], list[int]]


def greedy_plan(instance: Instance, seconds: float = 5.0,
                report: Callable[[str], None] = lambda message: None,
                search: bool = True) -> tuple[np.ndarray, list[Rotation]]:
    """The relocations of `greedy_posture`, the substitutes requested greedily, then (if
    `search`) the local search, within `seconds` in all; `report` receives a line of progress
    every few seconds."""
    started = time.perf_counter()
    where, state = _relocate(instance, 0.5 * seconds, report)
    rotations = _request(state, 0.6 * seconds - (time.perf_counter() - started))
    report(f"start: greedy plan, coverage {state.total():.8g} ({time.perf_counter() - started:.1f} s)")
    if not search:
        return where, rotations
    where, rotations = improve_plan(instance, where, rotations, state,
                                    seconds - (time.perf_counter() - started), report)
    report(f"start: after the local search, coverage {state.total():.8g} "
           f"({time.perf_counter() - started:.1f} s)")
    return where, rotations


def greedy_posture(instance: Instance, seconds: float = 5.0) -> np.ndarray:
    """(U, T) position of every unit in every period (homes where not moved)."""
    return _relocate(instance, seconds)[0]


def search_plan(instance: Instance, where: np.ndarray, rotations: list[Rotation], seconds: float,
                report: Callable[[str], None] = lambda message: None) -> tuple[np.ndarray, list[Rotation]]:
    """The local search of `greedy_plan` from a plan it made without it (`search=False`),
    within `seconds`: the greedy plan is not made twice when the root step could not run."""
    state = _state_of(instance, where)
    _place(state, rotations, 1)
    where, rotations = improve_plan(instance, where, rotations, state, seconds, report)
    report(f"start: after the local search, coverage {state.total():.8g} ({seconds:.1f} s at most)")
    return where, rotations


def _state_of(instance: Instance, where: np.ndarray) -> "_State":
    """The state of the organic units standing at `where` (U, T) where present."""
    present = instance.present
    standing = np.zeros((len(instance.position_ids), len(instance.systems), instance.T), dtype=np.int64)
    np.add.at(standing, (where[present], instance.unit_system[np.nonzero(present)[0]],
                         np.nonzero(present)[1]), 1)
    return _State(instance, standing, flat_view(instance))


def _relocate(instance: Instance, seconds: float,
              report: Callable[[str], None] = lambda message: None) -> tuple[np.ndarray, "_State"]:
    started = last_report = time.perf_counter()
    T = instance.T
    where = np.repeat(instance.unit_home[:, None], T, axis=1)
    present = instance.present
    state = _state_of(instance, where)
    per_period = min(x for x in (instance.moves_per_period, len(instance.unit_ids)) if x is not None)
    remaining = instance.moves_total if instance.moves_total is not None else len(instance.unit_ids)
    for t in range(T):
        if time.perf_counter() - last_report >= REPORT_EVERY_S:
            last_report = time.perf_counter()
            report(f"start: greedy relocations, period {t + 1} of {T}, coverage {state.total():.8g}")
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


def _request(state: "_State", seconds: float, kept: list[Rotation] = (), most: float = np.inf,
             per_cost: bool = True) -> list[Rotation]:
    """Substitute rotations besides `kept` (already in the state), one at a time and up to
    `most`, in order of coverage gained per cost (gain alone when free; or coverage alone when
    not `per_cost`), each within the budget, the offer's count, its earliest period and rotation
    lengths, at a position that admits its owner and has room in every period of the stay.
    They are added to the state."""
    started = time.perf_counter()
    instance = state.instance
    left = instance.offer_count.copy()
    for rotation in kept:
        left[rotation[0]] -= 1
    budget = (np.inf if instance.substitute_budget is None
              else float(instance.substitute_budget) - sum(_cost(instance, r) for r in kept))
    rotations: list[Rotation] = []
    while left.any() and len(rotations) < most and time.perf_counter() - started < seconds:
        found = _best_rotation(state, left, budget, per_cost)
        if found is None:
            break
        rotation = _rotation(*found[1])
        _place(state, [rotation], 1)
        rotations.append(rotation)
        budget -= _cost(instance, rotation)
        left[rotation[0]] -= 1
    return rotations


def _best_rotation(state: "_State", left: np.ndarray, budget: float,
                   per_cost: bool) -> tuple[float, tuple[int, int, int, int]] | None:
    """The rotation (offer, arrival, length, position) within `budget` and the offers still
    `left` that adds the most coverage per cost (`per_cost`) or the most coverage, with that
    gain; None when none adds any."""
    instance, T = state.instance, state.instance.T
    best = (0.0, 0.0, None)  # (criterion, gain, rotation)
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
                criterion = (gain[q] / (cost * length) if cost > 0 else np.inf) if per_cost else gain[q]
                if gain[q] > 1e-9 and (criterion, gain[q]) > best[:2]:
                    best = (criterion, float(gain[q]), (int(f), arrival, length, q))
    return None if best[2] is None else (best[1], best[2])


def _rotation(offer: int, arrival: int, length: int, position: int) -> Rotation:
    return offer, list(range(arrival, arrival + length)), [position] * length


def _cost(instance: Instance, rotation: Rotation) -> float:
    return float(instance.offer_cost[rotation[0]]) * len(rotation[1])


def _place(state: "_State", rotations: list[Rotation], count: int) -> None:
    """Add the rotations' units to the state (`count` -1 withdraws them)."""
    for offer, periods, positions in rotations:
        state.add(int(state.instance.offer_system[offer]), positions[0], period_mask(state.instance.T, periods),
                  count)


def improve_plan(instance: Instance, where: np.ndarray, rotations: list[Rotation],
                 state: "_State", seconds: float,
                 report: Callable[[str], None] = lambda message: None) -> tuple[np.ndarray, list[Rotation]]:
    """Local search from a feasible plan (and its `state`): re-place or re-time a unit's stay,
    trade a relocation for a better one when the move limits are used up, swap two units, and
    trade one or two substitute rotations for better ones within the budget, while any of them
    adds coverage."""
    search = _LocalSearch(instance, where.copy(), list(rotations), state)
    started = last_report = time.perf_counter()
    deadline = started + seconds
    improved = True
    while improved and time.perf_counter() < deadline:
        improved = (search.relocate(deadline) | search.trade_moves(deadline) | search.swap(deadline)
                    | search.trade_rotations())
        if time.perf_counter() - last_report >= REPORT_EVERY_S:
            last_report = time.perf_counter()
            report(f"start: local search, coverage {state.total():.8g}")
    return search.where, search.rotations


class _LocalSearch:
    """A plan being improved: positions, move events and rotations kept in step with the state."""

    def __init__(self, instance: Instance, where: np.ndarray, rotations: list[Rotation], state: "_State"):
        self.instance, self.where, self.rotations, self.state = instance, where, rotations, state
        self.movable = np.nonzero(~instance.unit_fixed)[0]
        self.events = self._events(np.arange(len(instance.unit_ids)), where)
        self.per_period = instance.moves_per_period if instance.moves_per_period is not None else np.inf
        self.most = instance.moves_total if instance.moves_total is not None else np.inf

    def _events(self, units: np.ndarray, where: np.ndarray) -> np.ndarray:
        """(len(units), T) bool: the unit relocates in t (in theater in t-1 and t at different
        positions; in the first period, away from home). Returns are not moves."""
        inst = self.instance
        present = inst.present[units]
        before = np.concatenate([inst.unit_home[units, None], where[:, :-1]], axis=1)
        stayed = np.concatenate([np.ones((len(units), 1), bool), present[:, :-1]], axis=1)
        return present & stayed & (where != before) & ~inst.unit_fixed[units, None]

    def _stay(self, u: int, t: int) -> np.ndarray:
        """The periods from t in which u stands where it stands in t, until it leaves or moves."""
        present, T = self.instance.present[u], self.instance.T
        span = np.zeros(T, dtype=bool)
        for s in range(t, T):
            if not present[s] or (s > t and self.events[u, s]):
                break
            span[s] = True
        return span

    def _within_limits(self, units: np.ndarray, rows: np.ndarray) -> bool:
        """Whether `units` standing at `rows` instead keeps the moves within the limits."""
        moves = self.events.sum(axis=0) - self.events[units].sum(axis=0) + self._events(units, rows).sum(axis=0)
        return bool(moves.max(initial=0) <= self.per_period and moves.sum() <= self.most)

    def _apply(self, u: int, t: int, q: int) -> None:
        span = self._stay(u, t)
        self.state.apply(u, int(self.where[u, t]), q, span)
        self.where[u, span] = q
        self.events[u] = self._events(np.array([u]), self.where[u][None])[0]

    def _stays(self) -> list[tuple[int, int]]:
        """Every (unit, period) whose stay could be re-placed."""
        return [(int(u), t) for t in range(self.instance.T) for u in self.movable
                if self.instance.present[u, t]]

    def _relocations(self, stays: list[tuple[int, int]], deadline: float, limits: bool = True
                     ) -> list[tuple[float, int, int, int]]:
        """(gain, unit, period, position) of the best re-placement of each stay that adds
        coverage (and keeps the move limits, unless `limits` is False), best first."""
        found, scores = [], {}
        for u, t in stays:
            if time.perf_counter() > deadline:
                break
            if t not in scores:
                scores[t] = self.state.position_scores(t)
            span = self._stay(u, t)
            gain, q = self.state.best_move(u, int(self.where[u, t]), span, scores[t])
            if gain > 1e-9:
                row = self.where[u].copy()
                row[span] = q
                if not limits or self._within_limits(np.array([u]), row[None]):
                    found.append((gain, u, t, q))
        return sorted(found, reverse=True)

    def relocate(self, deadline: float) -> bool:
        """Re-place stays, best first, while any adds coverage: each pass values every stay,
        then applies in that order those that still add coverage once the earlier are made."""
        improved = False
        while time.perf_counter() < deadline:
            found = self._relocations(self._stays(), deadline)
            if not found:
                break
            self._apply(*found[0][1:])
            for _, u, t, _ in found[1:]:
                again = self._relocations([(u, t)], deadline)
                if again:
                    self._apply(*again[0][1:])
            improved = True
        return improved

    def trade_moves(self, deadline: float) -> bool:
        """Undo one relocation and make another instead, when that adds coverage. The others
        tried are the undone unit's and the stays that came closest to paying before."""
        improved = False
        ranked = self._ranked(deadline)
        for u, t in np.argwhere(self.events):
            if time.perf_counter() > deadline:
                break
            if not self.events[u, t]:
                continue  # gone with an earlier trade
            back = int(self.where[u, t - 1]) if t > 0 else int(self.instance.unit_home[u])
            moved_to = int(self.where[u, t])
            undo_gain, _ = self.state.best_move(u, moved_to, self._stay(u, t), None, only=back)
            if undo_gain == -np.inf:
                continue  # no room back there, or a requirement needs the unit where it went
            self._apply(u, t, back)
            own = [(int(u), s) for s in range(self.instance.T) if self.instance.present[u, s] and s != t]
            found = self._relocations(own + ranked, deadline)
            if found and found[0][0] + undo_gain > 1e-9:
                self._apply(*found[0][1:])
                improved = True
            else:
                self._apply(u, t, moved_to)
        return improved

    def swap(self, deadline: float) -> bool:
        """Exchange where two units stand from one period on (each for its own stay), when that
        adds coverage: a swap between two full positions is no sequence of single moves."""
        inst, state, improved = self.instance, self.state, False
        value = state.total()
        for t in range(inst.T):
            here = [int(u) for u in self.movable if inst.present[u, t]]
            for u, v in itertools.combinations(here, 2):
                if time.perf_counter() > deadline:
                    return improved
                p, q = int(self.where[u, t]), int(self.where[v, t])
                if p == q or not (inst.admits[q, inst.unit_owner[u]] and inst.admits[p, inst.unit_owner[v]]):
                    continue
                if inst.unit_system[u] == inst.unit_system[v] and inst.unit_owner[u] == inst.unit_owner[v]:
                    continue  # the same coverage either way
                span_u, span_v = self._stay(u, t), self._stay(v, t)
                rows = self.where[[u, v]].copy()
                rows[0, span_u], rows[1, span_v] = q, p
                if not self._within_limits(np.array([u, v]), rows):
                    continue
                occupancy = state.occupancy  # one more where only one of the two stays runs
                if ((occupancy[q, span_u & ~span_v] >= inst.capacity[q]).any()
                        or (occupancy[p, span_v & ~span_u] >= inst.capacity[p]).any()):
                    continue
                state.apply(u, p, q, span_u)
                state.apply(v, q, p, span_v)
                swapped = state.total()
                if swapped > value + 1e-9 and state.meets_requirements():
                    self.where[[u, v]] = rows
                    self.events[[u, v]] = self._events(np.array([u, v]), rows)
                    value, improved = swapped, True
                else:
                    state.apply(v, p, q, span_v)
                    state.apply(u, q, p, span_u)
        return improved

    def _ranked(self, deadline: float) -> list[tuple[int, int]]:
        """The TRADE_SHORTLIST stays whose best re-placement gains most, limits aside."""
        found = self._relocations(self._stays(), deadline, limits=False)
        return [(u, t) for _, u, t, _ in found[:TRADE_SHORTLIST]]

    def trade_rotations(self) -> bool:
        """Withdraw one or two substitute rotations and request, in their place, those that add
        the most coverage (or the most per cost) within the budget they free, when that adds
        more than they did."""
        improved = False
        for size in (1, 2):
            for chosen in itertools.combinations(range(len(self.rotations)), size):
                if max(chosen) < len(self.rotations):  # a trade may leave fewer
                    improved |= self._trade(list(chosen))
        return improved

    def _trade(self, chosen: list[int]) -> bool:
        state = self.state
        before = state.total()
        withdrawn = [self.rotations[i] for i in chosen]
        kept = [r for i, r in enumerate(self.rotations) if i not in chosen]
        _place(state, withdrawn, -1)
        if not state.meets_requirements():
            _place(state, withdrawn, 1)
            return False
        best = (before + 1e-9, withdrawn)
        for per_cost in (False, True):
            requested = _request(state, np.inf, kept, len(chosen), per_cost)
            if state.total() > best[0]:
                best = (state.total(), requested)
            _place(state, requested, -1)
        _place(state, best[1], 1)
        self.rotations = kept + best[1]
        return best[1] is not withdrawn


def flat_view(instance: Instance) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The greedy search's view: every unit faces the heading that sees the largest share of the
    launch areas where it stands (`Instance.best_heading`), and each (layer, launch area) pair
    is one layer: (cover (K, P, S, L x G), weight (S, L x G), required (S, L x G))."""
    K, P, S, L, G = (len(instance.systems), len(instance.position_ids), len(instance.site_ids),
                     len(instance.layers), instance.G)
    best = instance.best_heading  # (K, P)
    cover = np.take_along_axis(instance.cover, best[:, :, None, None, None, None], axis=2)[:, :, 0]
    required = instance.requirement[:, :, None] * instance.threatens.T[None]
    return (cover.reshape(K, P, S, L * G), site_layer_weight(instance).reshape(S, L * G),
            required.reshape(S, L * G))


def kill_view(instance: Instance) -> tuple[np.ndarray, np.ndarray]:
    """With kill probabilities, the greedy search's view of the value, each unit facing as in
    `flat_view`: (exponent (K, P, S, C x G) one unit adds to the leak probability's, weight
    (S, C x G) of certain defeat), so that a row's value is weight x (1 - exp(-its exponent))."""
    K, P, S, G = len(instance.systems), len(instance.position_ids), len(instance.site_ids), instance.G
    best = instance.best_heading
    cover = np.take_along_axis(instance.cover, best[:, :, None, None, None, None], axis=2)[:, :, 0]  # (K, P, S, L, G)
    exponent = np.einsum("kl,cgl,kpslg->kpscg", instance.kill_rate, instance.engaging.astype(float),
                         cover.astype(float))
    C = len(instance.class_ids)
    return exponent.reshape(K, P, S, C * G), instance.class_area_weight.reshape(S, C * G)


class _State:
    """Units covering every site, layer and period, and occupancy of every position, as moves
    are applied; values a candidate move exactly (by depth weights, or with kill
    probabilities by the exponent of every site's leak probability)."""

    def __init__(self, instance: Instance, standing: np.ndarray,
                 view: tuple[np.ndarray, np.ndarray, np.ndarray]):
        self.instance = instance
        self.cover = view[0].astype(np.int16)  # (K, P, S, L')
        self.units = np.einsum("kpsl,pkt->slt", self.cover.astype(np.int64), standing)  # L' = (layer, area)
        self.occupancy = standing.sum(axis=1)  # (P, T)
        self.levels = cumulative_levels(instance)
        self.weight = view[1][:, :, None]
        self.required = view[2][:, :, None]
        self.kill = instance.kill_probability
        if self.kill:
            self.exponent, weight = kill_view(instance)  # (K, P, S, R), R = (class, area)
            self.kill_weight = weight[:, :, None]
            self.chi = np.einsum("kpsr,pkt->srt", self.exponent, standing.astype(float))
            self.single = -np.expm1(-self.exponent)  # a unit's defeat probability alone

    def marginal(self) -> np.ndarray:
        """(S, L, T): what one more covering unit would add at each site, layer and period
        (by depth weights)."""
        J = len(self.instance.depth_weights)
        return self.weight * (self.levels[np.minimum(self.units + 1, J)] - self.levels[np.minimum(self.units, J)])

    def position_scores(self, t: int) -> np.ndarray:
        """(K, P): what one more unit of each system at each position would add in period t;
        ranks the candidates before they are valued exactly."""
        if self.kill:
            return np.einsum("kpsr,sr->kp", self.single, (self.kill_weight * np.exp(-self.chi))[:, :, t])
        return np.einsum("kpsl,sl->kp", self.cover, self.marginal()[:, :, t])

    def best_move(self, u: int, p: int, span: np.ndarray, scores: np.ndarray | None,
                  only: int | None = None) -> tuple[float, int | None]:
        """The best position for unit u (at p) over the periods in `span`, and its gain
        (-inf when no position has room or every move breaks a requirement); `only` values
        that one position, `scores` shortlists the candidates otherwise."""
        inst, J = self.instance, len(self.instance.depth_weights)
        k = inst.unit_system[u]
        room = (self.occupancy[:, span] < inst.capacity[:, None]).all(axis=1)
        allowed = room & inst.admits[:, inst.unit_owner[u]]
        candidates = np.nonzero(allowed)[0] if only is None else np.array([only])[allowed[[only]]]
        candidates = candidates[candidates != p]
        if not len(candidates):
            return -np.inf, None
        if len(candidates) > SHORTLIST:
            candidates = candidates[np.argsort(-scores[k, candidates])[:SHORTLIST]]
        reach = self.cover[k, candidates]  # (Q, S, L)
        sites, layers = np.nonzero((reach != self.cover[k, p][None]).any(axis=0))  # all that changes
        periods = np.nonzero(span)[0]  # nothing changes outside the span
        delta = (reach[:, sites, layers] - self.cover[k, p][sites, layers][None])[..., None]
        before = self.units[sites[:, None], layers[:, None], periods[None]]  # (n, |span|)
        after = before[None] + delta  # (Q, n, |span|)
        required = self.required[sites, layers][None]
        keeps = ((after >= required) | (required <= 0) | (before[None] < required)).all(axis=(1, 2))
        if self.kill:
            gain = self._kill_gain(k, p, candidates, periods)
        else:
            weight = self.weight[sites, layers][None]
            gain = (weight * (self.levels[np.minimum(after, J)]
                              - self.levels[np.minimum(before, J)][None])).sum(axis=(1, 2))
        gain[~keeps] = -np.inf
        q = int(np.argmax(gain))
        return float(gain[q]), int(candidates[q])

    def _kill_gain(self, k: int, p: int, candidates: np.ndarray, periods: np.ndarray) -> np.ndarray:
        """(Q,) what moving a unit of system k from p to each candidate adds over `periods`,
        with kill probabilities: weight x (exp(-x before) - exp(-x after)) where x changes."""
        delta_all = self.exponent[k, candidates] - self.exponent[k, p][None]  # (Q, S, R)
        sites, rows = np.nonzero(np.abs(delta_all).max(axis=0) > 0)
        before = self.chi[sites[:, None], rows[:, None], periods[None]]  # (n, |span|)
        after = before[None] + delta_all[:, sites, rows][..., None]
        weight = self.kill_weight[sites, rows][None]
        return (weight * (np.exp(-before)[None] - np.exp(-after))).sum(axis=(1, 2))

    def period_gains(self) -> np.ndarray:
        """(K, P, T): what one more unit of each system at each position adds in each period."""
        if self.kill:
            return np.einsum("kpsr,srt->kpt", self.single, self.kill_weight * np.exp(-self.chi))
        return np.einsum("kpsl,slt->kpt", self.cover, self.marginal())

    def add(self, k: int, q: int, span: np.ndarray, count: int = 1) -> None:
        """`count` more units of system k at q in the periods of `span` (a substitute; -1
        withdraws one)."""
        self.units += count * (self.cover[k, q][..., None] * span[None, None, :]).astype(np.int64)
        self.occupancy[q, span] += count
        if self.kill:
            self.chi += count * self.exponent[k, q][..., None] * span[None, None, :]

    def total(self) -> float:
        """The coverage value of the posture as it stands."""
        if self.kill:
            return float((self.kill_weight * -np.expm1(-self.chi)).sum())
        J = len(self.instance.depth_weights)
        return float((self.weight * self.levels[np.minimum(self.units, J)]).sum())

    def meets_requirements(self) -> bool:
        return bool(((self.units >= self.required) | (self.required <= 0)).all())

    def apply(self, u: int, p: int, q: int, span: np.ndarray) -> None:
        k = self.instance.unit_system[u]
        self.units += ((self.cover[k, q] - self.cover[k, p])[..., None] * span[None, None, :]).astype(np.int64)
        self.occupancy[p, span] -= 1
        self.occupancy[q, span] += 1
        if self.kill:
            self.chi += (self.exponent[k, q] - self.exponent[k, p])[..., None] * span[None, None, :]
