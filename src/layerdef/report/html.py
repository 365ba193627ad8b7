"""The planner's report: one self-contained, offline HTML file, and PNGs for slides.

Figures are drawn once with matplotlib and embedded as inline SVG (text as paths, so no font
or any other request leaves the page); the same figures are written as PNG with `--png`.
The map shows the coastline (Natural Earth, shipped in `data/coastline.json`), sites sized by
weight and coloured by coverage, positions with the units standing there and each unit's
coverage rings per layer, for every period (a selector shows one at a time). Then coverage
per period for plan, current and reference; a timeline of units away and substitutes on
station; the moves; and the tables of `compare`."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from layerdef.core.evaluate import Evaluation
from layerdef.core.instance import Instance, period_runs
from layerdef.core.scoring import level_values
from layerdef.errors import Problem, UsageError
from layerdef.io.solution import Solution
from layerdef.report.compare import Comparison, compare
from layerdef.report.text import NOTICE

KM_PER_DEGREE = 111.32


LAYER_COLOURS = ["#7b3294", "#d7191c", "#2c7bb6", "#1a9641", "#fdae61"]




@lru_cache(maxsize=1)
def coastline() -> list[np.ndarray]:
    """Coastline polylines (lon, lat) from the shipped Natural Earth extract."""
    text = resources.files("layerdef").joinpath("data/coastline.json").read_text(encoding="utf-8")
    return [np.array(line) for line in json.loads(text)["lines"]]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "path"
    import matplotlib.pyplot as plt

    return plt


def _sector(lat: float, lon: float, radius_km: float, heading: float,
            sector: float) -> tuple[np.ndarray, np.ndarray]:
    """(lon, lat) outline of a radar's sector toward its heading (small-distance projection)."""
    bearings = np.radians(np.linspace(heading - sector / 2, heading + sector / 2, 25))
    north = radius_km * np.cos(bearings) / KM_PER_DEGREE
    east = radius_km * np.sin(bearings) / (KM_PER_DEGREE * np.cos(np.radians(lat)))
    return np.concatenate([[lon], lon + east, [lon]]), np.concatenate([[lat], lat + north, [lat]])


@dataclass(frozen=True)
class MapFrame:
    """Longitudes of the theater unwrapped around its middle, so that a theater across the
    antimeridian is drawn as one piece (179.9 E and 179.9 W side by side, not 360 degrees
    apart), with the map's bounds and a margin."""

    middle: float
    site_lon: np.ndarray
    position_lon: np.ndarray
    threat_lon: np.ndarray
    west: float
    east: float
    south: float
    north: float
    coast: list[np.ndarray]  # the coastline polylines on the map (`_coastline_near`)


def unwrap_longitudes(lon: np.ndarray, middle: float) -> np.ndarray:
    """`lon` moved by whole turns to within 180 degrees of `middle`."""
    return middle + (np.asarray(lon, dtype=float) - middle + 180.0) % 360.0 - 180.0


def map_frame(instance: Instance) -> MapFrame:
    """The frame every map of the theater shares: the circular mean of the longitudes of sites,
    positions and launch areas as the middle, the bounds, the coastline near them."""
    lon = np.concatenate([instance.site_lon, instance.position_lon, instance.threat_lon])
    lat = np.concatenate([instance.site_lat, instance.position_lat, instance.threat_lat])
    radians = np.radians(lon)
    middle = float(np.degrees(np.arctan2(np.sin(radians).mean(), np.cos(radians).mean())))
    flat = unwrap_longitudes(lon, middle)
    margin_lat = max(0.3, 0.08 * (lat.max() - lat.min()))
    margin_lon = max(0.3, 0.08 * (flat.max() - flat.min()))
    site, position, threat = np.split(flat, np.cumsum([len(instance.site_lon), len(instance.position_lon)]))
    west, east = float(flat.min() - margin_lon), float(flat.max() + margin_lon)
    return MapFrame(middle, site, position, threat, west, east,
                    float(lat.min() - margin_lat), float(lat.max() + margin_lat),
                    _coastline_near(west, east))


def _longitude_label(lon: float) -> str:
    """An unwrapped longitude as a map reads it: within 180 degrees, east or west."""
    wrapped = float(unwrap_longitudes(lon, 0.0))
    side = "" if wrapped in (0.0, -180.0) else "E" if wrapped > 0 else "W"
    return f"{abs(wrapped):g}°{side}"


def _coastline_near(west: float, east: float) -> list[np.ndarray]:
    """The coastline polylines near the map's longitudes, each copied a turn east or west where
    that brings it onto the map (the shipped lines are cut at the antimeridian)."""
    near = []
    for line in coastline():
        for turn in (-360.0, 0.0, 360.0):
            lon = line[:, 0] + turn
            if lon.max() >= west - 5 and lon.min() <= east + 5:
                near.append(np.column_stack([lon, line[:, 1]]))
    return near


def map_figure(instance: Instance, frame: MapFrame, plan: Evaluation, posture: pd.DataFrame,
               period: int):
    """The theater in one period: coastline, sites, positions with their units, rings (a
    sector toward its heading for a radar that faces one), launch areas."""
    plt = _pyplot()
    from matplotlib.patches import Ellipse

    west, east, south, north = frame.west, frame.east, frame.south, frame.north
    middle = np.radians((south + north) / 2)
    ratio = (north - south) / max((east - west) * np.cos(middle), 1e-6)
    figure, axes = plt.subplots(figsize=(8, float(np.clip(8 * ratio, 4, 12))))
    axes.set_aspect(1 / np.cos(middle))
    for line in frame.coast:
        axes.plot(line[:, 0], line[:, 1], color="#8c8c8c", linewidth=0.7)
    label = instance.periods[period]
    here = posture[posture["period"] == label]
    system_of = _systems_of(instance)
    position_index = {p: i for i, p in enumerate(instance.position_ids)}
    headings = here["heading"] if "heading" in here else [np.nan] * len(here)
    for unit, position, heading in zip(here["unit"], here["position"], headings):
        p = position_index[position]
        k = system_of[unit]
        for l, radius in enumerate(instance.system_radius[k]):
            if not (np.isfinite(radius) and radius > 0):
                continue
            colour = LAYER_COLOURS[l % len(LAYER_COLOURS)]
            if instance.sector_limited[k] and heading == heading:  # its sector toward its heading
                axes.fill(*_sector(instance.position_lat[p], frame.position_lon[p], radius,
                                   float(heading), float(instance.system_sector[k])),
                          facecolor=colour, alpha=0.08, edgecolor=colour, linewidth=0.6,
                          linestyle="--")
            else:
                axes.add_patch(Ellipse(
                    (frame.position_lon[p], instance.position_lat[p]),
                    2 * radius / (KM_PER_DEGREE * np.cos(np.radians(instance.position_lat[p]))),
                    2 * radius / KM_PER_DEGREE, fill=False, linewidth=0.6, alpha=0.55,
                    linestyle="--", edgecolor=colour))
    for g, threat in enumerate(instance.threat_ids):
        axes.scatter([frame.threat_lon[g]], [instance.threat_lat[g]], marker="^", s=60,
                     color="#b2182b", zorder=4)
        axes.annotate(f"{threat} ({instance.threat_share[g]:.0%})",
                      (frame.threat_lon[g], instance.threat_lat[g]), fontsize=6,
                      xytext=(4, -8), textcoords="offset points", color="#b2182b", zorder=5)
    if plan.defeat_value is None:
        best = level_values(instance).sum(axis=(1, 2, 3))  # (S,): every depth level filled
        share = plan.value[..., period].sum(axis=(1, 2)) / np.maximum(best, 1e-12)
        label = "site coverage (share of the most possible)"
    else:  # the value-weighted probability of defeat over classes and launch areas
        best = instance.class_area_weight.sum(axis=(1, 2))
        share = plan.defeat_value[..., period].sum(axis=(1, 2)) / np.maximum(best, 1e-12)
        label = "probability of defeat (value-weighted over classes and launch areas)"
    points = axes.scatter(frame.site_lon, instance.site_lat, s=12 + 14 * instance.site_weight,
                          c=share, cmap="RdYlGn", vmin=0, vmax=1, edgecolors="black",
                          linewidths=0.4, zorder=3)
    counts = here.groupby("position")["unit"].apply(list)
    for position, units in counts.items():
        p = position_index[position]
        axes.scatter([frame.position_lon[p]], [instance.position_lat[p]], marker="s", s=30,
                     color="black", zorder=4)
        axes.annotate(", ".join(units), (frame.position_lon[p], instance.position_lat[p]),
                      fontsize=5.5, xytext=(3, 3), textcoords="offset points", zorder=5)
    for l, layer in enumerate(instance.layers):
        axes.plot([], [], linestyle="--", color=LAYER_COLOURS[l % len(LAYER_COLOURS)], label=f"{layer} ring")
    axes.legend(loc="lower right", fontsize=7)
    figure.colorbar(points, ax=axes, shrink=0.6, label=label)
    axes.set_xlim(west, east)
    axes.set_ylim(south, north)
    axes.xaxis.set_major_formatter(lambda lon, _: _longitude_label(lon))
    axes.set_title(f"{instance.name}, {label}: plan (squares: positions and units; {NOTICE})", fontsize=8)
    return figure


def coverage_figure(solution: Solution):
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 3.2))
    summary = solution.summary
    x = np.arange(len(summary))
    for column, style in (("reference", "k--"), ("current", "C3-"), ("plan", "C0-")):
        axes.plot(x, summary[column], style, marker="o", markersize=3, label=column)
    axes.set_xticks(x, summary["period"], rotation=45, fontsize=7)
    axes.set_ylabel("coverage value")
    axes.legend(fontsize=8)
    axes.set_title(f"Coverage per period: plan, current and reference ({NOTICE})", fontsize=9)
    figure.tight_layout()
    return figure


def timeline_figure(instance: Instance, plan: Evaluation):
    """Bars of units away (red) and substitutes on station (blue), one row each, as the
    evaluation of the plan's posture finds them (not the solution file's own table)."""
    plt = _pyplot()
    rows: list[tuple[str, int, int, str]] = []
    for u in np.nonzero(~instance.present.all(axis=1))[0]:
        for start, end in period_runs(~instance.present[u]):
            rows.append((f"{instance.unit_ids[u]} (away)", start, end, "#d7191c"))
    index = {label: t for t, label in enumerate(instance.periods)}
    for row in plan.substitutes.itertuples():
        rows.append((f"{row.unit} ({row.offer})", index[row.first], index[row.last], "#2c7bb6"))
    figure, axes = plt.subplots(figsize=(8, 0.8 + 0.32 * max(len(rows), 1)))
    labels = list(dict.fromkeys(r[0] for r in rows))
    for name, start, end, colour in rows:
        axes.barh(labels.index(name), end - start + 1, left=start - 0.5, color=colour, height=0.6)
    axes.set_yticks(range(len(labels)), labels, fontsize=7)
    axes.set_xticks(range(instance.T), instance.periods, rotation=45, fontsize=7)
    axes.set_xlim(-0.5, instance.T - 0.5)
    axes.invert_yaxis()
    axes.set_title("Units away (red) and substitutes on station (blue)", fontsize=9)
    figure.tight_layout()
    return figure


def criticality_figure(table: pd.DataFrame, most: int = 15):
    """Bars of the loss of each withdrawal set, worst first: the plan reacting, and the
    current posture (nobody acts)."""
    plt = _pyplot()
    shown = table.head(most)
    figure, axes = plt.subplots(figsize=(8, 0.8 + 0.3 * max(len(shown), 1)))
    y = np.arange(len(shown))
    axes.barh(y - 0.2, shown["loss"].fillna(0.0), height=0.4, color="#2c7bb6", label="plan, reacting")
    axes.barh(y + 0.2, shown["current_loss"], height=0.4, color="#d7191c", label="current posture")
    axes.set_yticks(y, shown["withdrawn"].str.replace(";", " + "), fontsize=7)
    for row in y[shown["loss"].isna().to_numpy()]:  # no bar: no reaction meets the requirements
        axes.annotate(f"plan: {shown['status'].iloc[row]} (no reaction meets every requirement)",
                      (0, row - 0.2), xytext=(3, 0), textcoords="offset points", va="center",
                      fontsize=7, color="#2c7bb6")
    axes.invert_yaxis()
    axes.set_xlabel("coverage lost")
    axes.legend(fontsize=8)
    axes.set_title(f"Further withdrawals, worst first ({NOTICE})", fontsize=9)
    figure.tight_layout()
    return figure


def _systems_of(instance: Instance) -> dict[str, int]:
    systems = {u: int(k) for u, k in zip(instance.unit_ids, instance.unit_system)}
    return systems | {unit: int(instance.offer_system[f]) for unit, f in instance.substitute_offer.items()}


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, classes="table", float_format=lambda v: f"{v:.4g}",
                         na_rep="")


def figures(instance: Instance, solution: Solution, comparison: Comparison) -> dict:
    plan, frame = comparison.plan, map_frame(instance)
    return {
        "maps": [map_figure(instance, frame, plan, solution.posture, t) for t in range(instance.T)],
        "coverage": coverage_figure(solution),
        "timeline": timeline_figure(instance, plan),
    }


def write_report(path: Path, instance: Instance, solution: Solution, solution_path: str,
                 png_dir: Path | None = None, scenario: str | None = None) -> list[Path]:
    """Draw the figures once; write the HTML report and, when asked, the PNGs. A hedged plan
    is drawn as it plays out in `scenario` (default: the most likely), with a section on every
    scenario and on what hedging is worth."""
    hedged = None
    if scenario is not None and not solution.hedged:
        raise UsageError([Problem(solution_path, "--scenario draws a hedged plan in one of its "
                                     "scenarios; this plan has one posture (score it in a scenario "
                                     "with `layerdef replay` or `layerdef compare --scenario`)")])
    if solution.hedged:
        from layerdef.solve.hedged import most_likely

        scenario = scenario or most_likely(instance)
        hedged, solution = solution, solution.in_scenario(scenario)
    comparison = compare(instance, [(solution_path, hedged or solution)], scenario)
    if scenario is not None:
        instance = instance.in_scenario(scenario)
    drawn = figures(instance, solution, comparison)
    criticality = _criticality_beside(solution_path)
    if criticality is not None:
        drawn["criticality"] = criticality_figure(criticality)
    write_html(path, instance, solution, comparison, drawn, hedged, scenario, criticality)
    written = write_pngs(png_dir, instance, drawn) if png_dir is not None else []
    _pyplot().close("all")
    return written


def _criticality_beside(solution_path: str) -> pd.DataFrame | None:
    """`criticality.csv` in the folder of the solution (`layerdef stress` writes it beside
    robust.json), for the report's chart of further withdrawals."""
    path = Path(solution_path).parent / "criticality.csv"
    return pd.read_csv(path) if path.is_file() else None


def write_html(path: Path, instance: Instance, solution: Solution, comparison: Comparison,
               drawn: dict, hedged: Solution | None = None, scenario: str | None = None,
               criticality: pd.DataFrame | None = None) -> None:
    """The self-contained report (report.html.j2, every value escaped; the figures and tables
    are markup of our own): nothing in it refers to anything outside the file."""
    from layerdef.report.text import scenario_table, value_lines

    plan = comparison.plan
    page = _template().render(
        instance=instance, solution=solution, notice=NOTICE, hedged=hedged, scenario=scenario,
        scenarios=Markup(_table(scenario_table(hedged))) if hedged else "",
        value_lines=value_lines(hedged.values) if hedged and hedged.values else [],
        maps=[Markup(_svg(figure)) for figure in drawn["maps"]],
        coverage=Markup(_svg(drawn["coverage"])), timeline=Markup(_svg(drawn["timeline"])),
        moves=Markup(_table(plan.moves)) if len(plan.moves) else "",
        criticality=Markup(_svg(drawn["criticality"]) + _table(criticality.head(15)))
        if criticality is not None else "",
        postures=Markup(_table(comparison.plans)), by_period=Markup(_table(comparison.by_period)),
        by_site=Markup(_table(comparison.by_site)))
    Path(path).write_text(page + "\n", encoding="utf-8")


@lru_cache(maxsize=1)
def _template():
    environment = jinja2.Environment(loader=jinja2.PackageLoader("layerdef.report", ""),
                                     autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.get_template("report.html.j2")


def write_pngs(directory: Path, instance: Instance, drawn: dict) -> list[Path]:
    """The map of every period, the coverage chart and the timeline as PNG files."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for t, figure in enumerate(drawn["maps"]):
        written.append(directory / f"map-{instance.periods[t]}.png")
        figure.savefig(written[-1], dpi=150, bbox_inches="tight")
    for name in ("coverage", "timeline"):
        written.append(directory / f"{name}.png")
        drawn[name].savefig(written[-1], dpi=150, bbox_inches="tight")
    return written
