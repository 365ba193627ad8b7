"""Where a command or an API call will write, checked before any work (one rule everywhere).

Missing folders are created; an existing file is written over only when forced (files in a
study's own folder, `owned`, are rewritten: a sweep or a stress study resumes); a file the work
reads (the instance's YAML and CSV tables, a solution) is never written over, forced or not."""

from __future__ import annotations

import os
from pathlib import Path

from layerdef.errors import Problem


def output_problems(files: list[Path], force: bool, reads: list[Path] = (), owned: bool = False) -> list[Problem]:
    """Every problem with writing `files`, the folders they need created on the way."""
    read = {path.resolve() for path in reads if path.exists()}
    problems = []
    for path in files:
        if path.exists() and path.resolve() in read:
            problems.append(Problem(str(path), "refusing to write over a file this command reads"))
        elif path.is_dir():
            problems.append(Problem(str(path), "is a folder; expected a file to write"))
        elif path.exists() and not force and not owned:
            problems.append(Problem(str(path), "exists; refusing to overwrite it (use --force)"))
    for folder in dict.fromkeys(path.parent for path in files):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            problems.append(Problem(str(folder), f"cannot create the folder: {error.strerror or error}"))
            continue
        if not os.access(folder, os.W_OK):
            problems.append(Problem(str(folder), "cannot write into this folder (permission denied)"))
    return problems
