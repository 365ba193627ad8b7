"""Every code name in the models/ documentation exists in the code, so math and code stay paired."""

from __future__ import annotations

import copy
import re

import pytest
from conftest import INSTANCES, ROOT, load_document

from layerdef.core import replay as replay_module
from layerdef.io.reader import build_document, load
from layerdef.model import formulation as model_module
from layerdef.model import scenarios as scenarios_module
from layerdef.model.formulation import formulate
from layerdef.solve import backend as backend_module
from layerdef.solve import bound as bound_module
from layerdef.solve import deterministic as solve_module
from layerdef.solve import hedged as hedge_module
from layerdef.solve import heuristic as heuristic_module

DOCS = sorted((ROOT / "models").glob("*.md"))


def code_names(text: str) -> set[str]:
    """Backticked names in the last column of the documentation's tables."""
    names = set()
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            names.update(re.findall(r"`([^`]+)`", cells[-1]))
    names.discard("code")
    return names


def known_names(tmp_path) -> set[str]:
    inst = load(INSTANCES / "korea-2025.yaml")
    document = build_document(INSTANCES / "korea-2025")
    document["objective"] = "min-cost"
    min_cost = load_document(copy.deepcopy(document), tmp_path)
    names = set()
    for form in (formulate(inst), formulate(min_cost)):
        names |= set(form.columns) | set(form.rows) | set(form.objectives)
    names |= {n for n in dir(model_module) if not n.startswith("_")}
    names |= {n for n in dir(solve_module) if not n.startswith("_")}
    names |= {n for n in dir(backend_module) if not n.startswith("_")}
    names |= {f"HighsBackend.{n}" for n in dir(backend_module.HighsBackend) if not n.startswith("__")}
    names |= {f"Formulation.{n}" for n in dir(model_module.Formulation) if not n.startswith("__")}
    names |= {n for n in dir(heuristic_module) if not n.startswith("_")}
    names |= {n for n in dir(hedge_module) if not n.startswith("_")}
    names |= {n for n in dir(scenarios_module) if not n.startswith("_")}
    names |= {n for n in dir(bound_module) if not n.startswith("_")}
    names |= {n for n in dir(replay_module) if not n.startswith("_")}
    names |= {f"instance.{n}" for n in dir(inst) if not n.startswith("_")}
    return names


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_documented_symbol_exists(doc, tmp_path):
    names = code_names(doc.read_text())
    assert len(names) > 10
    source = "".join((ROOT / "src" / "layerdef" / name).read_text() for name in ("model/formulation.py", "model/scenarios.py", "solve/hedged.py"))
    known = known_names(tmp_path)
    missing = [n for n in names if n not in known and not re.search(rf"\b{re.escape(n)}\b", source)]
    assert not missing, f"{doc.name} names symbols the code no longer has: {missing}"


def test_every_block_is_documented():
    names = code_names((ROOT / "models" / "coverage.md").read_text())
    form = formulate(load(INSTANCES / "korea-2025.yaml"))
    undocumented = (set(form.columns) | set(form.rows) | set(form.objectives)) - names
    assert not undocumented, undocumented


def test_the_committed_symbol_tables_are_the_generated_ones():
    """models/*.md's tables of variables, constraints, objectives and hedged blocks are written
    from the `defines(...)` of the `define_*` functions (`python -m layerdef.model.document`);
    a hand edit of either side alone fails here."""
    from layerdef.model.document import generated, table

    for doc in DOCS:
        text = doc.read_text()
        assert generated(text) == text, f"{doc.name}: run python -m layerdef.model.document"
    coverage = (ROOT / "models" / "coverage.md").read_text()
    for kind in ("columns", "rows", "objectives"):
        assert f"<!-- generated from layerdef.model: {kind} -->\n{table(kind)}\n<!-- end -->" in coverage
    scenarios = (ROOT / "models" / "scenarios.md").read_text()
    for kind in ("hedged", "hedged_objectives"):
        assert f"<!-- generated from layerdef.model: {kind} -->\n{table(kind)}\n<!-- end -->" in scenarios


def test_every_block_is_built_by_the_function_that_defines_it(tmp_path):
    """Each block the formulation of Korea (coverage and min-cost) and the hedged replay (both
    risks) adds is declared by exactly one `define_*` function; every declared block is added
    by some instance; a block added outside its function, or undeclared, raises."""
    from layerdef.model.blocks import REGISTRY, constraint, defines
    from layerdef.model.formulation import Formulation
    from layerdef.model.scenarios import formulate_hedged

    declared = {kind: {d.name for d in found} for kind, found in REGISTRY.items()}
    inst = load(INSTANCES / "korea-2025.yaml")
    document = build_document(INSTANCES / "korea-2025")
    document["objective"] = "min-cost"
    document["limits"] = {"substitute_budget": 20, "moves_per_period": 3, "moves_total": 8}
    limited = load_document(document, tmp_path)
    from test_threats import threat_document

    facing = threat_document(3, tmp_path)
    facing["limits"] = {"turns_per_period": 1, "turns_total": 2}
    facing["substitutes"][0]["system"] = "PAC-3"
    facing["systems"]["PAC-3"]["relocation_days"] = 6
    plain = [formulate(inst), formulate(limited), formulate(load_document(facing, tmp_path)),
             formulate(load(INSTANCES / "korea-2025-threats.yaml")),  # units counted once
             formulate(load(INSTANCES / "textbook" / "kill-probability-spreads.yaml"))]
    replay = load(INSTANCES / "korea-2025-replay.yaml")
    stacked = [formulate_hedged(replay, risk).form for risk in ("expected", "worst")]
    from test_threats import hedged_threat_document

    stacked.append(formulate_hedged(load_document(hedged_threat_document(3, tmp_path), tmp_path)).form)
    added = {"columns": set(), "rows": set(), "objectives": set(), "hedged": set(), "hedged_objectives": set()}
    for form in plain:
        added["columns"] |= set(form.columns)
        added["rows"] |= set(form.rows)
        added["objectives"] |= set(form.objectives)
    from layerdef.model.formulation import plan_solution
    from layerdef.model.scenarios import define_kept_decisions

    reaction = formulate(inst)  # a reaction to a withdrawal: the plan's first period kept
    define_kept_decisions(reaction, plan_solution(reaction, inst.current_posture()), 1)
    for form in stacked:
        added["hedged"] |= {name for name in (*form.columns, *form.rows) if ":" not in name}
        added["hedged_objectives"] |= set(form.objectives) - {"coverage_cost_moves"}
    added["hedged"] |= reaction.fixed_by
    assert added == declared
    functions = {d.function for found in REGISTRY.values() for d in found}
    assert all(name.startswith("define_") for name in functions)

    with pytest.raises(ValueError, match="outside any define_"):
        Formulation(inst, "coverage", classes=[]).add_columns("z", ("t",), [0], 0, 1, False)

    @defines(constraint("some_row", "$0$", "a test's own row"))
    def define_some_row(form: Formulation) -> None:
        form.add_columns("z", ("t",), [0], 0, 1, False)

    try:
        with pytest.raises(ValueError, match="declares"):
            define_some_row(Formulation(inst, "coverage", classes=[]))
    finally:
        REGISTRY["rows"][:] = [d for d in REGISTRY["rows"] if d.name != "some_row"]
