"""The symbol tables of `models/`, written from the block definitions the solver gets.

`python -m layerdef.model.document` rewrites every marked table of models/coverage.md and
models/scenarios.md (`<!-- generated from layerdef.model: KIND -->` ... `<!-- end -->`) from
the `defines(...)` of the `define_*` functions; a test keeps the committed files equal to what
this generates."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import layerdef.model.formulation  # noqa: F401  (registers the deterministic blocks)
import layerdef.model.scenarios  # noqa: F401  (registers the hedged blocks)
from layerdef.model.blocks import KINDS, REGISTRY, BlockDefinition

MARKER = re.compile(r"(<!-- generated from layerdef\.model: (\w+) -->\n).*?(\n<!-- end -->)", re.S)
DOCUMENTS = ("models/coverage.md", "models/scenarios.md")


def table(kind: str) -> str:
    """One markdown table of the definitions of a kind, in the order they are defined."""
    definitions: list[BlockDefinition] = REGISTRY[kind]
    if kind == "columns":
        lines = ["| math | domain | meaning | code |", "|---|---|---|---|"]
        return "\n".join(lines + [f"| {d.math} | {d.domain} | {d.meaning} | `{d.name}` |" for d in definitions])
    lines = ["| math | meaning | code |", "|---|---|---|"]
    return "\n".join(lines + [f"| {d.math} | {d.meaning} | `{d.name}` |" for d in definitions])


def generated(text: str) -> str:
    """A models/ document with every generated table written anew from the definitions."""
    def replace(match: re.Match) -> str:
        if match[2] not in KINDS:
            raise ValueError(f"no kind of block {match[2]!r} (known: {', '.join(KINDS)})")
        return match[1] + table(match[2]) + match[3]
    return MARKER.sub(replace, text)


if __name__ == "__main__":
    for path in sys.argv[1:] or DOCUMENTS:
        Path(path).write_text(generated(Path(path).read_text()))
