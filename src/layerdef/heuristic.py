"""A greedy starting plan: relocate units in the first period while it pays.

From the current posture, repeatedly move the one unit whose move to another position in the
first period (where it then stays) adds the most coverage over the horizon, keeping
capacities, hosts and requirements, until the first period's move limits are used or no move
pays. HiGHS starts from this plan, so a time-limited solve returns at least this much.
"""

from __future__ import annotations

import time

import numpy as np

from layerdef.geometry import covering_units
from layerdef.instance import Instance

SHORTLIST = 24  # positions evaluated exactly per unit and step


def greedy_posture(instance: Instance, seconds: float = 5.0) -> np.ndarray:
    """(U, T) position of every unit in every period (homes where not moved)."""
    started = time.perf_counter()
    T = instance.T
    where = np.repeat(instance.unit_home[:, None], T, axis=1)
    limit = min(x for x in (instance.moves_total, instance.moves_per_period, len(instance.unit_ids))
                if x is not None)
    cover = instance.cover.astype(np.int16)  # (K, P, S, L)
    present = instance.present
    standing = np.zeros((len(instance.position_ids), len(instance.systems), T), dtype=np.int64)
    np.add.at(standing, (where[present], instance.unit_system[np.nonzero(present)[0]],
                         np.nonzero(present)[1]), 1)
    units = covering_units(instance, standing)  # (S, L, T)
    levels = np.concatenate([[0.0], np.cumsum(instance.depth_weights)])
    J = len(instance.depth_weights)
    weight = instance.site_weight[:, None, None] * instance.layer_weight[None, :, None]
    required = instance.requirement[:, :, None]
    occupancy = standing.sum(axis=1)  # (P, T)
    movable = [u for u in range(len(instance.unit_ids)) if not instance.unit_fixed[u] and present[u, 0]]
    moved: set[int] = set()
    for _ in range(limit):
        best = (1e-9, None, None)
        for u in movable:
            if u in moved or time.perf_counter() - started > seconds:
                continue
            k, p, here = instance.unit_system[u], where[u, 0], present[u]
            room = (occupancy[:, here] < instance.capacity[:, None]).all(axis=1)
            candidates = np.nonzero(room & instance.admits[:, instance.unit_owner[u]])[0]
            candidates = candidates[candidates != p]
            if not len(candidates):
                continue
            if len(candidates) > SHORTLIST:  # rank by the first period's marginal value
                marginal = weight[:, :, 0] * (levels[np.minimum(units[:, :, 0] + 1, J)]
                                              - levels[np.minimum(units[:, :, 0], J)])
                score = np.einsum("qsl,sl->q", cover[k, candidates], marginal)
                candidates = candidates[np.argsort(-score)[:SHORTLIST]]
            delta = (cover[k, candidates] - cover[k, p][None])[..., None] * here[None, None, None, :]
            after = units[None] + delta  # (Q, S, L, T)
            if (required > 0).any():
                keeps = ((after >= required[None]) | (required[None] <= 0) | (units[None] < required[None])
                         ).all(axis=(1, 2, 3))
            else:
                keeps = np.ones(len(candidates), dtype=bool)
            gain = (weight[None] * (levels[np.minimum(after, J)] - levels[np.minimum(units, J)][None])
                    ).sum(axis=(1, 2, 3))
            gain[~keeps] = -np.inf
            q = int(np.argmax(gain))
            if gain[q] > best[0]:
                best = (gain[q], u, int(candidates[q]))
        _, u, q = best
        if u is None:
            break
        k, p, here = instance.unit_system[u], where[u, 0], present[u]
        units += ((cover[k, q] - cover[k, p])[..., None] * here[None, None, :]).astype(np.int64)
        occupancy[p, here] -= 1
        occupancy[q, here] += 1
        where[u, :] = q
        moved.add(u)
    return where
