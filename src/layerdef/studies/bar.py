"""Progress of a study over many solves: a tqdm bar on a terminal, else a log line per step."""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm

from layerdef.solve.backend import LOGGER, progress


class StudyProgress:
    """One step per solve of a frontier, a sweep or a stress study. On a terminal (stderr is a
    tty, progress shown) a bar with the step's message beside it; elsewhere (a log file, CI,
    `--quiet`) the messages as progress records; records too where `bar` is False (a study
    beside a solve whose own progress lines would break the bar)."""

    def __init__(self, what: str, total: int, bar: bool = True):
        self.what = what
        shown = bar and LOGGER.isEnabledFor(logging.INFO) and sys.stderr.isatty()
        self.bar = tqdm(total=total, desc=what, file=sys.stderr, disable=not shown, leave=True,
                        dynamic_ncols=True)

    def step(self, message: str) -> None:
        if self.bar.disable:
            progress(f"{self.what}: {message}")
        else:
            self.bar.set_postfix_str(message, refresh=False)
            self.bar.update()

    def close(self) -> None:
        self.bar.close()
