"""Studies: the budget frontier, and sweeps locally and on a Dask LocalCluster, with resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from conftest import INSTANCES, load_document
from test_brute_force import random_document

import layerdef
from layerdef.cli import main
from layerdef.studies.frontier import frontier, parse_range
from layerdef.studies.sweep import parse_vary, product_cases, sweep

WORTH = INSTANCES / "textbook" / "substitute-worth.yaml"
VARY = ["limits.substitute_budget=0:2:1", "sites.b.weight=1,3"]


def test_parse_range_and_vary():
    assert parse_range("0:12:4") == [0, 4, 8, 12]
    assert parse_range("1,2.5") == [1.0, 2.5]
    assert parse_vary("units.u1.away=1/2,none") == ("units.u1.away", [[["1", "2"]], []])
    with pytest.raises(layerdef.InstanceError):
        parse_range("5:1:1")


def test_frontier_cli_writes_csv_png_and_marginals(tmp_path):
    result = CliRunner().invoke(main, ["frontier", str(WORTH), "-o", str(tmp_path), "--budgets", "0:3:1", "-q"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "frontier.csv")
    assert table["coverage"].tolist() == [15.0, 18.0, 21.0, 21.0]  # worked by hand: 3 per period of b
    assert (tmp_path / "frontier.png").stat().st_size > 1000
    assert "budget 0 -> 1: +3 coverage" in result.output


def needs_substitute(directory: Path) -> Path:
    """substitute-worth with site b required every period and u1 fixed at a: only the
    substitute, on station all three periods (cost 3), can meet the requirement."""
    document = yaml.safe_load(WORTH.read_text())
    document["sites"][1]["require"] = {"lower": 1}
    document["units"][0]["fixed"] = True
    document["substitutes"][0].update(earliest="1", max_periods=3)
    path = directory / "needs-substitute.yaml"
    path.write_text(yaml.safe_dump(document))
    (directory / document["coverage"]).write_text((WORTH.parent / document["coverage"]).read_text())
    return path


def test_frontier_starts_where_a_plan_exists(tmp_path):
    """Site b must be covered every period and only the substitute (fixed u1 cannot move)
    can: three periods on station cost 3. Budgets below have no plan and are points marked
    infeasible, not the end of the frontier; with no budget that has a plan the command
    explains why (exit 3)."""
    path = needs_substitute(tmp_path)
    table = frontier(layerdef.load(path), [0, 1, 2, 3, 4])
    assert table["status"].tolist() == ["infeasible"] * 3 + ["optimal"] * 2
    assert table["coverage"].isna().tolist() == [True, True, True, False, False]
    assert table["substitute_cost"].tolist()[3:] == [3.0, 3.0]
    result = CliRunner().invoke(main, ["frontier", str(path), "-o", str(tmp_path / "out"),
                                       "--budgets", "0:4:1", "-q"])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(tmp_path / "out" / "frontier.csv")
    assert written["status"].tolist() == table["status"].tolist()
    assert result.output.strip() == "budget 3 -> 4: +0 coverage (0 per unit of budget)"
    result = CliRunner().invoke(main, ["frontier", str(path), "-o", str(tmp_path / "none"),
                                       "--budgets", "0:2:1", "-q"])
    assert result.exit_code == 3 and "requirement not met: site b" in result.output


def test_sweep_summary_has_the_same_columns_whatever_fails_first(tmp_path):
    """A case with no plan is `infeasible` with the explanation in `error`, and the summary's
    columns come in one documented order whether or not the first case failed."""
    path = needs_substitute(tmp_path)
    tables = []
    for budgets in ("0,3", "3,0"):
        output = tmp_path / budgets.replace(",", "-")
        result = CliRunner().invoke(main, ["sweep", str(path), "-o", str(output), "-q",
                                           "--vary", f"limits.substitute_budget={budgets}"])
        assert result.exit_code == 0, result.output
        tables.append(pd.read_csv(output / "summary.csv"))
    expected = ["case", "key", "limits.substitute_budget", "status", "coverage", "substitute_cost",
                "moves", "reference", "current", "gap", "wall_s", "error"]
    assert [table.columns.tolist() for table in tables] == [expected, expected]
    for table in tables:
        infeasible = table[table["limits.substitute_budget"] == 0].iloc[0]
        assert infeasible["status"] == "infeasible" and "requirement not met: site b" in infeasible["error"]
        assert table[table["limits.substitute_budget"] == 3].iloc[0]["status"] == "optimal"


@pytest.mark.parametrize("seed", [1, 4, 9])
def test_frontier_never_falls(seed, tmp_path):
    inst = load_document(random_document(seed, tmp_path), tmp_path)
    if inst.objective != "coverage":
        inst = layerdef.load(WORTH)
    try:
        table = frontier(inst, [0, 1, 2, 3, 4, 6])
    except layerdef.InfeasibleError:
        return
    assert (np.diff(table["coverage"]) >= -1e-9).all()
    assert (table["substitute_cost"] <= table["budget"] + 1e-9).all()


def summary_without_timing(directory):
    table = pd.read_csv(directory / "summary.csv")
    return table.drop(columns=["wall_s"]).sort_values("case").reset_index(drop=True)


def test_sweep_local_resume_and_dask_agree(tmp_path):
    local = tmp_path / "local"
    result = CliRunner().invoke(main, ["sweep", str(WORTH), "-o", str(local), "--workers", "2", "-q",
                                       *sum((["--vary", v] for v in VARY), [])])
    assert result.exit_code == 0, result.output
    summary = summary_without_timing(local)
    assert len(summary) == 6 and (summary["status"] == "optimal").all()
    best = summary.set_index(["limits.substitute_budget", "sites.b.weight"])["coverage"]
    assert best[(2, 3)] == pytest.approx(21.0) and best[(0, 1)] == pytest.approx(15.0)
    results = pd.read_parquet(local / "results.parquet")
    assert len(results) == 6 * 3 and {"case", "period", "plan", "current", "reference"} <= set(results.columns)

    # resume: a case removed is the only one solved again
    removed = sorted((local / "cases").glob("*.json"))[0]
    removed.unlink()
    rerun = CliRunner().invoke(main, ["sweep", str(WORTH), "-o", str(local), *sum((["--vary", v] for v in VARY), [])])
    assert rerun.exit_code == 0
    assert "5 already solved, 1 to run" in rerun.stderr
    pd.testing.assert_frame_equal(summary_without_timing(local), summary)

    distributed = pytest.importorskip("distributed", reason="dask[distributed] (the dev extra) is not installed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        cases = product_cases([parse_vary(v) for v in VARY])
        on_dask = sweep(WORTH, cases, tmp_path / "dask", {"time_limit": None, "gap": 0.0},
                        scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(summary_without_timing(tmp_path / "dask"), summary)
    assert len(on_dask) == 6


def test_bad_cases_are_located_before_anything_runs(tmp_path):
    result = CliRunner().invoke(main, ["sweep", str(WORTH), "-o", str(tmp_path / "s"),
                                       "--vary", "limits.substitute_budget=-1,2", "--vary", "units.ghost.away=1/2"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "case 0 (limits.substitute_budget=-1" in result.output
    assert "no row with id 'ghost'" in result.output
    assert not (tmp_path / "s" / "cases").exists()
    # located in the case and its field, not at a line of the instance file (the case's
    # document is not the file, so its line numbers would point anywhere)
    result = CliRunner().invoke(main, ["sweep", str(WORTH), "-o", str(tmp_path / "s"),
                                       "--vary", "limits.substitute_budget=-1,2"])
    assert result.exit_code == 2
    line = next(row for row in result.output.splitlines() if "substitute_budget: " in row)
    assert line.startswith("case 0 (limits.substitute_budget=-1): limits.substitute_budget: ")
    assert WORTH.name not in line


def test_a_failing_case_is_recorded_and_the_sweep_goes_on(tmp_path):
    infeasible = INSTANCES / "textbook" / "infeasible.yaml"
    result = CliRunner().invoke(main, ["sweep", str(infeasible), "-o", str(tmp_path), "-q",
                                       "--vary", "limits.substitute_budget=0,2"])
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(tmp_path / "summary.csv").sort_values("case")
    assert summary["status"].tolist() == ["infeasible", "optimal"]
    assert "infeasible" in summary["error"].iloc[0] and "site hq" in summary["error"].iloc[0]


def test_a_study_shows_a_bar_on_a_terminal_and_lines_elsewhere(monkeypatch):
    """On a terminal a frontier draws a progress bar; elsewhere (pipes, CI) one log line per
    point, as before."""
    import io
    import sys

    from layerdef.solve import progress_on_stderr
    from layerdef.studies.frontier import frontier

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    inst = layerdef.load(WORTH)
    for terminal in (True, False):
        stream = Terminal() if terminal else io.StringIO()
        monkeypatch.setattr(sys, "stderr", stream)
        with progress_on_stderr(True):
            frontier(inst, [0, 1])
        text = stream.getvalue()
        assert ("frontier: 100%" in text or "frontier:100%" in text.replace(" ", "")) == terminal
        assert ("layerdef: frontier: budget 1" in text) != terminal


def test_a_sweep_script_without_a_main_guard_runs_once(tmp_path):
    """The sweep's workers are fresh interpreters that import only layerdef: with
    multiprocessing's spawn, a script without a `__main__` guard ran again in every worker."""
    import subprocess
    import sys

    (tmp_path / "run.py").write_text(
        "from pathlib import Path\n"
        "from layerdef.studies.sweep import sweep\n"
        "print('top-level ran', flush=True)\n"
        f"table = sweep(Path({str(WORTH)!r}), [{{'limits.substitute_budget': b}} for b in (0, 1, 2)],\n"
        "              Path('out'), {}, workers=2)\n"
        "print('statuses', sorted(set(table['status'])))\n")
    run = subprocess.run([sys.executable, "run.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("top-level ran") == 1 and "statuses ['optimal']" in run.stdout
    assert "Traceback" not in run.stderr
