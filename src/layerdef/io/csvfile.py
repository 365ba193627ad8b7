"""CSV tables read with bounds and true line numbers, for instance tables and posture files.

Every record keeps the line it starts on (a quoted note spanning two lines must not shift the
lines of the rows after it), blank lines are skipped but counted, a header naming a column twice
is a problem, a quote left open is found instead of swallowing the rows after it, and only
regular files of bounded size are read (`units: /dev/zero` read without end)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from layerdef.core.evaluate import HEADING_COLUMN, POSTURE_COLUMNS
from layerdef.errors import InstanceError, Problem

#: a CSV table larger than this is refused (the large benchmark's tables are under 1 MB)
MAX_CSV_BYTES = 256 * 1024 * 1024


@dataclass
class CsvTable:
    """A CSV file's header and records, each record with the line it starts on."""

    path: Path
    header: list[str]
    header_line: int
    records: list[list[str]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)


def read_csv_table(path: Path, table: str, shown: str | None = None,
                   referrer: str | None = None) -> tuple[CsvTable | None, list[Problem]]:
    """The table in `path`, or None with the problems that keep it from being read (a file
    that cannot be read at all is located in `referrer`, the file that names it, if given)."""
    where, shown = str(path), shown or str(path)
    text, problem = _read_text(path, shown)
    if problem is not None:
        return None, [Problem(referrer or where, problem, table)]
    reader = csv.reader(io.StringIO(text), strict=True)
    records, lines, problems = [], [], []
    line = 0
    try:
        for record in reader:
            start, line = line + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            records.append(record)
            lines.append(start)
    except csv.Error as error:
        problems.append(Problem(where, f"broken CSV: {error} (a quote left open or stray?)", table,
                                line=line + 1))
    if not records:
        if not problems:
            problems.append(Problem(where, "empty CSV file: expected a header row", table))
        return None, problems
    header = [name.strip() for name in records[0]]
    first: dict[str, int] = {}
    for column, name in enumerate(header, start=1):
        if name in first:
            problems.append(Problem(where, f"column {name!r} appears twice in the header (columns "
                                    f"{first[name]} and {column})", table, line=lines[0]))
        first.setdefault(name, column)
    result = CsvTable(path, header, lines[0], records[1:], lines[1:])
    problems += _open_quotes(result, table)
    return result, problems


def _read_text(path: Path, shown: str) -> tuple[str, str | None]:
    """The file's text, or why it is not read."""
    try:
        if not path.is_file():
            reason = "no such file" if not path.exists() else "not a regular file"
            return "", f"cannot read CSV {shown!r}: {reason}"
        size = path.stat().st_size
        if size > MAX_CSV_BYTES:
            return "", f"cannot read CSV {shown!r}: {size} bytes, more than {MAX_CSV_BYTES}"
        return path.read_text(encoding="utf-8-sig"), None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        return "", f"cannot read CSV {shown!r}: {reason}"


def _open_quotes(table: CsvTable, name: str) -> list[Problem]:
    """Records whose quoted cell spans lines that read as rows of their own: a quote opened in
    a note and closed only further down took those rows into the note."""
    width = len(table.header)
    if width < 2:
        return []
    problems = []
    for record, line in zip(table.records, table.lines):
        for cell in record:
            inner = cell.split("\n")[1:]
            if any(part.count(",") >= width - 1 for part in inner):
                problems.append(Problem(
                    str(table.path), f"a quoted cell runs from line {line} over {len(inner)} more "
                    "line(s) that look like rows of their own: a quote left open?", name, line=line))
                break
    return problems


def read_posture(path: str | Path) -> pd.DataFrame:
    """A posture CSV (period, unit, position, and optionally heading in degrees); missing
    columns are located, exit 2. Each row
    keeps the line it starts on (`attrs["lines"]`), blank lines counted."""
    content, problems = read_csv_table(Path(path), "posture")
    if content is not None:
        missing = [c for c in POSTURE_COLUMNS if c not in content.header]
        if missing:
            problems.append(Problem(str(path), f"missing column(s) {', '.join(missing)}; "
                                    f"expected {', '.join(POSTURE_COLUMNS)}", "posture"))
        for index, (record, line) in enumerate(zip(content.records, content.lines)):
            if len(record) != len(content.header):
                problems.append(Problem(str(path), f"{len(record)} fields where the header has "
                                        f"{len(content.header)}", "posture", index, line=line))
    if problems or content is None:
        raise InstanceError(problems)
    names = POSTURE_COLUMNS + ([HEADING_COLUMN] if HEADING_COLUMN in content.header else [])
    columns = [content.header.index(name) for name in names]
    table = pd.DataFrame([[record[c].strip() for c in columns] for record in content.records],
                         columns=names, dtype=object)
    table.attrs["source"] = str(path)
    table.attrs["lines"] = content.lines
    return table
