"""Scoring a posture's counts: units covering each site and layer, and what they are worth by
the depth weights. Shared by the evaluator, the model, the greedy search and the report."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from layerdef.core.instance import Instance


def covering_units(instance: "Instance", standing: np.ndarray) -> np.ndarray:
    """(S, L, T) units covering each site in each layer, from `standing[p, k, t]` counts."""
    return np.tensordot(instance.cover.astype(np.int64), standing, axes=([0, 1], [1, 0]))


def site_layer_weight(instance: "Instance") -> np.ndarray:
    """(S, L): site weight x layer weight, what a full depth level of (s, l) is worth."""
    return instance.site_weight[:, None] * instance.layer_weight[None, :]


def level_values(instance: "Instance") -> np.ndarray:
    """(S, L, J): v[s, l, j] = w_s a_l d_j, the value of the j-th unit covering s in l."""
    return site_layer_weight(instance)[:, :, None] * instance.depth_weights[None, None, :]


def cumulative_levels(instance: "Instance") -> np.ndarray:
    """(J + 1,): the depth weights of the first 0, 1, .., J covering units, summed."""
    return np.concatenate([[0.0], np.cumsum(instance.depth_weights)])


def coverage_value(instance: "Instance", units: np.ndarray) -> np.ndarray:
    """(S, L, T) value of `units` covering each site in each layer: site weight x layer weight
    x the depth weights of the first min(units, J) levels."""
    depth = cumulative_levels(instance)[np.minimum(units, len(instance.depth_weights))]
    return site_layer_weight(instance)[:, :, None] * depth
