"""What a block of the formulation is: its code name, math and meaning, registered by the one
`define_<block>` function that builds it.

Every `define_*` function of `layerdef.model.formulation` and `layerdef.model.scenarios` is
decorated with `defines(...)`, which carries the block's math beside the code that builds it
and lets the function add only the blocks it declares (`Formulation.add_columns`, `add_rows`
and the objectives check `allowed`). The symbol tables of `models/` are generated from this
registry (`python -m layerdef.model.document`), so the documented math and the code cannot
drift."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

#: the kinds of block, each one table of models/: the deterministic model's variables,
#: constraints and objectives, and the hedged model's own rules
KINDS = ("columns", "rows", "objectives", "hedged", "hedged_objectives")


@dataclass(frozen=True)
class BlockDefinition:
    """One block: its kind, code name, math (LaTeX), meaning and (columns only) domain;
    `function` is the `define_*` function that builds it."""

    kind: str
    name: str
    math: str
    meaning: str
    domain: str = ""
    function: str = ""


#: every definition, per kind, in the order the defining functions appear
REGISTRY: dict[str, list[BlockDefinition]] = {kind: [] for kind in KINDS}

#: the names the function running now may add (None outside any `define_*`)
_defining: list[frozenset[str]] = []

Function = TypeVar("Function", bound=Callable)


def variable(name: str, math: str, meaning: str, domain: str) -> BlockDefinition:
    return BlockDefinition("columns", name, math, meaning, domain)


def constraint(name: str, math: str, meaning: str) -> BlockDefinition:
    return BlockDefinition("rows", name, math, meaning)


def objective(name: str, math: str, meaning: str) -> BlockDefinition:
    return BlockDefinition("objectives", name, math, meaning)


def hedged_rule(name: str, math: str, meaning: str) -> BlockDefinition:
    """A block of the hedged model; a block may have several rules (one table line each)."""
    return BlockDefinition("hedged", name, math, meaning)


def hedged_objective(name: str, math: str, meaning: str) -> BlockDefinition:
    return BlockDefinition("hedged_objectives", name, math, meaning)


def defines(*definitions: BlockDefinition) -> Callable[[Function], Function]:
    """Register `definitions` as what the decorated `define_*` function builds; while it runs,
    only blocks of these names may be added."""
    def decorate(function: Function) -> Function:
        for definition in definitions:
            REGISTRY[definition.kind][:] = [d for d in REGISTRY[definition.kind]  # a module reloaded
                                            if (d.name, d.function, d.math) != (definition.name, function.__name__, definition.math)]
            already = [d for d in REGISTRY[definition.kind]
                       if d.name == definition.name and d.function != function.__name__]
            if already:
                raise ValueError(f"block {definition.name!r} is defined by {already[0].function} "
                                 f"and {function.__name__}")
            REGISTRY[definition.kind].append(
                BlockDefinition(**{**definition.__dict__, "function": function.__name__}))
        names = frozenset(definition.name for definition in definitions)

        @functools.wraps(function)
        def building(*args, **kwargs):
            _defining.append(names)
            try:
                return function(*args, **kwargs)
            finally:
                _defining.pop()

        building.definitions = definitions
        return building  # type: ignore[return-value]
    return decorate


def allowed(name: str) -> None:
    """A block may be added only by the `define_*` function that declares it: a block added
    anywhere else, or without a definition, is a bug, caught where it is added."""
    if not _defining or name not in _defining[-1]:
        where = f"the running define_* declares {sorted(_defining[-1])}" if _defining else "outside any define_*"
        raise ValueError(f"block {name!r} added {where}: give it a definition with "
                         f"layerdef.model.blocks.defines")


def defined_names() -> set[str]:
    return {d.name for kind in KINDS for d in REGISTRY[kind]}
