"""What a fuzz campaign of hostile instances and files broke (issue 21), each kept from coming
back: nothing to decide is a plan, extreme magnitudes stay exact, names cannot collide, YAML and
CSV are read with bounds, validation is linear, and no command writes over what the user wrote."""

from __future__ import annotations

import copy
import os

import pytest
import yaml
from brute_force import brute_force
from click.testing import CliRunner
from conftest import ROOT, SMALL, load_document
from test_brute_force import random_document

from layerdef.cli import main
from layerdef.errors import InstanceError
from layerdef.io.reader import load
from layerdef.solve import solve


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


# ----------------------------------------------------------------------------- nothing to decide


def everyone_away(document: dict) -> dict:
    document = copy.deepcopy(document)
    periods = ["2025-01", "2025-03"]
    for unit in document["units"]:
        unit["away"] = [periods]
    document["substitutes"] = []
    return document


def test_every_unit_away_is_a_plan_not_exit_4(tmp_path):
    document = everyone_away(SMALL)
    for site in document["sites"]:
        site.pop("require", None)
    inst = load_document(document, tmp_path)
    plan = solve(inst)
    assert plan.status == "optimal"
    assert plan.objective == {"coverage": 0.0, "substitute_cost": 0.0, "moves": 0}
    assert plan.current["coverage"] == 0.0 and plan.reference["coverage"] > 0
    result = run("solve", tmp_path / "instance.yaml", "-q")
    assert result.exit_code == 0, result.output
    assert "of the reference" in result.output


def test_every_unit_away_with_a_requirement_is_infeasible_with_its_reason(tmp_path):
    load_document(everyone_away(SMALL), tmp_path)
    result = run("solve", tmp_path / "instance.yaml", "-q")
    assert result.exit_code == 3
    assert "site a, layer lower" in result.output and "absence of u1" in result.output


@pytest.mark.parametrize("other", [{}, {"u1": [["2025-01", "2025-03"]], "u2": [["2025-01", "2025-03"]]}])
def test_a_scenario_with_every_unit_away_is_hedged(tmp_path, other):
    document = copy.deepcopy(SMALL)
    for site in document["sites"]:
        site.pop("require", None)
    document["scenarios"] = [
        {"id": "gone", "probability": 0.5,
         "away": {"u1": [["2025-01", "2025-03"]], "u2": [["2025-01", "2025-03"]]}},
        {"id": "other", "probability": 0.5, "away": other}]
    document["substitutes"] = []
    plan = solve(load_document(document, tmp_path), values=False)
    assert plan.status == "optimal"
    gone = plan.in_scenario("gone")
    assert gone.objective == {"coverage": 0.0, "substitute_cost": 0.0, "moves": 0}
    assert len(gone.assignments) == 0
    assert (plan.in_scenario("other").objective["coverage"] > 0) == (not other)


# ----------------------------------------------------------------------------- magnitudes


@pytest.mark.parametrize("weights, costs", [(1e9, 1.0), (1.0, 1e6), (1.0, 3e4), (1e9, 2e8)])
def test_extreme_weights_and_costs_keep_the_enumerated_optimum(tmp_path, weights, costs):
    """Site and layer weights times 1e9 (coefficients of 1e18) and costs and budget times 1e9
    give the plan of the unscaled instance: PlanCheckError or extra moves before."""
    checked = 0
    for seed in (18, 35, 39, 49, 3, 7):
        document = random_document(seed, tmp_path)
        expected = brute_force(load_document(copy.deepcopy(document), tmp_path))
        if expected is None:
            continue
        for site in document["sites"]:  # weights 0..5 and 0.5..1: within the documented 1e9
            site["weight"] *= weights / 8
        for layer in document["layers"].values():
            layer["weight"] *= weights
        scale = costs  # costs up to 2 and budgets up to 4: within the documented 1e9
        for offer in document["substitutes"]:
            offer["cost"] *= scale
        if "substitute_budget" in document["limits"]:
            document["limits"]["substitute_budget"] *= scale
        inst = load_document(document, tmp_path)
        plan = solve(inst)
        unscaled = solve(load_document(random_document(seed, tmp_path), tmp_path))
        assert plan.objective["moves"] == unscaled.objective["moves"] == expected[2]
        assert plan.objective["substitute_cost"] == pytest.approx(
            unscaled.objective["substitute_cost"] * scale)
        checked += 1
    assert checked >= 4


def test_min_cost_with_weights_of_1e9_is_solved(tmp_path):
    document = copy.deepcopy(SMALL)
    for site in document["sites"]:
        site["weight"] = 1e9
    document["layers"]["lower"]["weight"] = 1e9
    document["objective"] = "min-cost"
    plan = solve(load_document(document, tmp_path))
    assert plan.status == "optimal"
    assert plan.objective["coverage"] >= plan.reference["coverage"] * (1 - 1e-9)


# ----------------------------------------------------------------------------- names and files


def test_a_unit_named_like_a_substitute_unit_is_refused(tmp_path):
    document = copy.deepcopy(SMALL)
    document["units"][0]["id"] = "sub#1"
    load_document_text = tmp_path / "instance.yaml"
    load_document_text.write_text(yaml.safe_dump(document))
    result = run("validate", load_document_text)
    assert result.exit_code == 2
    assert "units[0] (id=sub#1).id" in result.output and "substitute offer 'sub'" in result.output
    document["units"][0]["id"] = "sub#one"  # not of the form offer#k: a name like any other
    load_document_text.write_text(yaml.safe_dump(document))
    assert run("validate", load_document_text).exit_code == 0


@pytest.mark.parametrize("text, expected", [
    ("layerdef: 1\nloop: &a {again: *a}\n", "an alias refers to a node that contains it"),
    ("layerdef: 1\nhorizon: &h [*h]\n", "an alias refers to a node that contains it"),
    ("[" * 3000 + "]" * 3000 + "\n", "nest"),
])
def test_hostile_yaml_is_a_located_problem(tmp_path, text, expected):
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    result = run("validate", path)
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert expected in result.output and "Traceback" not in result.output


def test_billion_laughs_is_refused_fast(tmp_path):
    lines = ["layerdef: 1", "a0: &a0 {x: 1, y: 2, z: 3, w: 4, v: 5, u: 6, t: 7, s: 8, r: 9}"]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} {{" + ", ".join(f"k{j}: *a{i - 1}" for j in range(9)) + "}")
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert len(path.read_bytes()) < 1000
    result = run("validate", path)
    assert result.exit_code == 2 and "aliases expand" in result.output


def test_a_few_aliases_are_still_read(small_document, tmp_path):
    text = yaml.safe_dump(small_document, sort_keys=False).replace(
        "layers:\n", "layers: &layers\n", 1) + "extra_layers: *layers\n"
    path = tmp_path / "alias.yaml"
    path.write_text(text)
    result = run("validate", path)
    assert "unknown field 'extra_layers'" in result.output  # read through, then the schema


def csv_instance(tmp_path, units_csv: str):
    """SMALL with its units as a CSV file, written as given."""
    document = copy.deepcopy(SMALL)
    document["units"] = "units.csv"
    (tmp_path / "units.csv").write_text(units_csv)
    path = tmp_path / "instance.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


HEADER = "id,system,owner,home,away,note\n"
U1 = "u1,PAC-3,US,pa,,first\n"
U2 = "u2,PAC-2,ROK,pb,2025-02/2025-02,second\n"


def test_a_stray_quote_does_not_swallow_rows(tmp_path):
    path = csv_instance(tmp_path, HEADER + 'u1,PAC-3,US,pa,,"stray quote\n' + U2 + "u3,PAC-2,ROK,pb,,third\n")
    result = run("validate", path)
    assert result.exit_code == 2
    assert "units.csv:2: units: broken CSV" in result.output


def test_a_stray_quote_closed_further_down_is_found(tmp_path):
    path = csv_instance(tmp_path, HEADER + 'u1,PAC-3,US,pa,,"stray\n' + U2 + 'u3,PAC-2,ROK,pb,,x"\n')
    result = run("validate", path)
    assert result.exit_code == 2 and "a quote left open?" in result.output


def test_a_quoted_note_over_two_lines_keeps_later_line_numbers(tmp_path):
    path = csv_instance(tmp_path, HEADER + 'u1,PAC-3,US,pa,,"two\nlines"\n'
                        + "u2,PAC-2,ROK,nowhere,,second\n")
    result = run("validate", path)
    assert "units.csv:4: units[1] (id=u2).home" in result.output


def test_a_column_named_twice_is_a_problem(tmp_path):
    path = csv_instance(tmp_path, "id,system,owner,home,owner\nu1,PAC-3,US,pa,ROK\n")
    result = run("validate", path)
    assert "column 'owner' appears twice in the header (columns 3 and 5)" in result.output


@pytest.mark.parametrize("target, expected", [
    ("/dev/zero", "not a regular file"),
    ("PASSWD", "the first line is not a header of this table"),  # ../../.. up to /etc/passwd
    (".", "not a regular file"),
])
def test_table_paths_are_bounded(tmp_path, target, expected):
    document = copy.deepcopy(SMALL)
    document["units"] = os.path.relpath("/etc/passwd", tmp_path) if target == "PASSWD" else target
    path = tmp_path / "instance.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    result = run("validate", path)
    assert result.exit_code == 2 and expected in result.output
    assert "root:" not in result.output  # nothing of another file is echoed


def test_posture_lines_count_blank_lines(tmp_path):
    inst_path = tmp_path / "instance.yaml"
    inst_path.write_text(yaml.safe_dump(SMALL, sort_keys=False))
    posture = tmp_path / "posture.csv"
    posture.write_text("period,unit,position\n\n\n2025-01,nosuch,pa\n")
    result = run("evaluate", inst_path, posture)
    assert result.exit_code == 2 and "posture.csv:4: posture[0] (id=nosuch).unit" in result.output


def test_validation_is_linear_in_the_problems_found(tmp_path):
    """1,000 bad rows took 1.7 s and 4,000 17 s; now the problems are found in one pass. The
    check is of work, not time: every row's problems reported, each once, in one call."""
    rows = "".join(f"x{i},NOPE,US,nowhere,bad,note\n" for i in range(4000))
    path = csv_instance(tmp_path, HEADER + rows)
    with pytest.raises(InstanceError) as error:
        load(path)
    problems = error.value.problems
    assert len(problems) == len(set(problems)) >= 3 * 4000


# ----------------------------------------------------------------------------- outputs


@pytest.fixture
def korea_copy(tmp_path):
    """The textbook move-limit instance with its coverage CSV, in a folder of its own."""
    import shutil

    source = ROOT / "instances" / "textbook"
    for name in ("move-limit.yaml", "move-limit.coverage.csv"):
        shutil.copy(source / name, tmp_path / name)
    return tmp_path / "move-limit.yaml"


def test_no_command_writes_over_a_file_the_instance_reads(korea_copy):
    folder = korea_copy.parent
    table = folder / "move-limit.coverage.csv"
    before = table.read_bytes()
    plan = folder / "plan.json"
    assert run("solve", korea_copy, "-q", "-o", plan).exit_code == 0
    attempts = [
        ("solve", korea_copy, "-q", "-o", table, "--force"),
        ("solve", korea_copy, "-q", "-o", korea_copy, "--force"),
        ("compare", korea_copy, plan, "-o", table, "--force"),
        ("report", plan, "-o", table, "--force"),
        ("compare", korea_copy, plan, "-o", plan, "--force"),
    ]
    for args in attempts:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "refusing to write over a file this command reads" in result.output
    assert table.read_bytes() == before


def test_solve_csv_into_the_instance_folder_is_refused_before_solving(tmp_path):
    import shutil

    shutil.copytree(ROOT / "instances" / "korea-2025", tmp_path / "korea-2025")
    shutil.copy(ROOT / "instances" / "korea-2025.yaml", tmp_path)
    before = (tmp_path / "korea-2025" / "substitutes.csv").read_bytes()
    result = run("solve", tmp_path / "korea-2025.yaml", "-q", "--csv", tmp_path / "korea-2025",
                 "--force")
    assert result.exit_code == 2 and "substitutes.csv: refusing" in result.output
    assert "solving" not in result.output
    assert (tmp_path / "korea-2025" / "substitutes.csv").read_bytes() == before


def test_an_existing_output_needs_force_in_every_command(korea_copy):
    folder = korea_copy.parent
    plan, other = folder / "plan.json", folder / "other.txt"
    assert run("solve", korea_copy, "-q", "-o", plan).exit_code == 0
    other.write_text("mine\n")
    for args in [("solve", korea_copy, "-q", "-o", other), ("compare", korea_copy, plan, "-o", other),
                 ("report", plan, "-o", other), ("generate", "-o", other)]:
        result = run(*args)
        assert result.exit_code == 2 and "exists; refusing to overwrite it (use --force)" in result.output
        assert other.read_text() == "mine\n"
    assert run("solve", korea_copy, "-q", "-o", other, "--force").exit_code == 0
    assert other.read_text().startswith("{")


def test_missing_output_folders_are_created(korea_copy):
    plan = korea_copy.parent / "no" / "such" / "dir" / "plan.json"
    result = run("solve", korea_copy, "-q", "-o", plan)
    assert result.exit_code == 0 and plan.exists()


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True,
                    reason="root writes into read-only folders")
def test_a_read_only_folder_is_exit_2_before_solving(korea_copy):
    locked = korea_copy.parent / "locked"
    locked.mkdir(mode=0o555)
    for args in [("solve", korea_copy, "-q", "-o", locked / "plan.json"),
                 ("generate", "-o", locked / "g.yaml"), ("frontier", korea_copy, "-o", locked)]:
        result = run(*args)
        assert result.exit_code == 2 and "cannot write into this folder" in result.output


def test_an_output_folder_that_cannot_be_made_is_exit_2(korea_copy):
    blocker = korea_copy.parent / "afile"
    blocker.write_text("x")
    for args in [("solve", korea_copy, "-q", "-o", blocker / "plan.json"),
                 ("solve", korea_copy, "-q", "--csv", blocker / "tables"),
                 ("generate", "-o", blocker / "g.yaml"),
                 ("frontier", korea_copy, "-o", blocker / "f", "--budgets", "0")]:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "cannot create the folder" in result.output and "Traceback" not in result.output


def test_a_write_that_fails_after_the_check_is_exit_2(korea_copy, monkeypatch):
    import errno

    from layerdef.io.solution import Solution

    def read_only(self, path):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(Solution, "write", read_only)
    result = run("solve", korea_copy, "-q", "-o", korea_copy.parent / "plan.json")
    assert result.exit_code == 2 and "cannot write: Read-only file system" in result.output


# ----------------------------------------------------------------------------- smaller things


def test_ctrl_c_exits_130_not_1(korea_copy, monkeypatch):
    import sys

    solving = sys.modules["layerdef.solve"]  # the package's `solve` is the function

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(solving, "solve", interrupted)
    result = run("solve", korea_copy, "-q")
    assert result.exit_code == 130 and "interrupted" in result.output


def test_a_zero_reference_has_no_share(tmp_path):
    document = everyone_away(SMALL)
    for site in document["sites"]:
        site.pop("require", None)
        site["weight"] = 0
    load_document(document, tmp_path)
    result = run("solve", tmp_path / "instance.yaml", "-q")
    assert result.exit_code == 0
    assert "n/a of the reference (0)" in result.output and "100.0%" not in result.output


def test_a_missing_horizon_says_what_to_write(tmp_path):
    document = copy.deepcopy(SMALL)
    del document["horizon"]
    path = tmp_path / "instance.yaml"
    path.write_text(yaml.safe_dump(document))
    result = run("validate", path)
    assert "horizon: missing; give {start: YYYY-MM, periods: N}" in result.output
    assert "None" not in result.output


def test_an_infeasibility_no_single_limit_explains_says_so_and_what_would(tmp_path):
    document = {
        "layerdef": 1, "name": "nobind", "horizon": {"labels": ["1", "2"]},
        "layers": {"lower": {"weight": 1.0}},
        "sites": [{"id": "a", "lat": 36.0, "lon": 127.0, "require": {"lower": 1}},
                  {"id": "c", "lat": 38.0, "lon": 129.0, "require": {"lower": 1}}],
        "positions": [{"id": "pa", "at": "a"}, {"id": "pc", "at": "c"}],
        "units": [{"id": "u1", "system": "PAC-3", "owner": "US", "home": "pa"}]}
    load_document(document, tmp_path)
    result = run("solve", tmp_path / "instance.yaml", "-q")
    assert result.exit_code == 3
    assert "binding: no single limit or absence" in result.output
    assert "what would: more units (or substitute offers) of PAC-3 in 1..2 at pc" in result.output


def test_capacity_and_hosts_are_named_when_they_bind(tmp_path):
    document = {
        "layerdef": 1, "name": "hosts-bind", "horizon": {"labels": ["1"]},
        "layers": {"lower": {"weight": 1.0}},
        "sites": [{"id": "a", "lat": 36.0, "lon": 127.0, "require": {"lower": 1}},
                  {"id": "c", "lat": 38.0, "lon": 129.0}],
        "positions": [{"id": "pa", "at": "a", "hosts": ["ROK"]}, {"id": "pc", "at": "c"}],
        "units": [{"id": "u1", "system": "PAC-3", "owner": "US", "home": "pc"},
                  {"id": "k1", "system": "KM-SAM", "owner": "ROK", "home": "pc", "fixed": True}]}
    document["positions"][1]["capacity"] = 2
    load_document(document, tmp_path)
    result = run("solve", tmp_path / "instance.yaml", "-q")
    assert result.exit_code == 3
    assert "binding: the hosts of the positions" in result.output
    assert "binding: the fixed units" in result.output


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["substitutes"][0].update(cost=1e-9), "cost 1e-09 is below 1e-06"),
    (lambda d: d["substitutes"].append({**d["substitutes"][0], "id": "dear", "cost": 1e9}),
     "cost 1e+09 is more than 100000 times that of 'sub'"),
    (lambda d: d.update(depth_weights=[1e9, 1.0, 0.0]), "the weights span more than a factor 1e+06"),
])
def test_magnitudes_highs_cannot_hold_exactly_are_located(tmp_path, mutate, expected):
    """Found by the fuzz campaign: a cost of 1e-9 (HiGHS drops such coefficients) let a plan
    spend 3e-9 of a budget of 0, costs of 1e9 and 0.001 side by side let 0.002 pass a budget of
    0.001, and depth weights of 1e9 and 1 miscounted moves: PlanCheckError, exit 1."""
    document = copy.deepcopy(SMALL)
    mutate(document)
    path = tmp_path / "instance.yaml"
    path.write_text(yaml.safe_dump(document))
    result = run("validate", path)
    assert result.exit_code == 2 and expected in result.output


def test_explained_shortfalls_are_shown_without_the_solvers_last_digits():
    """Shortfalls summed over units in action (shares of a period where relocation downtime
    cuts them) came out as 15.3999 and 7.9998; a planner reads two decimals."""
    from layerdef.solve.explain import _shown

    assert [_shown(v) for v in (15.3999, 7.9998, 0.5001, 2.33333, 0.0, 1234.5)] == \
        ["15.4", "8", "0.5", "2.33", "0", "1234.5"]
