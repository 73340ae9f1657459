"""The `coldsim` command line (Typer)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import __version__
from .errors import ScenarioError
from .result import OutputDirError, check_output_dir
from .scenario import Scenario, load_scenario
from .simulation import simulate

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Simulate serverless cold and warm starts from a YAML scenario.",
)
out_console = Console()
if not out_console.is_terminal:  # piped or captured: do not squeeze tables into 80 columns
    out_console = Console(width=180)
err_console = Console(stderr=True)

ScenarioArg = Annotated[Path, typer.Argument(help="Scenario YAML file.", show_default=False)]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override a field: dotted.path=value (repeatable).", metavar="PATH=V"
    ),
]


def _fail(err: Exception, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
    return typer.Exit(code=code)


@app.command()
def run(
    scenario: ScenarioArg,
    seed: Annotated[int | None, typer.Option(help="Seed for every random stream.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder [default: results/<name>].")
    ] = None,
    set_: SetOpt = None,
    duration_s: Annotated[
        float | None, typer.Option("--duration-s", help="Simulated span, s.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success.")] = False,
) -> None:
    """Run a scenario; write summary.json, the logs (Parquet), scenario.yaml and plots."""
    try:
        sc = load_scenario(scenario, set_ or (), seed=seed, duration_s=duration_s)
        out_dir = check_output_dir(out if out is not None else Path("results") / sc.name)
        if quiet:
            result = simulate(sc)
        else:
            with Progress(
                TextColumn(f"simulating [bold]{sc.name}[/]"), BarColumn(), TimeElapsedColumn(),
                console=err_console, transient=True,
            ) as bar:  # fmt: skip
                task = bar.add_task("run", total=1.0)
                result = simulate(sc, progress=lambda f: bar.update(task, completed=f))
    except (ScenarioError, OutputDirError) as err:
        raise _fail(err) from None
    try:
        result.save(out_dir)
    except OSError as err:
        raise _fail(f"cannot write {out_dir}: {err}", code=1) from None
    if not quiet:
        _print_summary(result.summary)
        out_console.print(f"results written to {out_dir}", highlight=False, markup=False)


@app.command()
def validate(
    scenario: ScenarioArg,
    set_: SetOpt = None,
    show: Annotated[bool, typer.Option("--show", help="Print it with defaults filled in.")] = False,
) -> None:
    """Check a scenario (exit 0 if valid, 2 with the problems if not)."""
    try:
        sc = load_scenario(scenario, set_ or ())
    except ScenarioError as err:
        raise _fail(err) from None
    if show:
        print(yaml.safe_dump(sc.to_dict(), sort_keys=False), end="")
    else:
        out_console.print(
            f"{scenario}: valid ({len(sc.functions)} function(s))", highlight=False, markup=False
        )


@app.command()
def schema() -> None:
    """Print the scenario format as JSON Schema (for editor completion of YAML)."""
    print(json.dumps(Scenario.model_json_schema(), indent=2))


@app.command()
def version() -> None:
    """Print coldsim's version."""
    print(__version__)


def _print_summary(s: dict) -> None:
    table = Table(title=f"{s['scenario']} (seed {s['seed']}, {s['wall_s']:.2f} s wall)")
    columns = ("function", "requests", "cold", "cold rate", "throttled", "p50 ms", "p99 ms",
               "p99 cold ms", "mean instances", "idle GB-s", "cost USD")  # fmt: skip
    for col in columns:
        table.add_column(col, justify="left" if col == "function" else "right", no_wrap=True)
    rows = list(s["per_function"].items())
    if len(rows) > 1:
        rows.append(("all", s))
    for name, m in rows:
        table.add_row(
            name, f"{m['invocations']:,}", f"{m['cold_starts']:,}", _pct(m["cold_start_rate"]),
            f"{m['throttled']:,}", _num(m["latency_ms"]["p50"]), _num(m["latency_ms"]["p99"]),
            _num(m["latency_ms_cold"]["p99"]), f"{m['mean_instances']:.2f}",
            f"{m['idle_gb_s']:,.0f}", f"{m['cost_usd']['total']:,.4f}",
        )  # fmt: skip
    out_console.print(table)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:,.1f}"


def main() -> None:
    app()
