"""A seeded slice of the fuzz campaign (`tests/fuzz/campaign.py`): hostile mutations of
generated and textbook instances through the CLI, with no exit 1, no traceback, no input written
over and no exit 4 where a plan exists."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fuzz"))
from campaign import counts, run_case  # noqa: E402

SEEDS = range(0, 40)


@pytest.fixture(scope="module")
def outcomes():
    return [run_case(seed) for seed in SEEDS]


def test_the_slice_has_no_findings(outcomes):
    findings = [(o["seed"], o["mutations"], o["findings"]) for o in outcomes if o["findings"]]
    assert not findings


def test_the_slice_reaches_every_stage(outcomes):
    """The slice is not all rejected at validation: plans are made, shown and compared, and
    bad input, infeasibility and usage errors are met too."""
    table = counts(outcomes)
    assert table["validate"].get("2", 0) > 0 and table["validate"].get("0", 0) > 10
    assert table["solve"].get("0", 0) > 5 and table["compare"].get("0", 0) > 5
    assert table["solve"].get("3", 0) > 0
