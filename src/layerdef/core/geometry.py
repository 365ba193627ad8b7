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


def initial_bearing_deg(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Initial great-circle bearing in degrees [0, 360), clockwise from north, from every point
    of set 1 (rows) towards every point of set 2 (columns)."""
    phi1, phi2 = np.radians(lat1)[:, None], np.radians(lat2)[None, :]
    dlambda = np.radians(lon2)[None, :] - np.radians(lon1)[:, None]
    y = np.sin(dlambda) * np.cos(phi2)
    x = np.cos(phi1) * np.sin(phi2) - np.sin(phi1) * np.cos(phi2) * np.cos(dlambda)
    return np.mod(np.degrees(np.arctan2(y, x)), 360.0)


#: a bearing this close to a sector's edge (degrees) counts as inside: both bounds are included
SECTOR_EDGE_DEG = 1e-9


def angular_offset(angle: np.ndarray, other: np.ndarray) -> np.ndarray:
    """How far apart two directions are, in degrees [0, 180]."""
    return np.abs(np.mod(np.asarray(angle, float) - np.asarray(other, float) + 180.0, 360.0) - 180.0)


def within_sector(bearing: np.ndarray, heading: np.ndarray, sector: float) -> np.ndarray:
    """Whether `bearing` lies within `sector / 2` of `heading` (degrees), both bounds included;
    a sector of 360 or more sees every direction."""
    if sector >= 360.0:
        return np.ones(np.broadcast(bearing, heading).shape, dtype=bool)
    return angular_offset(bearing, heading) <= sector / 2.0 + SECTOR_EDGE_DEG


def heading_index(value, degrees: np.ndarray) -> int | None:
    """The index of a heading given in degrees among `degrees` (`heading_degrees`); -1 when none
    is given (None, NaN or blank), None when it is not one of them."""
    if value is None or value == "" or (isinstance(value, float) and np.isnan(value)):
        return -1
    try:
        angle = float(value)
    except (TypeError, ValueError):
        return None
    close = np.nonzero(angular_offset(angle, degrees) < 1e-6)[0]
    return int(close[0]) if len(close) else None


def heading_degrees(headings: int) -> np.ndarray:
    """(H,) the headings a sector-limited unit may face: 0, 360/H, ... degrees."""
    return 360.0 * np.arange(headings) / headings


def facing_array(position_lat: np.ndarray, position_lon: np.ndarray, threat_lat: np.ndarray,
                 threat_lon: np.ndarray, system_sector: np.ndarray, headings: int) -> np.ndarray:
    """(K, P, H, G) bool: system k standing at p and facing heading h sees launch area g (its
    bearing from p within the sector); a system that sees every direction has heading 0 only."""
    bearing = initial_bearing_deg(position_lat, position_lon, threat_lat, threat_lon)  # (P, G)
    degrees = heading_degrees(headings)
    out = np.zeros((len(system_sector), len(position_lat), headings, len(threat_lat)), dtype=bool)
    for k, sector in enumerate(system_sector):
        if sector >= 360.0:
            out[k, :, 0, :] = True
        else:
            out[k] = within_sector(bearing[:, None, :], degrees[None, :, None], float(sector))
    return out
