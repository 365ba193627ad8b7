"""Synthetic theaters with the structure of a real one, reproducible from a seed.

Sites come in clusters (a capital region, bases, ports), positions stand near sites, two
owners share some positions, most units are lower-tier batteries with a few upper-tier
ones (one fixed), some units are away for a range of periods, two substitute offers exist,
and a few requirements are set where an ever-present unit already covers the site, so the
current posture meets them and every generated instance is feasible."""

from __future__ import annotations

from typing import Any

import numpy as np

from layerdef.core.geometry import facing_array, haversine_km
from layerdef.io.catalog import load_catalog

CENTER = (36.3, 127.8)  # a theater about 500 km across


SPREAD_DEG = 1.8


OWNERS = ("BLUE", "GREEN")


LOWER_TIER = (("PAC-3", "BLUE"), ("PAC-2", "BLUE"), ("KM-SAM", "GREEN"))


UPPER_TIER = (("THAAD", "BLUE"), ("L-SAM", "GREEN"))


def generate_document(sites: int, positions: int, units: int, periods: int, seed: int,
                      threats: int = 0, headings: int = 1) -> dict[str, Any]:
    """An instance document (format v1, tables inline) that validates by construction; with
    `threats` launch areas (equal shares, spread over 80 degrees around north of the theater,
    about 300 km from its middle), Patriot radars of 120 degrees facing one of `headings`, and a
    week out of action after a Patriot move."""
    rng = np.random.default_rng(seed)
    site_rows, site_lat, site_lon = _sites(rng, sites)
    position_rows, position_lat, position_lon = _positions(rng, positions, site_lat, site_lon)
    labels = [f"{2026 + t // 12}-{t % 12 + 1:02d}" for t in range(periods)]
    unit_rows = _units(rng, units, position_rows, labels)
    threat_rows = _threats(threats, site_lat, site_lon) if threats else []
    _requirements(site_rows, site_lat, site_lon, position_rows, position_lat, position_lon, unit_rows,
                  threat_rows, headings)
    offers = [
        {"id": "rotation-pac3", "system": "PAC-3", "owner": "BLUE", "source": "synthetic",
         "count": 2, "earliest": labels[min(1, periods - 1)], "min_periods": min(2, periods),
         "max_periods": min(4, periods), "cost": 1.0},
        {"id": "rotation-cap", "system": "FIGHTER-CAP", "owner": "BLUE", "source": "synthetic",
         "count": 1, "earliest": labels[0], "min_periods": 1, "max_periods": min(3, periods),
         "cost": 0.8},
    ]
    document = {
        "layerdef": 1,
        "name": f"synthetic-s{sites}-p{positions}-u{units}-t{periods}-seed{seed}",
        "description": "Synthetic theater made by `layerdef generate` (notional, no real data).",
        "horizon": {"start": "2026-01", "periods": periods},
        "layers": {"upper": {"weight": 1.0}, "lower": {"weight": 1.0}, "air": {"weight": 0.5}},
        "depth_weights": [1.0, 0.35, 0.1],
        "sites": site_rows, "positions": position_rows, "units": unit_rows, "substitutes": offers,
        "limits": {"substitute_budget": 6.0, "moves_per_period": max(2, units // 10),
                   "moves_total": max(4, units // 2)},
        "objective": "coverage",
    }
    if threats:
        document["name"] += f"-g{threats}-h{headings}"
        document["threats"] = threat_rows
        document["headings"] = headings
        # a system named here replaces the catalog's: keep its radii and kill probabilities,
        # so that `value: kill-probability` on a generated theater needs nothing more
        catalog = load_catalog()
        document["systems"] = {name: {**{key: dict(catalog[name][key]) for key in ("covers", "pk")
                                         if key in catalog[name]},
                                      "sector": 120, "relocation_days": 7} for name in ("PAC-3", "PAC-2")}
    return document


def _threats(count: int, site_lat: np.ndarray, site_lon: np.ndarray) -> list[dict[str, Any]]:
    """Launch areas about 300 km from the middle of the sites, spread over 80 degrees around
    north, equal shares."""
    lat0, lon0 = float(site_lat.mean()), float(site_lon.mean())
    bearings = np.radians(np.linspace(-40, 40, count)) if count > 1 else np.zeros(1)
    rows = []
    for g, bearing in enumerate(bearings):
        lat = float(np.clip(lat0 + 2.7 * np.cos(bearing), -89, 89))
        lon = float(lon0 + 2.7 * np.sin(bearing) / max(np.cos(np.radians(lat0)), 0.1))
        rows.append({"id": f"g{g}", "lat": round(lat, 4), "lon": round((lon + 180) % 360 - 180, 4),
                     "share": round(1.0 / count, 12) if g < count - 1 else round(1.0 - (count - 1) * round(1.0 / count, 12), 12)})
    return rows


def _sites(rng: np.random.Generator, count: int):
    clusters = max(1, count // 25)
    centers = np.column_stack([CENTER[0] + rng.uniform(-SPREAD_DEG, SPREAD_DEG, clusters),
                               CENTER[1] + rng.uniform(-SPREAD_DEG, SPREAD_DEG, clusters)])
    which = rng.integers(0, clusters, count)
    lat = np.clip(centers[which, 0] + rng.normal(0, 0.2, count), -89, 89).round(4)
    lon = np.clip(centers[which, 1] + rng.normal(0, 0.25, count), -179, 179).round(4)
    weight = np.clip(np.round(rng.lognormal(1.0, 0.6, count)), 1, 10)
    rows = [{"id": f"s{i:04d}", "lat": float(lat[i]), "lon": float(lon[i]), "weight": float(weight[i])}
            for i in range(count)]
    return rows, lat, lon


def _positions(rng: np.random.Generator, count: int, site_lat: np.ndarray, site_lon: np.ndarray):
    near = rng.integers(0, len(site_lat), count)
    lat = np.clip(site_lat[near] + rng.normal(0, 0.08, count), -89, 89).round(4)
    lon = np.clip(site_lon[near] + rng.normal(0, 0.1, count), -179, 179).round(4)
    rows = []
    for i in range(count):
        draw = rng.random()
        hosts = [OWNERS[0]] if draw < 0.5 else [OWNERS[1]] if draw < 0.8 else list(OWNERS)
        rows.append({"id": f"p{i:04d}", "lat": float(lat[i]), "lon": float(lon[i]),
                     "capacity": int(rng.integers(1, 4)), "hosts": hosts})
    return rows, lat, lon


def _units(rng: np.random.Generator, count: int, positions: list[dict], labels: list[str]):
    room = {row["id"]: row["capacity"] for row in positions}
    rows = []
    for i in range(count):
        upper = i % 10 == 0
        system, owner = (UPPER_TIER[(i // 10) % 2] if upper
                         else LOWER_TIER[int(rng.integers(0, len(LOWER_TIER)))])
        admitting = [row["id"] for row in positions if owner in row["hosts"]]
        if not admitting:  # every position of the other owner: open one to both
            positions[int(rng.integers(0, len(positions)))]["hosts"] = list(OWNERS)
            admitting = [row["id"] for row in positions if owner in row["hosts"]]
        free = [p for p in admitting if room[p] > 0]
        home = free[int(rng.integers(0, len(free)))] if free else admitting[int(rng.integers(0, len(admitting)))]
        if room[home] <= 0:
            next(row for row in positions if row["id"] == home)["capacity"] += 1
        else:
            room[home] -= 1
        row = {"id": f"u{i:03d}", "system": system, "owner": owner, "home": home,
               "fixed": bool(i == 0)}
        if i > 0 and rng.random() < 0.2 and len(labels) > 1:
            first = int(rng.integers(0, len(labels)))
            last = int(rng.integers(first, len(labels)))
            row["away"] = [[labels[first], labels[last]]]
        rows.append(row)
    return rows


def _requirements(sites, site_lat, site_lon, positions, position_lat, position_lon, units,
                  threats: list[dict[str, Any]] = (), headings: int = 1) -> None:
    """Require one lower-tier unit at a few sites that an ever-present unit covers from home
    (against every launch area: a Patriot only where one of its headings sees them all)."""
    catalog = load_catalog()
    index = {row["id"]: i for i, row in enumerate(positions)}
    distance = haversine_km(position_lat, position_lon, site_lat, site_lon)
    sees_all = np.ones(len(positions), dtype=bool)
    if threats:
        facing = facing_array(position_lat, position_lon, np.array([t["lat"] for t in threats]),
                              np.array([t["lon"] for t in threats]), np.array([120.0]), headings)
        sees_all = facing[0].all(axis=2).any(axis=1)  # (P,): some heading sees every area
    wanted = max(1, len(sites) // 50)
    for unit in units:
        if wanted == 0:
            break
        radius = catalog[unit["system"]]["covers"].get("lower")
        if "away" in unit or radius is None:
            continue
        if threats and unit["system"] in ("PAC-3", "PAC-2") and not sees_all[index[unit["home"]]]:
            continue
        covered = np.nonzero(distance[index[unit["home"]]] <= radius)[0]
        fresh = [s for s in covered if "require" not in sites[s]]
        if fresh:
            sites[fresh[0]]["require"] = {"lower": 1}
            wanted -= 1
