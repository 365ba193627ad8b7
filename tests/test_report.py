"""report: one self-contained HTML file that renders offline, checked in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import INSTANCES, ROOT

from layerdef.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT = ROOT / "docs" / "report-korea.png"


@pytest.fixture(scope="module")
def korea_report(tmp_path_factory):
    directory = tmp_path_factory.mktemp("report")
    plan = directory / "plan.json"
    assert CliRunner().invoke(main, ["solve", "-q", str(INSTANCES / "korea-2025.yaml"), "-o", str(plan)]).exit_code == 0
    report = directory / "report.html"
    result = CliRunner().invoke(main, ["report", str(plan), "-o", str(report), "--png", str(directory / "png")])
    assert result.exit_code == 0, result.output
    return directory, report


def test_report_is_self_contained(korea_report):
    directory, report = korea_report
    text = report.read_text()
    for section in ("map", "coverage", "timeline", "moves", "compare"):
        assert f'<section id="{section}">' in text
    assert text.count('<div class="map"') == 11
    references = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)', text)
    assert not [r for r in references if not r.startswith(("#", "data:"))], references
    assert "public and notional" in text
    pngs = sorted(p.name for p in (directory / "png").glob("*.png"))
    assert "coverage.png" in pngs and "timeline.png" in pngs and "map-2025-06.png" in pngs


def test_report_needs_the_instance_when_its_path_is_gone(tmp_path):
    """A solution whose recorded instance path is gone: exit 2 naming --instance, and the
    report once it is given (a textbook instance: the rule is the same for every size)."""
    instance = INSTANCES / "textbook" / "move-beats-staying.yaml"
    plan = tmp_path / "solved.json"
    assert CliRunner().invoke(main, ["solve", "-q", str(instance), "-o", str(plan)]).exit_code == 0
    moved = tmp_path / "plan.json"
    moved.write_text(plan.read_text().replace(str(instance.resolve()), "/nowhere/instance.yaml"))
    result = CliRunner().invoke(main, ["report", str(moved), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "--instance" in result.output
    result = CliRunner().invoke(main, ["report", str(moved), "-o", str(tmp_path / "r.html"),
                                       "--instance", str(instance)])
    assert result.exit_code == 0 and (tmp_path / "r.html").exists()


def test_report_renders_offline_in_headless_chromium(korea_report, tmp_path):
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it with apt-get)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (the dev extra) is not installed")
    _, report = korea_report
    requests, errors = [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1200, "height": 1600})
        page.on("request", lambda request: requests.append(request.url))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(report.as_uri())
        page.wait_for_load_state("load")
        for selector in ("#map .map svg", "#coverage svg", "#timeline svg"):
            assert page.locator(selector).first.is_visible(), selector
        visible = page.locator("#map .map:visible")
        assert visible.count() == 1 and visible.get_attribute("data-period") == "0"
        page.select_option("#period", "4")
        assert page.locator("#map .map:visible").get_attribute("data-period") == "4"
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=False)
        browser.close()
    assert requests == [report.as_uri()], requests
    assert errors == []
    assert shot.stat().st_size > 10_000
    if os.environ.get("LAYERDEF_UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copy(shot, SCREENSHOT)


def test_the_report_template_escapes_what_the_user_wrote(small_document, tmp_path):
    """The page comes from a Jinja2 template with autoescape: a name or description with markup
    is shown as text, never run."""
    from conftest import load_document

    from layerdef.report.html import write_report
    from layerdef.solve import solve

    small_document["name"] = "<b>bold</b>"
    small_document["description"] = "<script>alert(1)</script>"
    inst = load_document(small_document, tmp_path)
    plan = solve(inst)
    plan.write(tmp_path / "plan.json")
    write_report(tmp_path / "report.html", inst, plan, str(tmp_path / "plan.json"))
    page = (tmp_path / "report.html").read_text()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "layerdef: &lt;b&gt;bold&lt;/b&gt;" in page


def test_a_theater_across_the_antimeridian_is_mapped_in_one_piece(tmp_path):
    """Sites at 179.9 E and 179.9 W stand 0.2 degrees apart on the map, not 360: the map's
    longitudes are unwrapped around the theater's middle, the coastline copied a turn over
    where that brings it onto the map, the ticks labelled east and west."""
    import yaml

    from layerdef.io.generate import generate_document
    from layerdef.io.reader import load
    from layerdef.report.html import _longitude_label, map_frame, unwrap_longitudes

    document = generate_document(12, 6, 4, 2, seed=5, threats=2, headings=4)
    middle = np.median([row["lon"] for row in document["sites"]])
    for table in ("sites", "positions", "threats"):
        lon = np.array([row["lon"] for row in document[table]], dtype=float)
        for row, moved in zip(document[table], unwrap_longitudes(lon - middle + 180.0, 0.0)):
            row["lon"] = float(moved)
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    inst = load(tmp_path / "g.yaml")
    assert inst.site_lon.min() < -170 and inst.site_lon.max() > 170  # both sides of the line
    frame = map_frame(inst)
    assert frame.east - frame.west < 20
    assert np.allclose(unwrap_longitudes(frame.site_lon, 0.0), inst.site_lon)
    assert abs(abs(frame.middle) - 180) < 10
    assert [_longitude_label(x) for x in (179.5, 180.0, 180.5, 0.0, -3.25)] == \
        ["179.5°E", "180°", "179.5°W", "0°", "3.25°W"]


def test_the_criticality_chart_says_a_withdrawal_no_reaction_survives():
    """A set whose reaction is infeasible has no loss to draw: the chart says so where its
    bar would be, instead of drawing the worst set as harmless."""
    import pandas as pd

    from layerdef.report.html import criticality_figure

    table = pd.DataFrame({"withdrawn": ["u001", "u002"], "coverage": [None, 90.0], "loss": [None, 10.0],
                          "current_coverage": [50.0, 80.0], "current_loss": [50.0, 20.0],
                          "status": ["infeasible", "optimal"], "gap": [None, 0.0]})
    figure = criticality_figure(table)
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert texts == ["plan: infeasible (no reaction meets every requirement)"]
