"""Kill probabilities (DESIGN.md "Engagement value"): validation, the textbook instance where
multiplying the layers and adding them choose different positions, the depth model it equals
with one system and one layer per class, and random instances against the enumeration (which
computes the product itself)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from conftest import INSTANCES, load_document
from test_brute_force import check_against_enumeration, random_document
from test_threats import threat_document

from layerdef import evaluate, solve
from layerdef.errors import InstanceError
from layerdef.io.reader import load, loads

SPREADS = INSTANCES / "textbook" / "kill-probability-spreads.yaml"


def kill_document(seed: int, directory) -> dict:
    """A random tiny instance (`random_document`) valued by kill probabilities: random pk per
    system and layer, and on odd seeds one class engaged by both layers."""
    rng = np.random.default_rng(5000 + seed)
    document = random_document(seed, directory)
    document["value"] = "kill-probability"
    document["systems"] = {name: {"covers": {"lower": 40, "air": 60},
                                  "pk": {"lower": float(rng.choice([0.3, 0.5, 0.7, 0.9])),
                                         "air": float(rng.choice([0.4, 0.6, 0.8]))}}
                           for name in ("PAC-3", "KM-SAM")}
    if seed % 2:
        document["threat_classes"] = {"missile": {"layers": ["lower", "air"], "weight": 1.0}}
    return document


def kill_threat_document(seed: int, directory) -> dict:
    """A random tiny instance with launch areas, headings and relocation downtime
    (`threat_document`) valued by kill probabilities: random pk per system and layer, and on
    odd seeds one class engaged by both layers."""
    rng = np.random.default_rng(7000 + seed)
    document = threat_document(seed, directory)
    document["value"] = "kill-probability"
    for spec in document["systems"].values():
        spec["pk"] = {"lower": float(rng.choice([0.3, 0.5, 0.7, 0.9])), "air": float(rng.choice([0.4, 0.6, 0.8]))}
    if seed % 2:
        document["threat_classes"] = {"missile": {"layers": ["lower", "air"], "weight": 1.0}}
    return document


@pytest.mark.parametrize("seed", range(40))
def test_solver_equals_enumeration_with_kill_probabilities(seed, tmp_path):
    check_against_enumeration(load_document(kill_document(seed, tmp_path), tmp_path))


@pytest.mark.parametrize("seed", range(20))
def test_kill_probabilities_with_launch_areas_headings_and_downtime_equal_the_enumeration(seed, tmp_path):
    check_against_enumeration(load_document(kill_threat_document(seed, tmp_path), tmp_path))


def test_multiplying_the_layers_sends_the_patriot_where_adding_them_does_not(tmp_path):
    plan = solve(load(SPREADS))
    assert plan.status == "optimal"
    assert plan.objective["coverage"] == pytest.approx(13.0, abs=1e-9)
    assert plan.objective["moves"] == 1
    posture = plan.posture.set_index("unit")
    assert posture.loc["pac", "position"] == "p-port"
    check = evaluate(load(SPREADS), plan.posture)
    assert check.total == pytest.approx(13.0, abs=1e-9)
    assert check.defeat is not None and check.defeat.max() == pytest.approx(0.9)
    text = SPREADS.read_text().replace("value: kill-probability", "value: depth")
    depth = solve(loads(text, tmp_path / "depth.yaml"))
    assert depth.objective["coverage"] == pytest.approx(20.0)
    assert depth.posture.set_index("unit").loc["pac", "position"] == "p-capital"


@pytest.mark.parametrize("seed", range(12))
def test_one_system_and_one_layer_per_class_is_the_depth_model(seed, tmp_path):
    """With one system of pk p and each layer its own class, the value at every integer
    posture is the depth model's with weights p (1 - p)^(j-1): the optima agree."""
    rng = np.random.default_rng(seed)
    pk = float(rng.choice([0.3, 0.6, 0.85]))
    document = random_document(seed, tmp_path)
    for unit in document["units"]:
        unit["system"] = "PAC-3"
    document["substitutes"][0]["system"] = "PAC-3"
    document["objective"] = "coverage"
    document["systems"] = {"PAC-3": {"covers": {"lower": 40, "air": 60}, "pk": {"lower": pk, "air": pk}}}
    document["depth_weights"] = [pk * (1 - pk) ** j for j in range(6)]
    depth = load_document(document, tmp_path)
    document["value"] = "kill-probability"
    kill = load_document(document, tmp_path)
    if not evaluate(depth, depth.current_posture()).feasible:
        pytest.skip("the current posture breaks a requirement")
    by_depth, by_kill = solve(depth), solve(kill)
    assert by_kill.objective["coverage"] == pytest.approx(by_depth.objective["coverage"], rel=1e-7)
    assert evaluate(kill, by_depth.posture).total == pytest.approx(by_depth.objective["coverage"], rel=1e-9)


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["systems"]["PAC-3"].pop("pk"), "systems.PAC-3.pk.lower"),
    (lambda d: d["systems"]["PAC-3"]["pk"].update(lower=1.0), "systems.PAC-3.pk.lower"),
    (lambda d: d["systems"]["PAC-3"]["pk"].update(lower=0), "systems.PAC-3.pk.lower"),
    (lambda d: d["systems"]["PAC-3"]["pk"].update(sea=0.5), "systems.PAC-3.pk"),
    (lambda d: d.update(value="leakage"), "value"),
    (lambda d: d["threat_classes"]["ballistic"].update(layers=["space"]), "threat_classes.ballistic.layers"),
    (lambda d: d["threat_classes"]["ballistic"].update(layers=[]), "threat_classes.ballistic.layers"),
    (lambda d: d["threat_classes"]["ballistic"].update(weight=-1), "threat_classes.ballistic.weight"),
])
def test_kill_probability_fields_are_validated_and_located(mutate, expected, tmp_path):
    document = yaml.safe_load(SPREADS.read_text())
    mutate(document)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(InstanceError) as raised:
        load(path)
    assert expected in str(raised.value)


def test_a_pyomo_model_with_kill_probabilities_is_refused():
    from layerdef.errors import UsageError
    from layerdef.model.formulation import build_model

    inst = load(SPREADS)
    with pytest.raises(UsageError):
        solve(inst, model=build_model(inst))


#: 5 (worst), 109 (expected): HiGHS's presolve called a plan with more expected moves optimal
#: (`PRESOLVE_RULES_OFF_WITH_KILL`)
@pytest.mark.parametrize("seed", [*range(10), 109])
@pytest.mark.parametrize("risk", ["expected", "worst"])
def test_hedged_plans_with_kill_probabilities_equal_the_enumeration(seed, risk, tmp_path):
    from test_hedge import check_against_hedged_enumeration, random_scenario_document

    document = random_scenario_document(seed, tmp_path)
    document.update({key: value for key, value in kill_document(seed, tmp_path).items()
                     if key in ("value", "systems", "threat_classes")})
    check_against_hedged_enumeration(load_document(document, tmp_path), risk)


def test_the_korea_kill_instance_sources_its_classes_and_kill_probabilities():
    """Korea valued by kill probabilities: two classes, each with a note; every system it uses
    has a pk in (0, 1) on every layer it covers, sourced in the catalog or the instance."""
    from layerdef.io.catalog import load_catalog

    inst = load(INSTANCES / "korea-2025-kill.yaml")
    assert inst.kill_probability and inst.class_ids == ["ballistic", "air"]
    document = yaml.safe_load((INSTANCES / "korea-2025-kill.yaml").read_text())
    assert all(entry.get("note") for entry in document["threat_classes"].values())
    covered = ~np.isnan(inst.system_radius)
    assert np.all((inst.system_pk[covered] > 0) & (inst.system_pk[covered] < 1))
    catalog_text = (INSTANCES.parent / "src" / "layerdef" / "io" / "catalog.yaml").read_text()
    for name in inst.systems:
        assert "pk" in load_catalog()[name]
        assert name in document["systems"] or f"{name}:" in catalog_text
    assert catalog_text.count("\n  # pk:") == len(load_catalog())  # each sourced beside it


def test_the_solution_carries_defeat_probabilities_and_leakers(tmp_path):
    """The textbook plan: leakers per 100 missiles 100 x (1 - 13/15) against the current
    posture's 100 x (1 - 9/15); the defeat table per site and class, in the JSON (read back
    through the schema), the CSV files, `show` and `compare`."""
    from click.testing import CliRunner

    from layerdef.cli import main
    from layerdef.io.solution import Solution

    plan = solve(load(SPREADS))
    assert plan.objective["leakers_per_100"] == pytest.approx(100 * 2 / 15)
    assert plan.current["leakers_per_100"] == pytest.approx(100 * 6 / 15)
    defeat = plan.tables["defeat"].set_index("site")
    assert defeat.loc["capital", "defeat"] == pytest.approx(0.9)
    assert defeat.loc["port", "leakers_per_100"] == pytest.approx(20.0)
    path = tmp_path / "plan.json"
    plan.write(path)
    again = Solution.read(path)
    assert list(again.tables["defeat"].columns) == ["period", "site", "class", "defeat",
                                                    "leakers_per_100", "value", "most"]
    written = plan.write_csv(tmp_path / "csv")
    assert any(p.name == "defeat.csv" for p in written)
    shown = CliRunner().invoke(main, ["show", str(path)])
    assert "leakers per 100 missiles 13.33: 26.67 fewer than the current posture" in shown.output
    assert "probability of defeat by site" in shown.output
    table = CliRunner().invoke(main, ["show", str(path), "--table", "defeat", "--format", "csv"])
    assert table.exit_code == 0
    rows = {row.split(",")[1]: row.split(",") for row in table.output.splitlines()[1:]}
    assert float(rows["capital"][3]) == pytest.approx(0.9) and float(rows["port"][4]) == pytest.approx(20.0)
    no_turns = CliRunner().invoke(main, ["show", str(path), "--table", "turns"])
    assert no_turns.exit_code == 2 and "this solution has no turns table" in no_turns.output
    compared = CliRunner().invoke(main, ["compare", str(SPREADS), str(path)])
    assert "leakers_per_100" in compared.output
    reported = CliRunner().invoke(main, ["report", str(path), "-o", str(tmp_path / "report.html")])
    assert reported.exit_code == 0
    assert "probability of defeat" in (tmp_path / "report.html").read_text()


def test_a_plan_that_overstates_its_defeat_probability_is_cut_and_never_returned_as_is():
    """`HighsBackend.run` with kill probabilities: a plan whose probability of defeat lies
    above 1 - exp(-chi) gets the tangent cut at its chi; out of time then, the plan comes back
    with its probabilities on the curve (exact value), not as HiGHS gave it."""
    import time

    from layerdef.model.formulation import defeat_pairs, formulate
    from layerdef.solve.backend import HighsBackend, SolverOptions, StageResult

    form = formulate(load(SPREADS))
    backend = HighsBackend(form, SolverOptions())
    backend.set_objective("coverage", -1)
    plan = backend.run(None).solution
    defeat, exponent = defeat_pairs(form)
    assert np.allclose(plan[defeat], -np.expm1(-plan[exponent]), atol=1e-6)
    overstated = plan.copy()
    overstated[defeat[0]] = min(1.0, plan[defeat[0]] + 0.05)

    def slow_and_wrong(time_limit, retry=True):
        time.sleep(0.02)
        return StageResult("optimal", overstated.copy(), None, 0.02)

    backend._run_once = slow_and_wrong
    before = len(backend.cuts)
    ended = backend.run(0.01)
    assert len(backend.cuts) == before + 1
    assert ended.status == "time_limit"
    assert ended.solution[defeat[0]] == pytest.approx(-np.expm1(-plan[exponent[0]]))
