"""The solution document's contract: a pydantic model checks what is written and read, and its
JSON Schema is published in docs/ (regenerate with `python -c "import json; from
layerdef.io.solution import solution_schema; print(json.dumps(solution_schema(), indent=1))"`)."""

from __future__ import annotations

import json

from click.testing import CliRunner
from conftest import ROOT, load_document

from layerdef.cli import main
from layerdef.io.solution import solution_schema
from layerdef.solve import solve

SCHEMA = ROOT / "docs" / "solution.schema.json"


def test_the_published_schema_is_the_one_the_code_checks():
    assert json.loads(SCHEMA.read_text()) == solution_schema()


def test_a_written_solution_meets_the_schema_and_a_broken_one_is_located(small_document, tmp_path):
    plan = solve(load_document(small_document, tmp_path))
    path = tmp_path / "plan.json"
    plan.write(path)
    document = json.loads(path.read_text())
    assert set(solution_schema()["required"]) <= set(document)
    document["status"] = "bogus"
    del document["objective"]["moves"]
    path.write_text(json.dumps(document))
    result = CliRunner().invoke(main, ["show", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "solution.status" in result.output and "solution.objective.moves" in result.output


def test_every_table_cell_is_checked_on_reading(small_document, tmp_path):
    """Ids and periods are text, figures numbers, flags booleans: a damaged cell is located by
    table, row and column, exit 2 (a list in a period raised a TypeError in compare, a word
    in a figure a ValueError in report)."""
    plan = solve(load_document(small_document, tmp_path))
    path = tmp_path / "plan.json"
    plan.write(path)
    document = json.loads(path.read_text())
    document["tables"]["assignments"][0]["period"] = []
    document["tables"]["coverage"][1]["value"] = "zz"
    document["tables"]["assignments"][0]["substitute"] = 1
    path.write_text(json.dumps(document))
    for command in (["show", str(path)], ["compare", str(tmp_path / "instance.yaml"), str(path)],
                    ["report", str(path), "-o", str(tmp_path / "r.html")]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 2 and "Traceback" not in result.output, (command, result.output)
        for field in ("tables.assignments.0.period", "tables.coverage.1.value",
                      "tables.assignments.0.substitute"):
            assert f"solution.{field}" in result.output, (command, result.output)


def test_each_table_s_row_model_has_exactly_its_columns():
    """The row models that check a solution's cells and `TABLE_COLUMNS` / `OPTIONAL_COLUMNS`,
    which order its tables, name the same columns (hedged plans add `scenario` first)."""
    from typing import get_args, get_origin

    from layerdef.io.solution import OPTIONAL_COLUMNS, SolutionTables, table_columns

    for name, field in SolutionTables.model_fields.items():
        rows = field.annotation  # list[Row], or list[Row] | None for the optional tables
        if get_origin(rows) is not list:
            rows = next(option for option in get_args(rows) if get_origin(option) is list)
        row_model = get_args(rows)[0]
        fields = [f.alias or key for key, f in row_model.model_fields.items() if key != "scenario"]
        optional = [column for column, _ in OPTIONAL_COLUMNS.get(name, [])]
        assert fields == table_columns(name, optional), name
