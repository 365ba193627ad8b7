"""Scoring a posture's counts: units covering each site and layer against each launch area, and
what they are worth by the depth weights. Shared by the evaluator, the model, the greedy search
and the report.

Counts may be fractional: a unit that moved in covers with `1 - downtime` in that period, and
its depth level fills by that share (`coverage_value`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from layerdef.core.instance import Instance


def covering_units(instance: "Instance", standing: np.ndarray) -> np.ndarray:
    """(S, L, G, T) units covering each site in each layer against each launch area, from
    `standing[p, k, h, t]` counts (or `standing[p, k, t]`, every unit facing heading 0)."""
    if standing.ndim == 3:
        standing = standing[:, :, None, :] * (np.arange(instance.H) == 0)[None, None, :, None]
    dtype = np.int64 if np.issubdtype(standing.dtype, np.integer) else float
    return np.tensordot(instance.cover.astype(dtype), standing, axes=([0, 1, 2], [1, 0, 2]))


def site_layer_weight(instance: "Instance") -> np.ndarray:
    """(S, L, G): site weight x layer weight x the launch area's share, what a full depth level
    of (s, l) against g is worth; 0 where g does not threaten l."""
    weight = instance.site_weight[:, None] * instance.layer_weight[None, :]
    return weight[:, :, None] * (instance.threat_weight[None, :] * instance.threatens.T)[None, :, :]


def level_values(instance: "Instance") -> np.ndarray:
    """(S, L, G, J): v[s, l, g, j] = w_s a_l share_g d_j, the value of the j-th unit covering s
    in l against g."""
    return site_layer_weight(instance)[..., None] * instance.depth_weights[None, None, None, :]


def cumulative_levels(instance: "Instance") -> np.ndarray:
    """(J + 1,): the depth weights of the first 0, 1, .., J covering units, summed."""
    return np.concatenate([[0.0], np.cumsum(instance.depth_weights)])


def depth_value(instance: "Instance", units: np.ndarray) -> np.ndarray:
    """The depth weights `units` covering units fill, the last level by its fraction (counts
    beyond the J levels add nothing)."""
    J = len(instance.depth_weights)
    units = np.minimum(np.asarray(units, float), J)
    whole = np.floor(units + 1e-9).astype(np.int64)
    fraction = np.clip(units - whole, 0.0, None)
    next_weight = np.concatenate([instance.depth_weights, [0.0]])[np.minimum(whole, J)]
    return cumulative_levels(instance)[whole] + fraction * next_weight


def coverage_value(instance: "Instance", units: np.ndarray) -> np.ndarray:
    """(S, L, G, T) value of `units` covering each site in each layer against each launch area:
    site weight x layer weight x share x the depth weights of the levels they fill."""
    return site_layer_weight(instance)[..., None] * depth_value(instance, units)


def units_by_system(instance: "Instance", standing: np.ndarray) -> np.ndarray:
    """(K, S, L, G, T) units of each system covering each site in each layer against each
    launch area, from `standing[p, k, h, t]` counts."""
    return np.einsum("kphslg,pkht->kslgt", instance.cover.astype(float), np.asarray(standing, float))


def kill_exponent(instance: "Instance", by_system: np.ndarray) -> np.ndarray:
    """(S, C, G, T): x = sum over systems k and layers l engaging class c from g of
    -ln(1 - pk[k, l]) n[k, s, l, g, t], so that the leak probability is exp(-x)."""
    return np.einsum("kl,cgl,kslgt->scgt", instance.kill_rate, instance.engaging.astype(float), by_system)


def defeat_value(instance: "Instance", exponent: np.ndarray) -> np.ndarray:
    """(S, C, G, T) value of the probability of defeat 1 - exp(-x): site weight x class
    weight x the area's share of it."""
    return instance.class_area_weight[..., None] * -np.expm1(-exponent)
