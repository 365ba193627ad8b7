"""The benchmarks' peers get the model layerdef solves: the MPS that `benchmarks/peers.py`
writes, solved by HiGHS alone (and by SCIP where pyscipopt is installed), reaches the
coverage `layerdef.solve` proves, on textbook instances (launch areas and headings among them) and Korea."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import INSTANCES

import layerdef

PEERS = Path(__file__).resolve().parents[1] / "benchmarks" / "peers.py"


def peer(path: Path, solver: str) -> dict:
    done = subprocess.run([sys.executable, str(PEERS), str(path), "--solver", solver, "--time-limit", "60"],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", ["textbook/move-beats-staying.yaml", "textbook/substitute-worth.yaml",
                                  "textbook/threats-must-turn.yaml", "korea-2025.yaml"])
def test_highs_alone_reaches_the_coverage_layerdef_proves(name):
    path = INSTANCES / name
    ours = layerdef.solve(layerdef.load(path)).objective["coverage"]
    found = peer(path, "highs")
    assert found["status"] == "optimal"
    # the peer's own plan, evaluated by our coverage vector: alternative optima may differ
    # in cost or moves, never in coverage beyond HiGHS's tolerances
    assert found["objective"] == pytest.approx(ours, abs=1e-3 * max(1.0, ours))
    assert found["bound"] >= found["objective"] - 1e-6


def test_scip_reaches_it_too():
    pytest.importorskip("pyscipopt")
    path = INSTANCES / "textbook" / "move-beats-staying.yaml"
    found = peer(path, "scip")
    assert found["status"] == "optimal"
    assert found["objective"] == pytest.approx(layerdef.solve(layerdef.load(path)).objective["coverage"], rel=1e-3)
