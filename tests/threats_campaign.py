"""The threats check on many more random instances than the suite runs: `python
tests/threats_campaign.py --first 0 --n 300` solves each and compares with the enumeration
(tests/test_threats.py), printing the seeds that disagree; `--counted-once` builds the
units counted once per launch area (`seeing`, `around`) wherever they are exact;
`--kill-probability` draws the kill-probability instances of tests/test_kill_probability.py
instead, `--kill-threats` those with launch areas, headings and relocation downtime as well;
the README records the last run."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from conftest import load_document  # noqa: E402
from test_brute_force import check_against_enumeration  # noqa: E402
from test_kill_probability import kill_document, kill_threat_document  # noqa: E402
from test_threats import threat_document  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--counted-once", action="store_true")
    parser.add_argument("--kill-probability", action="store_true")
    parser.add_argument("--kill-threats", action="store_true")
    arguments = parser.parse_args()
    document = (kill_threat_document if arguments.kill_threats
                else kill_document if arguments.kill_probability else threat_document)
    if arguments.counted_once:
        from layerdef.model import formulation

        formulation.ONLY_WHERE_SHORTER = False
    started, failed = time.perf_counter(), []
    for seed in range(arguments.first, arguments.first + arguments.n):
        directory = Path(tempfile.mkdtemp(prefix="layerdef-threats-"))
        try:
            check_against_enumeration(load_document(document(seed, directory), directory))
        except Exception as error:  # noqa: BLE001 - every disagreement is reported
            failed.append(seed)
            print(f"seed {seed}: {type(error).__name__}: {error}", file=sys.stderr)
    print(f"{arguments.n} instances, {len(failed)} disagreements {failed}, "
          f"{time.perf_counter() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
