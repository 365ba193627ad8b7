"""Great-circle distances and the boolean coverage array the model and the evaluator share."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from layerdef.core.instance import Instance


EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Great-circle distance in km between every point of set 1 (rows) and of set 2 (columns)."""
    phi1, phi2 = np.radians(lat1)[:, None], np.radians(lat2)[None, :]
    dphi = phi2 - phi1
    dlambda = np.radians(lon2)[None, :] - np.radians(lon1)[:, None]
    a = np.sin(dphi / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def coverage_array(instance: "Instance") -> np.ndarray:
    """(K, P, S, L) bool: system k standing at position p covers site s in layer l.

    An explicit coverage table (terrain, line of sight) replaces the radii when given.
    """
    if instance.explicit_coverage is not None:
        return instance.explicit_coverage
    distance = haversine_km(instance.position_lat, instance.position_lon,
                            instance.site_lat, instance.site_lon)  # (P, S)
    radius = np.nan_to_num(instance.system_radius, nan=-1.0)  # (K, L); -1: does not cover
    return distance[None, :, :, None] <= radius[:, None, None, :]


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
