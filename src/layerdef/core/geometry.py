"""Great-circle distances and the boolean coverage array the model and the evaluator share,
computed from arrays (no Instance: the Instance calls this for its `cover`)."""

from __future__ import annotations

import numpy as np

EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Great-circle distance in km between every point of set 1 (rows) and of set 2 (columns)."""
    phi1, phi2 = np.radians(lat1)[:, None], np.radians(lat2)[None, :]
    dphi = phi2 - phi1
    dlambda = np.radians(lon2)[None, :] - np.radians(lon1)[:, None]
    a = np.sin(dphi / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def coverage_array(position_lat: np.ndarray, position_lon: np.ndarray, site_lat: np.ndarray,
                   site_lon: np.ndarray, system_radius: np.ndarray) -> np.ndarray:
    """(K, P, S, L) bool: system k standing at position p covers site s in layer l, the site
    within the system's radius (km, nan where it does not cover the layer)."""
    distance = haversine_km(position_lat, position_lon, site_lat, site_lon)  # (P, S)
    radius = np.nan_to_num(system_radius, nan=-1.0)  # (K, L); -1: does not cover
    return distance[None, :, :, None] <= radius[:, None, None, :]
