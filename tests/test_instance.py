"""Instance format v1: loading, every validation rule located, CSV tables, build and generate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from conftest import INSTANCES, load_document

from layerdef.cli import main
from layerdef.errors import InstanceError
from layerdef.io.generate import generate_document
from layerdef.io.reader import build_document, dump_document, load, loads


def problems_of(document: dict, tmp_path) -> list[str]:
    with pytest.raises(InstanceError) as caught:
        load_document(document, tmp_path)
    return [str(p) for p in caught.value.problems]


def test_small_document_loads_into_index_arrays(small_document, tmp_path):
    inst = load_document(small_document, tmp_path)
    assert inst.periods == ["2025-01", "2025-02", "2025-03"]
    assert inst.systems == ["PAC-3", "PAC-2"]
    assert inst.owners == ["US", "ROK"]
    assert inst.present.tolist() == [[True, True, True], [True, False, True]]
    assert inst.admits.tolist() == [[True, False], [True, True]]  # no hosts: any owner
    assert inst.requirement.tolist() == [[1, 0], [0, 0]]
    assert inst.cover.shape == (2, 2, 1, 2, 2, 1)  # (K, P, H, S, L, G): one heading, one threat
    assert len(inst.sha256) == 64


def test_current_and_reference_postures(small_document, tmp_path):
    inst = load_document(small_document, tmp_path)
    current = inst.current_posture()
    assert list(current.columns) == ["period", "unit", "position"]
    assert len(current) == 5  # u2 is away in 2025-02
    assert len(inst.reference_posture()) == 6
    assert set(current["position"][current["unit"] == "u1"]) == {"pa"}


def test_korea_instance_validates_with_the_seed_story():
    inst = load(INSTANCES / "korea-2025.yaml")
    assert inst.periods[0] == "2025-02" and inst.periods[-1] == "2025-12"
    assert 25 <= len(inst.site_ids) <= 35 and 20 <= len(inst.position_ids) <= 30
    us_patriots = [u for u, k, o in zip(inst.unit_ids, inst.unit_system, inst.unit_owner)
                   if inst.systems[k].startswith("PAC") and inst.owners[o] == "US"]
    assert len(us_patriots) == 10
    away = [inst.unit_ids[u] for u in np.nonzero(~inst.present.all(axis=1))[0]]
    assert len(away) == 2
    for u in away:
        i = inst.unit_ids.index(u)
        assert inst.present[i].tolist() == [True] + [False] * 8 + [True, True]  # Mar..Oct away
    thaad = inst.unit_ids.index("THAAD-Seongju")
    assert inst.unit_fixed[thaad]
    for site in ("humphreys", "osan"):
        assert inst.requirement[inst.site_ids.index(site), inst.layers.index("lower")] == 1
    rok = inst.owners.index("ROK")
    for u in np.nonzero(inst.unit_owner == rok)[0]:
        assert inst.admits[inst.unit_home[u], rok]
    assert "FIGHTER-CAP" in [inst.systems[k] for k in inst.offer_system]


def test_cli_validate_prints_a_summary(tmp_path):
    result = CliRunner().invoke(main, ["validate", str(INSTANCES / "korea-2025.yaml")])
    assert result.exit_code == 0
    assert "valid" in result.output and "A-2-1ADA: 2025-03..2025-10" in result.output
    assert "threats" not in result.output and "value" not in result.output


def test_cli_validate_shows_launch_areas_headings_and_the_value():
    result = CliRunner().invoke(main, ["validate", str(INSTANCES / "korea-2025-kill.yaml")])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert ("  threats   north-belt 0.45 (upper/lower/air), south-belt 0.35 (upper/lower/air), "
            "east-sea 0.2 (upper/lower)") in lines
    assert "  headings  8 (every 45 degrees); sector-limited: PAC-3, PAC-2, THAAD" in lines
    assert ("  value     kill probability; threat classes ballistic (upper/lower, weight 1), "
            "air (air, weight 0.5)") in lines


RULES = [
    # (mutation, expected fragment of the located message)
    (lambda d: d.update(colour="red"), ": colour: unknown field"),
    (lambda d: d["sites"][0].pop("lat"), "sites[0] (id=a).lat: missing"),
    (lambda d: d["sites"][1].update(extra=1), "sites[1] (id=b).extra: unknown field"),
    (lambda d: d["sites"][0].update(weight="heavy"), "sites[0] (id=a).weight: 'heavy'"),
    (lambda d: d["sites"][0].update(weight=math.nan), "sites[0] (id=a).weight: nan"),
    (lambda d: d["sites"][0].update(weight=math.inf), "sites[0] (id=a).weight: inf"),
    (lambda d: d["sites"][0].update(weight=-1), "sites[0] (id=a).weight: -1"),
    (lambda d: d["substitutes"][0].update(cost=-2), "substitutes[0] (id=sub).cost: -2"),
    (lambda d: d["sites"][1].update(id="a"), "sites[1] (id=a).id: duplicate id 'a'"),
    (lambda d: d["units"][0].update(system="PAC-9"), "units[0] (id=u1).system: system 'PAC-9'"),
    (lambda d: d["units"][0].update(home="nowhere"), "units[0] (id=u1).home: position 'nowhere'"),
    (lambda d: d["positions"][0].update(at="zz"), "positions[0] (id=pa).at: site 'zz'"),
    (lambda d: d["sites"][0].update(require={"middle": 1}), "sites[0] (id=a).require.middle: layer"),
    (lambda d: d.update(systems={"X": {"covers": {"middle": 3}}}), "systems.X.covers: layer 'middle'"),
    (lambda d: d["units"][1].update(away=[["2024-01", "2025-02"]]),
     "units[1] (id=u2).away.0: period '2024-01' is not in the horizon"),
    (lambda d: d["substitutes"][0].update(earliest="2030-01"),
     "substitutes[0] (id=sub).earliest: period '2030-01'"),
    (lambda d: d["sites"][0].update(lat=91), "sites[0] (id=a).lat: 91"),
    (lambda d: d["sites"][0].update(lon=-181), "sites[0] (id=a).lon: -181"),
    (lambda d: d["positions"][1].update(lat=-95, lon=0, at=None), "positions[1] (id=pb).lat: -95"),
    (lambda d: d.update(depth_weights=[0.5, 1.0]), "depth_weights: entry 1 (1.0) is larger"),
    (lambda d: d["units"][1].update(away=[["2025-03", "2025-02"]]),
     "units[1] (id=u2).away.0: range [2025-03, 2025-02] is reversed"),
    (lambda d: d["units"][1].update(home="pa"), "units[1] (id=u2).home: home 'pa' does not admit owner 'ROK'"),
    (lambda d: d["positions"][1].update(capacity=0), "positions[1] (id=pb).capacity: capacity 0 but 1 units"),
    (lambda d: d["substitutes"][0].update(min_periods=3, max_periods=2),
     "substitutes[0] (id=sub).min_periods: min_periods 3 > max_periods 2"),
    (lambda d: d.update(layerdef=2), "layerdef: format version 2"),
    (lambda d: d.update(horizon={"start": "2025-13", "periods": 3}), "horizon: expected"),
    (lambda d: d.update(objective="max-fun"), "objective: 'max-fun': input should be 'coverage' or 'min-cost'"),
    (lambda d: d.update(target=11), "target: 11: input should be less than or equal to 10"),
    (lambda d: d.update(target="all"), "target: 'all': input should be a valid number"),
    (lambda d: d.update(name=["a", "b"]), "name: ['a', 'b']: input should be a valid string"),
    (lambda d: d["positions"][1].pop("at"), "positions[1] (id=pb).lat: no location"),
    (lambda d: d.update(sites=[]), "sites: the table is empty"),
    (lambda d: d.pop("units"), "units: the table is missing"),
    (lambda d: d["limits"].update(moves_total=-1), "limits.moves_total: -1"),
]


@pytest.mark.parametrize("mutate, expected", RULES, ids=[r[1][:40] for r in RULES])
def test_each_rule_is_located(small_document, tmp_path, mutate, expected):
    mutate(small_document)
    problems = problems_of(small_document, tmp_path)
    assert any(expected in p for p in problems), problems
    assert all(p.startswith(str(tmp_path / "instance.yaml")) for p in problems)


def test_a_problem_is_reported_once(small_document, tmp_path):
    """A one-period range whose label is not in the horizon is wrong at both ends: one line."""
    small_document["units"][1]["away"] = [["2030-01", "2030-01"]]
    problems = problems_of(small_document, tmp_path)
    assert len(problems) == 1, problems


def test_all_problems_reported_at_once_with_lines(small_document, tmp_path):
    small_document["sites"][0]["lat"] = 100
    small_document["units"][0]["system"] = "nope"
    small_document["depth_weights"] = [0.1, 0.2]
    problems = problems_of(small_document, tmp_path)
    assert len(problems) == 3
    line_of_units = next(i for i, line in enumerate(
        (tmp_path / "instance.yaml").read_text().splitlines(), 1) if line.startswith("units:"))
    assert any(f"instance.yaml:{line_of_units + 1}: units[0]" in p for p in problems), problems


def test_cli_reports_every_problem_exit_2_no_traceback(small_document, tmp_path):
    small_document["sites"][0]["lat"] = 100
    small_document["units"][0]["home"] = "nowhere"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(small_document))
    before = path.read_text()
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in result.output
    assert path.read_text() == before


def test_not_yaml_and_not_a_mapping(tmp_path):
    with pytest.raises(InstanceError, match="not valid YAML"):
        loads(b"sites: [unclosed", tmp_path / "x.yaml")
    with pytest.raises(InstanceError, match="mapping at the top level"):
        loads(b"- 1\n- 2\n", tmp_path / "x.yaml")
    with pytest.raises(InstanceError, match="cannot read the file"):
        load(tmp_path / "missing.yaml")


def write_csv_instance(document: dict, directory) -> None:
    """The small document with its tables as CSV files beside settings.yaml."""
    (directory / "sites.csv").write_text(
        "id,lat,lon,weight,require\na,36.0,127.0,2,lower=1\nb,36.5,127.0,1,\n")
    (directory / "positions.csv").write_text(
        "id,at,capacity,hosts\npa,a,1,US\npb,b,2,\n")
    (directory / "units.csv").write_text(
        "id,system,owner,home,fixed,away\nu1,PAC-3,US,pa,false,\nu2,PAC-2,ROK,pb,false,2025-02/2025-02\n")
    (directory / "substitutes.csv").write_text(
        "id,system,owner,count,earliest,min_periods,max_periods,cost\nsub,PAC-3,US,1,2025-02,1,2,1.0\n")
    settings = {k: v for k, v in document.items() if k not in ("sites", "positions", "units", "substitutes")}
    (directory / "settings.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))


def same_instance(a, b) -> None:
    for name in ("periods", "layers", "systems", "owners", "site_ids", "position_ids", "unit_ids",
                 "offer_ids", "substitute_budget", "moves_per_period", "moves_total", "objective"):
        assert getattr(a, name) == getattr(b, name), name
    for name in ("layer_weight", "depth_weights", "site_lat", "site_lon", "site_weight",
                 "requirement", "position_lat", "position_lon", "capacity", "admits", "unit_system",
                 "unit_owner", "unit_home", "unit_fixed", "present", "offer_count", "offer_earliest",
                 "offer_min_periods", "offer_max_periods", "offer_cost", "cover"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_csv_tables_equal_inline_tables(small_document, tmp_path):
    write_csv_instance(small_document, tmp_path)
    inline = load_document(small_document, tmp_path, "inline.yaml")
    built = build_document(tmp_path)
    same_instance(inline, load_document(built, tmp_path, "built.yaml"))


def test_build_round_trip_on_korea(tmp_path):
    output = tmp_path / "korea.yaml"
    result = CliRunner().invoke(main, ["build", str(INSTANCES / "korea-2025"), "-o", str(output)])
    assert result.exit_code == 0, result.output
    same_instance(load(INSTANCES / "korea-2025.yaml"), load(output))
    again = CliRunner().invoke(main, ["build", str(INSTANCES / "korea-2025"), "-o", str(output)])
    assert again.exit_code == 2 and "--force" in again.output


def test_csv_problems_name_file_and_line(small_document, tmp_path):
    write_csv_instance(small_document, tmp_path)
    (tmp_path / "units.csv").write_text(
        "id,system,owner,home,fixed,away\nu1,PAC-3,US,pa,false,\n\nu2,PAC-7,ROK,pb,maybe,2025-02/2025-02\n")
    with pytest.raises(InstanceError) as caught:
        build_document(tmp_path)
    text = [str(p) for p in caught.value.problems]
    assert any(t.startswith(f"{tmp_path / 'units.csv'}:4: units[1] (id=u2).fixed") for t in text), text
    (tmp_path / "units.csv").write_text("id,system\nu1,PAC-3,extra\n")
    with pytest.raises(InstanceError) as caught:
        build_document(tmp_path)
    assert any("units.csv:2" in str(p) and "2 fields where the header has 2" not in str(p)
               and "3 fields" in str(p) for p in caught.value.problems)


@pytest.mark.parametrize("named", [True, False])
def test_build_locates_settings_problems_at_their_own_line(named, small_document, tmp_path):
    """`layerdef build` names the line of settings.yaml a problem is on, as `validate` does,
    whether the settings name their tables or the tables are found beside them (the document
    was written out afresh before, its comments gone, and the lines pointed elsewhere)."""
    write_csv_instance(small_document, tmp_path)
    settings = tmp_path / "settings.yaml"
    lines = ["# a planner's notes", "# over several lines", *settings.read_text().splitlines()]
    if named:
        lines += [f"{table}: {table}.csv" for table in ("sites", "positions", "units", "substitutes")]
    at = next(i for i, line in enumerate(lines) if line.startswith("limits:")) + 1
    lines.insert(at, "  substitute_budget: -1  # wrong on purpose")
    lines = [line for i, line in enumerate(lines) if i == at or "substitute_budget" not in line]
    settings.write_text("\n".join(lines) + "\n")
    with pytest.raises(InstanceError) as caught:
        build_document(tmp_path)
    text = [str(p) for p in caught.value.problems]
    assert any(t.startswith(f"{settings}:{at + 1}: limits.substitute_budget") for t in text), text
    if named:  # a flow-style settings file still builds (written out afresh)
        settings.write_text(yaml.safe_dump({k: v for k, v in small_document.items()
                                            if k not in ("sites", "positions", "units", "substitutes")},
                                           sort_keys=False, default_flow_style=True))
        assert build_document(tmp_path)["sites"][0]["id"] == "a"


def test_unreadable_csv_is_located(small_document, tmp_path):
    small_document["sites"] = "missing.csv"
    problems = problems_of(small_document, tmp_path)
    assert any("sites: cannot read CSV 'missing.csv'" in p for p in problems)


@pytest.mark.parametrize("sites, positions, units, periods", [
    (30, 30, 10, 6), (200, 150, 40, 12), (1000, 400, 100, 12)])
def test_generated_instances_validate(tmp_path, sites, positions, units, periods):
    document = generate_document(sites, positions, units, periods, seed=7)
    path = tmp_path / "g.yaml"
    path.write_text(dump_document(document))
    inst = load(path)
    assert (len(inst.site_ids), len(inst.position_ids), len(inst.unit_ids), inst.T) == (
        sites, positions, units, periods)
    assert (~inst.present).any() and inst.requirement.sum() >= 1
    assert generate_document(sites, positions, units, periods, seed=7) == document


def test_generate_cli_refuses_to_overwrite(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("mine")
    result = CliRunner().invoke(main, ["generate", "--sites", "5", "-o", str(path)])
    assert result.exit_code == 2 and path.read_text() == "mine"
