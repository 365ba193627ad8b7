"""Random mutations of a valid instance: loading succeeds or raises the located InstanceError,
never anything else, and the CLI answers 0 or 2 without a traceback."""

from __future__ import annotations

import copy

import yaml
from click.testing import CliRunner
from conftest import SMALL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerdef.cli import main
from layerdef.errors import InstanceError
from layerdef.io.reader import loads

values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["2025-02", "PAC-3", "pa", "a", "US", "lower", "", "é✓", "1e400"]),
    st.lists(st.text(max_size=5), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.just([]), st.just({}),
)


def paths(node, prefix=()):
    """Every path into a nested document."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, prefix + (index,))


def mutate(document: dict, path: tuple, action: str, value) -> dict:
    document = copy.deepcopy(document)
    if not path:
        return document
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if action == "delete":
        del parent[key]
    elif action == "extra" and isinstance(parent, dict):
        parent[f"extra_{value!s:.5}"] = value
    else:
        parent[key] = value
    return document


ALL_PATHS = list(paths(SMALL))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(ALL_PATHS), st.sampled_from(["set", "delete", "extra"]),
                          values), min_size=1, max_size=4))
def test_mutated_documents_load_or_raise_located_errors(tmp_path, mutations):
    document = SMALL
    for path, action, value in mutations:
        try:
            document = mutate(document, path, action, value)
        except (KeyError, IndexError, TypeError):
            continue  # the path vanished under an earlier mutation
    text = yaml.safe_dump(document, allow_unicode=True)
    try:
        loads(text.encode(), tmp_path / "fuzz.yaml")
    except InstanceError as error:
        assert error.problems
        for problem in error.problems:
            assert str(problem).startswith(str(tmp_path / "fuzz.yaml")) or "csv" in str(problem)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=200), st.sampled_from(["sites", "positions", "units", "substitutes"]))
def test_broken_csv_tables_give_located_errors_through_the_cli(tmp_path, garbage, table):
    document = copy.deepcopy(SMALL)
    header = ",".join(document[table][0].keys())
    (tmp_path / f"{table}.csv").write_text(header + "\n" + garbage, encoding="utf-8")
    document[table] = f"{table}.csv"
    path = tmp_path / "csv.yaml"
    path.write_text(yaml.safe_dump(document))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output


def test_empty_and_unicode_documents(tmp_path):
    for text in ["", "layerdef: 1", "名前: ✓", "sites: 3\nlayerdef: 1", "layerdef: 1\nhorizon: {labels: []}"]:
        try:
            loads(text.encode(), tmp_path / "x.yaml")
        except InstanceError as error:
            assert error.problems
