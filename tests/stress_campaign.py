"""The stress check on many more random instances than the suite runs: `python
tests/stress_campaign.py --first 16 --n 120 [--workers 2]` runs tests/test_stress.py's enumeration check
(criticality rows and the robust plan) on each seed, printing the seeds that disagree; the
README records the last run."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from test_stress import check_against_the_enumeration  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--first", type=int, default=16)
    parser.add_argument("--n", type=int, default=120)
    parser.add_argument("--workers", type=int, default=1,
                        help="2 or more: each round's oracle also runs beside its master's proof")
    arguments = parser.parse_args()
    started, failed, skipped = time.perf_counter(), [], 0
    for seed in range(arguments.first, arguments.first + arguments.n):
        try:
            check_against_the_enumeration(seed, Path(tempfile.mkdtemp(prefix="layerdef-stress-")),
                                          arguments.workers)
        except pytest.skip.Exception:
            skipped += 1
        except Exception as error:  # noqa: BLE001 - every disagreement is listed
            failed.append(seed)
            print(f"seed {seed}: {type(error).__name__}: {str(error)[:300]}", flush=True)
    print(f"{arguments.n - len(failed) - skipped} agree, {skipped} without a movable unit, "
          f"{len(failed)} disagree {failed} in {time.perf_counter() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
