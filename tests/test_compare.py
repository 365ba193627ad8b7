"""compare: reference vs current vs plans, figures equal to evaluate's, other instances refused."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import INSTANCES

import layerdef
from layerdef.cli import main
from layerdef.report.compare import compare

TEXTBOOK = INSTANCES / "textbook"


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    directory = tmp_path_factory.mktemp("plans")
    path = directory / "worth.json"
    inst = layerdef.load(TEXTBOOK / "substitute-worth.yaml")
    layerdef.solve(inst).write(path)
    other = directory / "depth.json"
    layerdef.solve(layerdef.load(TEXTBOOK / "depth.yaml")).write(other)
    return inst, path, other


def test_figures_equal_evaluate(plans):
    inst, path, _ = plans
    result = compare(inst, [(str(path), layerdef.Solution.read(path))])
    assert result.names == ["reference", "current", "worth"]
    by_period = result.by_period
    plan = layerdef.evaluate(inst, layerdef.Solution.read(path).posture)
    assert by_period["worth"].tolist() == pytest.approx(plan.value_by_period.tolist())
    assert by_period["current"].tolist() == pytest.approx(
        layerdef.evaluate(inst, inst.current_posture()).value_by_period.tolist())
    assert by_period["worth"].tolist() == [5.0, 8.0, 8.0]
    rows = result.plans.set_index("posture")
    assert rows.loc["worth", "coverage"] == pytest.approx(21.0)
    assert rows.loc["worth", "substitute_cost"] == pytest.approx(2.0)
    assert rows.loc["worth", "substitutes"] == "sub#1 2..3"
    assert rows.loc["current", "coverage"] == pytest.approx(15.0)
    tidy = result.long
    assert set(tidy["posture"]) == {"reference", "current", "worth"}
    assert tidy[tidy["posture"] == "worth"]["value"].sum() == pytest.approx(21.0)


def test_losses_are_located_by_site_and_periods():
    inst = layerdef.load(TEXTBOOK / "min-cost-no-substitute.yaml")
    result = compare(inst, [])
    table = result.by_site.set_index(["site", "layer"])
    assert table.loc[("b", "lower"), "current_below_reference"] == "2"
    assert table.loc[("a", "lower"), "current_below_reference"] == ""


@pytest.mark.parametrize("fmt", ["text", "markdown", "csv", "json"])
def test_cli_formats(plans, fmt, tmp_path):
    _, path, _ = plans
    result = CliRunner().invoke(main, ["compare", str(TEXTBOOK / "substitute-worth.yaml"), str(path),
                                       "--format", fmt])
    assert result.exit_code == 0, result.output
    if fmt == "json":
        assert set(json.loads(result.output)) == {"plans", "by_period", "by_site"}
    if fmt == "csv":
        out = tmp_path / "c.csv"
        out.write_text(result.output)
        assert list(pd.read_csv(out).columns) == ["posture", "period", "site", "layer", "units", "value",
                                                  "required", "shortfall"]


def test_plan_from_another_instance_is_refused(plans):
    _, _, other = plans
    result = CliRunner().invoke(main, ["compare", str(TEXTBOOK / "substitute-worth.yaml"), str(other)])
    assert result.exit_code == 2
    assert "depth.json" in result.output and "sha256" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("status, gap, kind, expected", [
    ("optimal", 0.0, "coverage", ""),
    ("optimal", 0.00063, "coverage", " within the gap asked for (0.063%)"),
    ("time_limit", None, "coverage", ", gap unknown (no bound yet)"),
    ("time_limit", 0.0, "coverage", ", coverage proven optimal (a later tie-break stopped at the time limit)"),
    ("time_limit", 0.0, "min-cost", ", substitute cost proven optimal (a later tie-break stopped at the time limit)"),
    ("time_limit", 0.0123, "coverage", ", gap 1.230%"),
])
def test_the_headline_says_how_far_a_cut_short_plan_may_be(status, gap, kind, expected):
    """A plan stopped at the time limit with its first objective proven reads as such, not as
    "gap 0.000%" beside time_limit; without a bound the gap is unknown, for hedged plans too."""
    from types import SimpleNamespace

    from layerdef.report.text import _gap_text

    assert _gap_text(SimpleNamespace(status=status, gap=gap, objective_kind=kind)) == expected
