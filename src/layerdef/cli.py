"""The `layerdef` command line. Pyomo and HiGHS are imported only by the commands that solve,
so `--help` stays fast.

Exit codes: 0 done; 1 a bug; 2 bad input or usage (one line per problem); 3 infeasible (with
the explanation); 4 no plan found within the limits. Progress goes to stderr, results to
stdout or files.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
from pathlib import Path
from typing import Callable, Iterator

import click

from layerdef.errors import (
    InfeasibleError,
    InstanceError,
    NoSolutionError,
    Problem,
    UsageError,
)

EXIT_BUG, EXIT_INPUT, EXIT_INFEASIBLE, EXIT_NO_SOLUTION = 1, 2, 3, 4
#: the shell's convention: 128 + SIGINT (Ctrl-C)
EXIT_INTERRUPTED = 130


def _fail(code: int, lines: list[str]) -> None:
    for line in lines:
        click.echo(line, err=True)
    sys.exit(code)


def handles_errors(command: Callable) -> Callable:
    """Turn the library's exceptions into one line per problem and the documented exit code."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            with progress_shown(not kwargs.get("quiet", False), kwargs.get("verbose", False)):
                return command(*args, **kwargs)
        except InstanceError as error:
            _fail(EXIT_INPUT, [str(p) for p in error.problems] or [str(error)])
        except InfeasibleError as error:
            _fail(EXIT_INFEASIBLE, ["infeasible: " + line for line in error.explanation])
        except NoSolutionError as error:
            _fail(EXIT_NO_SOLUTION, [f"no plan: {error}"])
        except KeyboardInterrupt:
            _fail(EXIT_INTERRUPTED, ["interrupted"])

    return wrapper


@contextlib.contextmanager
def progress_shown(shown: bool, verbose: bool) -> Iterator[None]:
    """The `layerdef` logger on stderr for one command: progress (INFO) unless `--quiet`,
    HiGHS's own log too (DEBUG) with `--verbose`."""
    from layerdef.solve.backend import logged_to_stderr

    with logged_to_stderr(logging.DEBUG if verbose else logging.INFO if shown else logging.WARNING):
        yield


def check_outputs(files: list[Path], force: bool, reads: list[Path] = (), owned: bool = False) -> None:
    """Check where a command will write, before it does any work (`output_problems`: the one
    rule for every command and the API); exit 2 with every problem."""
    from layerdef.io.outputs import output_problems

    problems = output_problems(files, force, reads, owned)
    if problems:
        _fail(EXIT_INPUT, [str(problem) for problem in problems])


def written(path: Path, write: Callable[[], object]) -> None:
    """Run a write that was checked by `check_outputs`; a failure the check could not foresee
    (a full disk, a read-only mount) is exit 2 with its reason, not a traceback."""
    try:
        write()
    except OSError as error:
        _fail(EXIT_INPUT, [f"{path}: cannot write: {error.strerror or error}"])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="layerdef")
def main() -> None:
    """layerdef: air and missile defense posture planning (public, notional data)."""


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@handles_errors
def validate(instance: Path) -> None:
    """Check an instance; print a summary, or every problem located (exit 2)."""
    from layerdef.io.reader import load

    click.echo(load(instance).summary())


@main.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
@handles_errors
def build(directory: Path, output: Path, force: bool) -> None:
    """Turn DIR/settings.yaml and its CSV tables into one checked instance file."""
    from layerdef.io.reader import build_document, dump_document

    check_outputs([output], force, [path for path in directory.iterdir() if path.is_file()]
                  if directory.is_dir() else [])
    document = build_document(directory)
    text = dump_document(document, output.parent, directory)
    written(output, lambda: output.write_text(text, encoding="utf-8"))
    click.echo(f"wrote {output}", err=True)


@main.command()
@click.option("--sites", type=click.IntRange(1), default=30, show_default=True)
@click.option("--positions", type=click.IntRange(1), default=30, show_default=True)
@click.option("--units", type=click.IntRange(1), default=10, show_default=True)
@click.option("--periods", type=click.IntRange(1), default=6, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option("--threats", type=click.IntRange(0, 12), default=0, show_default=True,
              help="Launch areas (with Patriot sectors and relocation downtime).")
@click.option("--headings", type=click.IntRange(1, 360), default=1, show_default=True,
              help="Headings a sector-limited unit may face.")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
@handles_errors
def generate(sites: int, positions: int, units: int, periods: int, seed: int, output: Path,
             threats: int, headings: int, force: bool) -> None:
    """Write a synthetic theater instance, reproducible from the seed."""
    from layerdef.io.generate import generate_document
    from layerdef.io.reader import dump_document

    check_outputs([output], force)
    document = generate_document(sites, positions, units, periods, seed, threats, headings)
    written(output, lambda: output.write_text(dump_document(document), encoding="utf-8"))
    click.echo(f"wrote {output}", err=True)


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the solution JSON here (else a summary goes to stdout).")
@click.option("--csv", "csv_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Write the tables as CSV files into this folder.")
@click.option("--objective", type=click.Choice(["coverage", "min-cost"]),
              help="Override the instance's objective.")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True),
              help="Seconds (with scenarios: for the hedged plan; each scenario solved alone for "
              "the values gets an equal share of it, 1 s at least, alongside on two or more cores).")
@click.option("--gap", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Relative MIP gap at which to stop.")
@click.option("--threads", type=click.IntRange(1), help="HiGHS threads.")
@click.option("--write-model", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the model as .mps or .lp.")
@click.option("--risk", type=click.Choice(["expected", "worst"]), default="expected",
              show_default=True, help="With scenarios: hedge for the expected or the worst coverage.")
@click.option("--scenario", help="With scenarios: plan as if this one were certain.")
@click.option("--plan-for", help="With scenarios: the scenario whose certain-date plan the hedged "
              "plan is compared with (value of the stochastic solution); default the most likely.")
@click.option("--no-values", is_flag=True, help="With scenarios: skip the values of the "
              "stochastic solution and of perfect information (one solve per scenario).")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@click.option("-v", "--verbose", is_flag=True, help="HiGHS's own log on stderr too.")
@click.option("--force", is_flag=True, help="Write over existing output files (never over an input).")
@handles_errors
def solve(instance: Path, output: Path | None, csv_dir: Path | None, objective: str | None,
          time_limit: float | None, gap: float, threads: int | None, write_model: Path | None,
          risk: str, scenario: str | None, plan_for: str | None, no_values: bool,
          quiet: bool, verbose: bool, force: bool) -> None:
    """Solve an instance: the plan against the current and reference postures; with scenarios,
    the hedged plan and what hedging is worth."""
    from layerdef.io.reader import load
    from layerdef.io.solution import OPTIONAL_TABLES, TABLE_NAMES
    from layerdef.report.text import solution_summary
    from layerdef.solve import solve as solve_instance

    if write_model is not None and write_model.suffix not in (".mps", ".lp"):
        _fail(EXIT_INPUT, [f"{write_model}: --write-model takes a .mps or .lp file"])
    inst = load(instance)
    names = [*TABLE_NAMES, *(OPTIONAL_TABLES if inst.has_turns else ())]
    tables = [csv_dir / f"{name}.csv" for name in names] if csv_dir is not None else []
    check_outputs([path for path in (output, write_model) if path is not None] + tables, force,
                  inst.sources)
    if scenario is not None:
        inst = inst.in_scenario(scenario)
    elif plan_for is not None:
        inst.in_scenario(plan_for)  # an unknown id is a usage problem before any solve
    if not quiet:
        hedge = f", {len(inst.scenario_ids)} scenarios" if inst.scenario_ids else ""
        click.echo(f"layerdef: solving {inst.name} ({len(inst.unit_ids)} units, "
                   f"{len(inst.position_ids)} positions, {len(inst.site_ids)} sites, "
                   f"{inst.T} periods{hedge})", err=True)
    plan = solve_instance(inst, objective=objective, time_limit=time_limit, gap=gap,
                          threads=threads,
                          write_model=str(write_model) if write_model else None,
                          risk=risk, plan_for=plan_for, values=not no_values)
    if output is not None:
        written(output, lambda: plan.write(output))
        if not quiet:
            click.echo(f"wrote {output}", err=True)
    if csv_dir is not None:
        paths = tables
        written(csv_dir, lambda: plan.write_csv(csv_dir))
        if not quiet:
            click.echo(f"wrote {len(paths)} tables to {csv_dir}", err=True)
    if output is None:
        click.echo(solution_summary(plan))


@main.command()
@click.argument("solution", type=click.Path(path_type=Path))
@click.option("--table", type=click.Choice(["summary", "assignments", "substitutes", "moves",
                                            "coverage", "turns", "defeat"]), default="summary", show_default=True,
              help="turns: where units may face headings; defeat: the probability of defeat and "
                   "leakers per 100 per site, class, launch area and period, with kill probabilities.")
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "json", "markdown"]),
              default="text", show_default=True)
@handles_errors
def show(solution: Path, table: str, fmt: str) -> None:
    """Print one table of a solution."""
    from layerdef.io.solution import Solution
    from layerdef.report.text import format_table

    plan = Solution.read(solution)
    if table not in plan.tables:
        why = "kill probabilities" if table == "defeat" else "headings to turn to"
        raise UsageError([Problem(str(solution), f"this solution has no {table} table (its instance "
                                  f"has no {why})", "--table")])
    if fmt == "text" and table == "summary":
        from layerdef.report.text import solution_summary

        click.echo(solution_summary(plan))
        return
    click.echo(format_table(plan.tables[table], fmt), nl=fmt != "csv")


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@click.argument("posture", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "json", "markdown"]),
              default="text", show_default=True)
@handles_errors
def evaluate(instance: Path, posture: Path, fmt: str) -> None:
    """Score a hand-made posture CSV (period, unit, position) without a solver."""
    from layerdef.core.evaluate import evaluate as evaluate_posture
    from layerdef.io.csvfile import read_posture
    from layerdef.io.reader import load
    from layerdef.report.text import evaluation_summary

    inst = load(instance)
    result = evaluate_posture(inst, read_posture(posture))
    click.echo(evaluation_summary(inst, result, fmt), nl=fmt != "csv")


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@click.argument("solutions", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "csv", "json"]),
              default="text", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the comparison here instead of stdout.")
@click.option("--scenario", help="With scenarios: compare in this one only (default: each "
              "scenario and the expectation).")
@click.option("--force", is_flag=True, help="Write over existing output files (never over an input).")
@handles_errors
def compare(instance: Path, solutions: tuple[Path, ...], fmt: str, output: Path | None,
            scenario: str | None, force: bool) -> None:
    """Reference vs current vs plans, per period and per site (figures from evaluate); with
    scenarios, in each scenario (plans made for one date are replayed) and in expectation."""
    from layerdef.io.reader import load
    from layerdef.io.solution import Solution
    from layerdef.report.compare import compare as compare_plans
    from layerdef.report.compare import compare_scenarios, render, render_scenarios

    inst = load(instance)
    plans = [(str(path), Solution.read(path)) for path in solutions]
    if output is not None:
        check_outputs([output], force, inst.sources + list(solutions))
    if scenario is None and inst.scenario_ids:
        text = render_scenarios(inst, compare_scenarios(inst, plans), fmt)
    else:
        text = render(compare_plans(inst, plans, scenario), fmt)
    if output is not None:
        ending = "" if text.endswith("\n") else "\n"
        written(output, lambda: output.write_text(text + ending, encoding="utf-8"))
    else:
        click.echo(text, nl=not text.endswith("\n"))


@main.command()
@click.argument("solution", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option("--instance", "instance_path", type=click.Path(path_type=Path),
              help="The instance solved (default: the path recorded in the solution).")
@click.option("--png", "png_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Also write the maps and charts as PNG files here.")
@click.option("--scenario", help="A hedged plan: draw it in this scenario (default: the most likely).")
@click.option("--force", is_flag=True, help="Write over existing output files (never over an input).")
@handles_errors
def report(solution: Path, output: Path, instance_path: Path | None, png_dir: Path | None,
           scenario: str | None, force: bool) -> None:
    """One self-contained HTML report (offline): map, charts, timeline, moves, comparison."""
    from layerdef.io.reader import load
    from layerdef.io.solution import Solution
    from layerdef.report.html import write_report

    plan = Solution.read(solution)
    if instance_path is None:
        recorded = plan.instance.get("path")
        if not recorded or not Path(recorded).exists():
            raise InstanceError([Problem(str(solution), f"the instance it was solved on "
                                         f"({recorded!r}) is not there; give --instance FILE")])
        instance_path = Path(recorded)
    inst = load(instance_path)
    pngs = ([png_dir / f"map-{period}.png" for period in inst.periods]
            + [png_dir / "coverage.png", png_dir / "timeline.png"]) if png_dir is not None else []
    check_outputs([output] + pngs, force, inst.sources + [solution])
    paths: list[Path] = []
    written(output, lambda: paths.extend(write_report(output, inst, plan, str(solution), png_dir,
                                                      scenario) or []))
    click.echo(f"wrote {output}", err=True)
    if png_dir is not None:
        click.echo(f"wrote {len(paths)} PNG files to {png_dir}", err=True)


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--budgets", default="0:12:1", show_default=True,
              help="start:stop:step (inclusive) or a comma-separated list.")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), help="Seconds per point.")
@click.option("-q", "--quiet", is_flag=True)
@handles_errors
def frontier(instance: Path, output: Path, budgets: str, time_limit: float | None, quiet: bool) -> None:
    """Coverage against substitute budget: DIR/frontier.csv and DIR/frontier.png."""
    from layerdef.io.reader import load
    from layerdef.studies.frontier import frontier as budget_frontier
    from layerdef.studies.frontier import frontier_figure, marginal_lines, parse_range

    points = parse_range(budgets)
    inst = load(instance)
    check_outputs([output / "frontier.csv", output / "frontier.png"], False, inst.sources, owned=True)
    table = budget_frontier(inst, points, time_limit=time_limit)
    written(output, lambda: table.to_csv(output / "frontier.csv", index=False))
    written(output, lambda: frontier_figure(table, inst.name, output / "frontier.png"))
    click.echo("\n".join(marginal_lines(table)))
    if not quiet:
        click.echo(f"wrote {output / 'frontier.csv'} and {output / 'frontier.png'}", err=True)


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--vary", multiple=True, help="PATH=VALUES, repeatable (their product is swept), "
              "e.g. limits.substitute_budget=0:12:2 or units.A-2-1ADA.away=2025-03/2025-06,2025-03/2025-10")
@click.option("--cases", "cases_file", type=click.Path(path_type=Path, dir_okay=False),
              help="A CSV with one case per row; columns are dotted paths.")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True,
              help="Local worker processes.")
@click.option("--scheduler", help="Address of a Dask distributed scheduler (tcp://host:8786).")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), help="Seconds per case.")
@click.option("--gap", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("-q", "--quiet", is_flag=True)
@handles_errors
def sweep(instance: Path, output: Path, vary: tuple[str, ...], cases_file: Path | None, workers: int,
          scheduler: str | None, time_limit: float | None, gap: float, quiet: bool) -> None:
    """Solve many variants of an instance; resumable; local processes or Dask."""
    from layerdef.studies.sweep import parse_vary, product_cases, read_cases
    from layerdef.studies.sweep import sweep as run_sweep

    if bool(vary) == bool(cases_file):
        _fail(EXIT_INPUT, ["give --vary PATH=VALUES (repeatable) or --cases FILE.csv, not both"])
    from layerdef.io.reader import load

    cases = read_cases(cases_file) if cases_file else product_cases([parse_vary(v) for v in vary])
    outputs = [output / "summary.csv", output / "results.parquet"]
    check_outputs(outputs, False, load(instance).sources, owned=True)
    options = {"time_limit": time_limit, "gap": gap}
    summary = run_sweep(instance, cases, output, options, workers=workers, scheduler=scheduler)
    columns = [c for c in summary.columns if c not in ("key", "error", "wall_s")]
    from layerdef.report.text import format_table

    click.echo(format_table(summary[columns], "text"))
    if not quiet:
        click.echo(f"wrote {output / 'summary.csv'} and {output / 'results.parquet'}", err=True)


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@click.option("--lose", type=click.IntRange(0), required=True,
              help="Withdraw up to this many further units (0: the plain plan).")
@click.option("--eligible", help="Unit ids (comma-separated) or an owner; default: every movable organic unit.")
@click.option("--from", "first", help="Period the units leave (default: the second period).")
@click.option("--for", "periods", type=click.IntRange(1), help="Periods they stay away (default: to the end).")
@click.option("--notice", type=click.IntRange(0), default=0, show_default=True,
              help="Periods before leaving that the withdrawal is known.")
@click.option("--max-sets", type=click.IntRange(1), default=500, show_default=True,
              help="Beyond this many sets, criticality lists single units and the sets the robust search finds.")
@click.option("-o", "--output", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True, help="Local worker processes.")
@click.option("--scheduler", help="Address of a Dask distributed scheduler (tcp://host:8786).")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), help="Seconds per solve.")
@click.option("--gap", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("-q", "--quiet", is_flag=True)
@handles_errors
def stress(instance: Path, lose: int, eligible: str | None, first: str | None, periods: int | None,
           notice: int, max_sets: int, output: Path, workers: int, scheduler: str | None,
           time_limit: float | None, gap: float, quiet: bool) -> None:
    """Which further withdrawals hurt most (DIR/criticality.csv), and the plan that holds up
    best whichever come (DIR/robust.json); resumable."""
    from layerdef.io.reader import load
    from layerdef.studies.stress import STRESS_OUTPUTS, stress_request, summary_lines
    from layerdef.studies.stress import stress as run_stress

    inst = load(instance)
    window, units = stress_request(inst, lose, eligible, first, periods, notice)
    outputs = [output / name for name in STRESS_OUTPUTS]
    check_outputs(outputs, False, inst.sources, owned=True)
    result = run_stress(inst, lose, window, units, output, {"time_limit": time_limit, "gap": gap},
                        workers=workers, scheduler=scheduler, max_sets=max_sets)
    click.echo("\n".join(summary_lines(result, inst)))
    if not quiet:
        click.echo(f"wrote {', '.join(str(path) for path in outputs)}", err=True)


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@click.argument("solution", type=click.Path(path_type=Path))
@click.option("--scenario", required=True, help="A scenario id of the instance.")
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "json", "markdown"]),
              default="text", show_default=True)
@handles_errors
def replay(instance: Path, solution: Path, scenario: str, fmt: str) -> None:
    """Play a plan in a scenario where units return at other dates, and score it."""
    from layerdef.core.replay import replay as replay_plan
    from layerdef.io.reader import load
    from layerdef.io.solution import Solution
    from layerdef.report.text import evaluation_summary

    inst = load(instance)
    plan = Solution.read(solution)
    posture = plan.in_scenario(scenario).posture if plan.hedged else plan.posture
    world, result = replay_plan(inst, posture, scenario)
    click.echo(evaluation_summary(world, result, fmt), nl=fmt != "csv")


if __name__ == "__main__":
    main()
