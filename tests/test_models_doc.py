"""Every code name in the models/ documentation exists in the code, so math and code stay paired."""

from __future__ import annotations

import copy
import re

import pytest
from conftest import INSTANCES, ROOT, load_document

from layerdef.core import replay as replay_module
from layerdef.io.reader import build_document, load
from layerdef.model import formulation as model_module
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
    names |= {n for n in dir(bound_module) if not n.startswith("_")}
    names |= {n for n in dir(replay_module) if not n.startswith("_")}
    names |= {f"instance.{n}" for n in dir(inst) if not n.startswith("_")}
    return names


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_documented_symbol_exists(doc, tmp_path):
    names = code_names(doc.read_text())
    assert len(names) > 10
    source = "".join((ROOT / "src" / "layerdef" / name).read_text() for name in ("model/formulation.py", "solve/hedged.py"))
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
    from `layerdef.model.blocks` (`python -m layerdef.model.blocks`); a hand edit of either side
    alone fails here."""
    from layerdef.model.blocks import generated

    for doc in DOCS:
        text = doc.read_text()
        assert generated(text) == text, f"{doc.name}: run python -m layerdef.model.blocks"
    assert "<!-- generated from layerdef/model/blocks.py: rows -->" in (ROOT / "models" / "coverage.md").read_text()


def test_every_block_the_model_adds_has_a_definition(tmp_path):
    """Blocks come from the definitions: the formulation of Korea, min-cost and the hedged
    replay add none without one, and adding an undefined block raises."""
    from layerdef.model.blocks import BLOCK_NAMES, OBJECTIVES
    from layerdef.model.formulation import Formulation
    from layerdef.solve.hedged import formulate_hedged

    inst = load(INSTANCES / "korea-2025.yaml")
    for form in (formulate(inst), formulate_hedged(load(INSTANCES / "korea-2025-replay.yaml")).form):
        assert {name.split(":")[-1] for name in form.columns} <= BLOCK_NAMES
        assert {name.split(":")[-1] for name in form.rows} <= BLOCK_NAMES
        assert set(form.objectives) <= set(OBJECTIVES)
    with pytest.raises(ValueError, match="no definition"):
        Formulation(inst, "coverage", classes=[]).add_columns("undocumented", ("t",), [0], 0, 1, False)
