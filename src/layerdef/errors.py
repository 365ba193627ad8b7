"""Every exception layerdef raises: input problems located in the user's files (InstanceError
with Problems) or in the options given (UsageError), infeasible models explained, no plan within the limits, and a plan that
contradicts its own evaluation (a bug in layerdef)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, with its place in the file."""

    file: str
    message: str
    table: str | None = None
    row: int | None = None
    row_id: str | None = None
    field: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        place = self.file + (f":{self.line}" if self.line else "")
        where = self.table or ""
        if self.row is not None:
            where += f"[{self.row}]"
            if self.row_id:
                where += f" (id={self.row_id})"
        if self.field:
            where += ("." if where else "") + self.field
        return f"{place}: {where}: {self.message}" if where else f"{place}: {self.message}"


@dataclass
class InstanceError(Exception):
    """Raised with every problem found in an input, each located."""

    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} found"
        return head + ":\n" + "\n".join(str(p) for p in self.problems)


class UsageError(InstanceError):
    """A command-line option or API argument that is wrong or does not fit the instance (not a
    problem in the instance's files): located by the option's name, exit code 2 like every
    input problem."""


class InfeasibleError(Exception):
    """The instance has no plan; `explanation` says why in the instance's own ids."""

    def __init__(self, explanation: list[str]):
        super().__init__("\n".join(explanation))
        self.explanation = explanation

    def __reduce__(self):  # rebuilt from the lines, as when raised in another process
        return InfeasibleError, (self.explanation,)


class NoSolutionError(Exception):
    """The solver found no plan within the limits (time), though one may exist."""


class PlanCheckError(Exception):
    """The restored plan's own evaluation contradicts the solver: a bug, never user error."""
