"""The blocks of the formulation, each defined once with its math and meaning.

`Formulation.add_columns`, `add_rows` and the objectives take their names from here (a block
without a definition raises), and the symbol tables of models/coverage.md are generated from
these definitions (`python -m layerdef.model.blocks` rewrites them; a test keeps the committed
file equal to what they generate), so the documented math and the code cannot drift."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BlockDefinition:
    """One block: its code name, math (LaTeX), meaning and (columns only) domain."""

    name: str
    math: str
    meaning: str
    domain: str = ""


#: the variables (models/coverage.md, "Variables")
COLUMNS = {d.name: d for d in [
    BlockDefinition('z', '$z_{p,c,t}$',
                    'units of movable class $c$ at $p$ in $t$; only where $c$ is present and its owner may use $p$',
                    'integer $[0, \\min(N_c,\\mathrm{cap}_p)]$'),
    BlockDefinition('rotation', '$r_{f,a,t}$',
                    'units of offer $f$ that arrived in $a$ and are still on station in $t$, for $e_f \\le a \\le t < a + M_f$ (the rotation cohort $(f,a)$)',
                    'integer $[0, n_f]$'),
    BlockDefinition('rotation_end', '$e_{f,a,d}$',
                    "units of cohort $(f,a)$ whose rotation ends in $d$, for $\\min(a + m_f, |T|) - 1 \\le d \\le \\min(a + M_f, |T|) - 1$ (the horizon's last period for rotations that outlast it)",
                    'integer $[0, n_f]$'),
    BlockDefinition('z_sub', '$x_{p,f,a,t}$',
                    'units of cohort $(f,a)$ at $p$ in $t$',
                    'integer'),
    BlockDefinition('units', '$u_{p,k,t}$',
                    'movable units of system $k$ at $p$ in $t$ (classes and substitutes together)',
                    'continuous $\\ge 0$'),
    BlockDefinition('y', '$y_{s,l,t,j}$',
                    'depth level $j$ of $(s,l)$ filled in $t$; only $j$ below the most units that could ever cover $(s,l)$',
                    '$[0,1]$'),
    BlockDefinition('shortfall', '$\\sigma_{s,l,t}$',
                    'requirement shortfall',
                    '$[0,0]$ (elastic: $[0,\\mathrm{req}_{s,l}]$)'),
    BlockDefinition('move_in', '$\\mu_{p,c,t}$',
                    'units of class $c$ relocated into $p$ in $t$',
                    'integer $\\ge 0$'),
    BlockDefinition('move_in_sub', '$\\nu_{p,f,a,t}$',
                    'units of cohort $(f,a)$ relocated into $p$ in $t > a$',
                    'integer $\\ge 0$'),
    BlockDefinition('target_shortfall', '$\\tau_t$',
                    'min-cost: coverage target shortfall',
                    '$[0,0]$ (elastic: free)'),
]}

#: the constraints (models/coverage.md, "Constraints")
ROWS = {d.name: d for d in [
    BlockDefinition('class_presence', '$\\sum_p z_{p,c,t} = N_c$ for present $(c,t)$',
                    'every present unit stands somewhere'),
    BlockDefinition('rotations_per_offer', '$\\sum_{a} r_{f,a,a} \\le n_f$',
                    'at most `count` rotations (one per unit)'),
    BlockDefinition('rotation_length', '$r_{f,a,t} = r_{f,a,t-1}$ for $t < a + m_f$; $r_{f,a,t} \\le r_{f,a,t-1}$ after',
                    "a cohort stays whole for `min_periods` (truncated by the horizon's end: no row beyond it), then only shrinks; no variable beyond `max_periods`"),
    BlockDefinition('rotation_ends', '$r_{f,a,t} = \\sum_{d \\ge t} e_{f,a,d}$',
                    'the cohort\'s units on station in $t$ are those whose rotation ends in $t$ or later (implies `rotation_length`; the choice of a rotation\'s length is then a variable HiGHS branches on and cuts with: see "Rotation ends" below)'),
    BlockDefinition('substitute_presence', '$\\sum_p x_{p,f,a,t} = r_{f,a,t}$',
                    "the cohort's units stand somewhere"),
    BlockDefinition('units_definition', '$u_{p,k,t} = \\sum_{c: k_c = k} z_{p,c,t} + \\sum_{f: k_f = k, a} x_{p,f,a,t}$',
                    'units per (position, system): coverage rows stay short'),
    BlockDefinition('capacity', '$\\sum_k u_{p,k,t} \\le \\mathrm{cap}_p - \\text{fixed units at } p$',
                    'capacity'),
    BlockDefinition('depth', '$\\sum_j y_{s,l,t,j} \\le \\sum_{p,k} \\mathrm{cover}_{k,p,s,l}\\, u_{p,k,t} + \\bar f_{s,l,t}$',
                    'depth levels cannot exceed the covering units'),
    BlockDefinition('requirement', '$\\sum_{p,k} \\mathrm{cover}_{k,p,s,l}\\, u_{p,k,t} + \\bar f_{s,l,t} + \\sigma_{s,l,t} \\ge \\mathrm{req}_{s,l}$',
                    'the requirement, in every period'),
    BlockDefinition('move_definition', '$\\mu_{p,c,t} \\ge z_{p,c,t} - z_{p,c,t-1}$ ($t=0$: $- h_{c,p}$)',
                    'relocations into $p$; none counted when $c$ returns after an absence'),
    BlockDefinition('move_definition_sub', '$\\nu_{p,f,a,t} \\ge x_{p,f,a,t} - x_{p,f,a,t-1}$',
                    'relocations of substitutes; arrivals are not moves'),
    BlockDefinition('substitute_budget', '$\\sum_{f,a,t} \\kappa_f r_{f,a,t} \\le B$',
                    'substitute budget'),
    BlockDefinition('moves_per_period', '$\\sum_{p,c} \\mu_{p,c,t} + \\sum_{p,f,a} \\nu_{p,f,a,t} \\le \\bar M_t$',
                    'moves per period'),
    BlockDefinition('moves_total', '$\\sum_{t} (\\dots) \\le \\bar M$',
                    'moves in total'),
    BlockDefinition('coverage_target', '$\\sum_{s,l,j} v_{s,l,j}\\, y_{s,l,t,j} + \\tau_t \\ge \\theta\\, R_t$',
                    "min-cost: each period's coverage at least `target` x the reference posture's"),
]}

#: the objectives (models/coverage.md, "Objectives, lexicographic")
OBJECTIVES = {d.name: d for d in [
    BlockDefinition('coverage', '$\\sum_{s,l,t,j} v_{s,l,j}\\, y_{s,l,t,j}$',
                    'coverage value'),
    BlockDefinition('substitute_cost', '$\\sum_{f,a,t} \\kappa_f r_{f,a,t}$',
                    'substitute cost'),
    BlockDefinition('moves', '$\\sum \\mu + \\sum \\nu$',
                    'moves'),
    BlockDefinition('cost_then_moves', '$W \\cdot \\text{cost} + \\text{moves}$',
                    'cost then moves in one stage (below)'),
    BlockDefinition('coverage_cost_moves', '$-\\Lambda \\cdot \\text{coverage} + W \\cdot \\text{cost} + \\text{moves}$',
                    'all three in one stage (below)'),
]}

#: the hedged model's own blocks (models/scenarios.md, "Variables and constraints"): one
#: definition per rule, so a block may come more than once (its code cell as written)
HEDGED = [
    BlockDefinition('`nonanticipativity`', "$z^\\sigma_{p,c,t} = z^{\\sigma'}_{p,c,t}$, $x^\\sigma_{p,f,a,t} = x^{\\sigma'}_{p,f,a,t}$ ($a \\le t$), $r^\\sigma_{f,a,t} = r^{\\sigma'}_{f,a,t}$ ($a < t$) whenever $h_\\sigma(t) = h_{\\sigma'}(t)$",
                    'decisions of period $t$ (where units stand, stays and stops of substitutes) are the same in scenarios that look alike up to $t$; moves follow'),
    BlockDefinition('`nonanticipativity`', "$r^\\sigma_{f,t,t} = r^{\\sigma'}_{f,t,t}$ whenever $h_\\sigma(t-\\ell_f) = h_{\\sigma'}(t-\\ell_f)$",
                    'a rotation starting in $t$ is requested with what is known at $t - \\ell_f$ (before the horizon: the same everywhere)'),
    BlockDefinition('`nonanticipativity` (`FOLLOWING`)', "$y^\\sigma_{s,l,t,j} = y^{\\sigma'}_{s,l,t,j}$, $u^\\sigma_{p,k,t} = u^{\\sigma'}_{p,k,t}$, $\\mu^\\sigma_{p,c,t} = \\mu^{\\sigma'}_{p,c,t}$, $\\nu^\\sigma_{p,f,a,t} = \\nu^{\\sigma'}_{p,f,a,t}$ whenever $h_\\sigma(t) = h_{\\sigma'}(t)$",
                    "what follows from the decisions up to $t$ (depth levels, unit counts, moves) is tied too: in such scenarios the covering counts and the move bounds of period $t$ are the same, so some optimal plan has these equal and nothing is lost (tested against the model without them, both risks). HiGHS's presolve then folds the copies into one: the 2025 replay's presolved model 14,026 -> 10,543 rows, its LP by dual simplex 11 -> 5.3 s, its hedged stage 145-152 s -> 77 s"),
    BlockDefinition('`worst_scenario`', '$\\eta \\le \\sum_{s,l,t,j} v\\, y^\\sigma$ for every $\\sigma$',
                    '`risk="worst"`: $\\eta$ is the worst scenario\'s coverage'),
    BlockDefinition('`worst_coverage`', '$\\eta$',
                    "the worst scenario's coverage"),
]
#: every name a block of columns or rows may have
BLOCK_NAMES = set(COLUMNS) | set(ROWS) | {d.name.split("`")[1] for d in HEDGED}


def column_table() -> str:
    lines = ["| math | domain | meaning | code |", "|---|---|---|---|"]
    return "\n".join(lines + [f"| {d.math} | {d.domain} | {d.meaning} | `{d.name}` |"
                              for d in COLUMNS.values()])


def row_table(blocks: list[BlockDefinition], quoted: bool = True) -> str:
    lines = ["| math | meaning | code |", "|---|---|---|"]
    return "\n".join(lines + [f"| {d.math} | {d.meaning} | {f'`{d.name}`' if quoted else d.name} |"
                              for d in blocks])


TABLES = {"columns": column_table, "rows": lambda: row_table(list(ROWS.values())),
          "objectives": lambda: row_table(list(OBJECTIVES.values())),
          "hedged": lambda: row_table(HEDGED, quoted=False)}
MARKER = re.compile(r"(<!-- generated from layerdef/model/blocks.py: (\w+) -->\n).*?(\n<!-- end -->)", re.S)


def generated(text: str) -> str:
    """A models/ document with every generated table written anew from the definitions."""
    return MARKER.sub(lambda m: m[1] + TABLES[m[2]]() + m[3], text)


if __name__ == "__main__":
    for path in sys.argv[1:] or ["models/coverage.md", "models/scenarios.md"]:
        Path(path).write_text(generated(Path(path).read_text()))
