"""The `coldsim` commands: run, validate, schema, sweep, compare, plan, trace, version."""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..errors import ScenarioError
from ..policies.base import PolicyError
from ..reporting import plots, style
from ..reporting import trace_inspection as inspect_trace
from ..reporting.output import (
    GENERATED,
    OutputDirError,
    check_output_dir,
    check_output_file,
    generated_text,
    write_file,
)
from ..scenario.globalstate import resources
from ..scenario.loading import load_scenario, parse_scenario
from ..scenario.presets import PRESETS
from ..scenario.presets import markdown as preset_tables
from ..scenario.schema import NAME_PATTERN, Scenario
from ..simulation import check_run_memory, simulate
from ..version import __version__
from .common import (
    AllowImportOpt,
    MemoryOpt,
    ScenarioArg,
    SetOpt,
    _fail,
    _num,
    _pct,
    _progress,
    _show_warning,
    _write,
    app,
    err_console,
    out_console,
)


class FigureStyle(StrEnum):
    default = "default"
    paper = "paper"


StyleOpt = Annotated[
    FigureStyle,
    typer.Option("--style", help="Figures: default (for a screen: PNG; compare adds SVG) or "
                                 "paper (one column of a paper, 3.5 in wide: PDF and SVG, "
                                 "fonts embedded)."),
]


def _requests_option(value: str | None) -> str | None:
    if value is None or value in ("all", "none"):
        return value
    try:
        fraction = float(value)
    except ValueError:
        fraction = math.nan
    if not 0 < fraction <= 1:
        raise typer.BadParameter(f"all, none or a fraction in (0, 1], not {value!r}")
    return repr(fraction)


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
    allow_import: AllowImportOpt = False,
    skip_memory_check: MemoryOpt = False,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Local processes: the run split into shards of functions "
                                 "that share nothing [default: 1, unsplit]."),
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option("--dask", help="Dask scheduler address: the shards run there "
                                    "(pip install coldsim[dask])."),
    ] = None,
    requests: Annotated[
        str | None,
        typer.Option("--requests", callback=_requests_option, metavar="all|none|FRACTION",
                     help="invocations.parquet: every request, none, or a seeded sample of "
                          "this fraction (outputs.requests) [default: the scenario's, all]."),
    ] = None,
    figure_style: StyleOpt = FigureStyle.default,
) -> None:
    """Run a scenario: summary.json, logs (Parquet), resolved scenario.yaml, plots."""
    try:
        overrides = [*(set_ or ()), *([f"outputs.requests={requests}"] if requests else [])]
        sc = load_scenario(
            scenario, overrides, seed=seed, duration_s=duration_s, allow_import=allow_import
        )
        out_dir = check_output_dir(out if out is not None else Path("results") / sc.name, "run")
        if not skip_memory_check:
            check_run_memory(sc, workers, dask, out_dir,
                             hint=" (or pass --skip-memory-check to insist)")  # fmt: skip
        # The run streams into the folder (its request log in row groups as it goes), which
        # replaces out_dir atomically at the end.
        split = {"workers": workers, "dask": dask, "memory_check": False, "save_to": out_dir}
        with style.using(figure_style.value):  # the figures saved with the run
            if quiet:
                result = simulate(sc, **split)
            else:
                what = "shards done" if dask is not None or (workers or 1) > 1 else "simulated time"
                with _progress(f"simulating [bold]{escape(sc.name)}[/] ({what})") as bar:
                    task = bar.add_task("run", total=1.0)
                    result = simulate(sc, progress=lambda f, requests: bar.update(
                        task, completed=f, requests=requests), **split)  # fmt: skip
    except (ScenarioError, OutputDirError, PolicyError) as err:
        raise _fail(err) from None
    except KeyboardInterrupt:  # (worker processes are stopped with it)
        err_console.print("interrupted: nothing was written")
        raise typer.Exit(code=130) from None
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
    allow_import: AllowImportOpt = False,
) -> None:
    """Check a scenario (exit 0 if valid, 2 with the problems if not)."""
    try:
        sc = load_scenario(scenario, set_ or (), allow_import=allow_import)
        if sc.sweep is not None:  # every point of its grid must be a valid scenario too
            from ..studies.sweep import point_scenario, points

            for point in points(sc.sweep.grid):
                point_scenario(sc, point)
    except ScenarioError as err:
        raise _fail(err) from None
    if show:
        print(yaml.safe_dump(sc.to_dict(), sort_keys=False), end="")
    else:
        out_console.print(
            f"{scenario}: valid ({len(sc.functions)} function(s))", highlight=False, markup=False
        )


@app.command()
def schema(
    presets: Annotated[
        bool,
        typer.Option(
            "--presets", help="Print each platform preset's values and sources (Markdown)."
        ),
    ] = False,
) -> None:
    """Print the scenario format as JSON Schema (for editors' YAML completion); the platform
    presets' values under "x-presets" (or, with --presets, as Markdown tables)."""
    if presets:
        print(preset_tables(), end="")
        return
    out = Scenario.model_json_schema()
    out["x-presets"] = {
        name: {"summary": p.summary, "platform": p.platform, "function": p.function,
               "memory_mb": list(p.memory_mb), "runtime_init": p.runtime_init,
               "sources": p.sources, "notes": list(p.notes)}
        for name, p in PRESETS.items()
    }  # fmt: skip
    # JSON has no infinity: a preset's unbounded value is written as YAML writes it.
    print(json.dumps(_no_infinity(out), indent=2, allow_nan=False))


def _no_infinity(value):
    if isinstance(value, float) and math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    if isinstance(value, dict):
        return {k: _no_infinity(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_infinity(v) for v in value]
    return value


@app.command("sweep")
def sweep_cmd(
    scenario: ScenarioArg,
    grid: Annotated[
        list[str] | None,
        typer.Option("--grid", help="dotted.path=v1,v2,... (repeatable).", metavar="PATH=V,.."),
    ] = None,
    replications: Annotated[
        int | None,
        typer.Option(min=1, help="Runs per point [default: the scenario's sweep block, or 5]."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Local processes [default: cores].")
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option("--dask", help="Dask scheduler address (pip install coldsim[dask])."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder [default: results/<name>-sweep].")
    ] = None,
    set_: SetOpt = None,
    allow_import: AllowImportOpt = False,
    skip_memory_check: MemoryOpt = False,
) -> None:
    """Run a grid of knob values x replications on common random numbers.

    Writes sweep.parquet and sweep.csv (mean and 95% CI per metric and point) and
    runs.parquet; finished runs are kept, so an interrupted sweep resumes."""
    from ..studies.sweep import knob_text, parse_grid, sweep

    try:
        sc = load_scenario(scenario, set_ or (), allow_import=allow_import)
        knobs = parse_grid(grid) if grid else None
        out_dir = check_output_dir(out or Path("results") / f"{sc.name}-sweep", "sweep")
        with _progress("sweep", "runs") as bar:
            task = bar.add_task("sweep", total=None)
            first: list[int] = []

            def show(done: int, total: int, under_way: float = 0.0) -> None:
                if not first:  # runs found in the store: no pace to learn from
                    first.append(done)
                    bar.update(task, start_done=done)
                # (runs under way count by their simulated time: the bar moves from the first)
                bar.update(task, completed=done + under_way, total=total)

            result = sweep(
                sc,
                knobs,
                replications,
                workers=workers,
                out=out_dir,
                dask=dask,
                progress=show,
                memory_check=not skip_memory_check,
            )
    except (ScenarioError, OutputDirError, PolicyError) as err:
        raise _fail(err) from None
    except KeyboardInterrupt:
        err_console.print("interrupted: finished runs are kept; run the same command to resume")
        raise typer.Exit(code=130) from None
    cols = [*result.knobs, "cold_start_rate_mean", "latency_ms.p99_mean", "cost_usd.total_mean"]
    if sc.platform.hosts is not None:  # what memory pressure costs
        cols[-1:-1] = ["instances_ended.pressure_mean", "dropped_no_memory_mean",
                       "hosts.wasted_gb_s_mean"]  # fmt: skip
    for name in resources(sc.functions):  # connections held, and time over the limit
        cols[-1:-1] = [c for c in (f"connections.{name}.peak_mean",
                                   f"connections.{name}.time_above_limit_s_mean")
                       if c in result.table]  # fmt: skip
    table = Table(
        title=f"{sc.name}: {len(result.table)} points x {result.runs['replication'].nunique()} runs"
    )
    for col in cols:
        table.add_column(col.removesuffix("_mean"), justify="right")
    for _, row in result.table[cols].iterrows():  # (cells as Text: a label is no markup)
        table.add_row(*(Text(knob_text(None if v != v else v) if col in result.knobs  # nan: null
                             else f"{v:.4g}" if isinstance(v, float) else str(v))
                        for col, v in row.items()))  # fmt: skip
    out_console.print(table)
    out_console.print(f"written to {out_dir}", highlight=False, markup=False)


@app.command("compare")
def compare_cmd(
    items: Annotated[
        list[Path],
        typer.Argument(
            help="Result folders, scenario files, or one sweep folder.",
            show_default=False,
            metavar="ITEM",
        ),
    ],
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("results/compare"),
    allow_import: AllowImportOpt = False,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", metavar="NAME",
                     help="Series name, repeated: one per run, in order (for a sweep: one per "
                          "curve) [default: the runs' names]."),
    ] = None,
    figure_style: StyleOpt = FigureStyle.default,
) -> None:
    """Compare runs, or the points of a sweep: a table and figures (PNG and SVG).

    Runs: latency CDFs, cold-start rate with CIs, cost vs p99 with its Pareto frontier,
    instances and cold starts over time. A sweep: metric-vs-knob curves with CI bands,
    heatmaps for two knobs, and the Pareto plot."""
    from ..studies.compare import KEY_METRICS, compare

    try:
        for item in items:
            if not item.exists():
                raise ScenarioError("not found", file=str(item))
        with _progress("compare", "items") as bar:
            task = bar.add_task("compare", total=len(items))
            table = compare(
                list(items), out, allow_import=allow_import, labels=label,
                figure_style=figure_style.value,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )  # fmt: skip
    except (ScenarioError, OutputDirError, PolicyError) as err:
        raise _fail(err) from None
    except OSError as err:
        raise _fail(f"cannot write {out}: {err}", code=1) from None
    out_console.print(_compare_table(table, KEY_METRICS))
    out_console.print(f"written to {out.resolve()}", highlight=False, markup=False)


def _with_ci(mean, low, high) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    text = f"{mean:.4g}"
    if low is not None and high is not None and not (math.isnan(low) or math.isnan(high)):
        text += f" [{low:.3g}, {high:.3g}]"
    return text


def _compare_table(table, metrics) -> Table:
    """The comparison as a table: each metric with its 95% CI where there is one."""
    from ..studies.compare import LABELS, value_text

    out = Table(title="comparison (95% CI in brackets)")
    if "run" in table:  # runs
        per_hour = table["window_h"].nunique() > 1
        cols = [("run", None)] + [(m, m) for m in ("cold_start_rate", "latency_ms.p50",
                                                   "latency_ms.p99")]  # fmt: skip
        if per_hour:  # totals of different spans are not comparable: rates per hour
            cols += [("idle memory (GB-s/h)", "idle_gb_s_per_hour"),
                     ("cost (USD/h)", "cost_usd.total_per_hour")]  # fmt: skip
        else:
            cols += [("idle_gb_s", "idle_gb_s"), ("cost (USD)", "cost_usd.total")]
        for name, _ in cols:
            out.add_column(LABELS.get(name, name), justify="left" if name == "run" else "right")
        for _, row in table.iterrows():
            cells = [Text(str(row["run"]))]  # (a folder's name: no markup)
            for _, key in cols[1:]:
                low, high = row.get(f"{key}_ci_low"), row.get(f"{key}_ci_high")
                cells.append(_with_ci(row[key], low, high))
            out.add_row(*cells)
        return out
    knobs = [c for c in table.columns if not c.endswith(("_mean", "_ci_low", "_ci_high"))
             and c != "replications"]  # fmt: skip
    shown = [m for m in metrics if f"{m}_mean" in table]
    for k in knobs:
        out.add_column(k)
    for m in shown:
        out.add_column(LABELS.get(m, m), justify="right")
    for _, row in table.iterrows():
        out.add_row(*(Text("null" if row[k] is None else value_text(row[k])) for k in knobs),
                    *(_with_ci(row[f"{m}_mean"], row[f"{m}_ci_low"], row[f"{m}_ci_high"])
                      for m in shown))  # fmt: skip
    return out


@app.command("plan")
def plan_cmd(
    scenario: ScenarioArg,
    knob: Annotated[
        str,
        typer.Option(
            help="Dotted path of an integer knob, e.g. functions.0.provisioned_concurrency."
        ),
    ],
    target: Annotated[list[str], typer.Option(help='e.g. "latency_ms.p99<=300" (repeatable).')],
    range_: Annotated[str, typer.Option("--range", help="LOW:HIGH to search.")] = "0:100",
    replications: Annotated[int, typer.Option(min=2, help="Runs per evaluated value.")] = 5,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Local processes [default: cores].")
    ] = None,
    set_: SetOpt = None,
    allow_import: AllowImportOpt = False,
    skip_memory_check: MemoryOpt = False,
) -> None:
    """The least knob value whose 95% confidence bound meets every target (bisection)."""
    from ..studies.plan import Target, describe, parse_range, plan

    try:
        sc = load_scenario(scenario, set_ or (), allow_import=allow_import)
        targets = [Target.parse(t) for t in target]
        low, high = parse_range(range_)
        # Both ends, then bisection: at most this many values are evaluated.
        steps = 2 + max(0, math.ceil(math.log2(max(1, high - low))))
        with _progress("plan", "values") as bar:
            task = bar.add_task("plan", total=steps)

            def show(message: str) -> None:
                bar.console.print(escape(message), highlight=False)
                bar.advance(task)

            result = plan(
                sc, knob, targets, low, high, replications, workers=workers, progress=show,
                memory_check=not skip_memory_check,
            )  # fmt: skip
    except (ScenarioError, PolicyError) as err:
        raise _fail(err) from None
    info = describe(result, targets)
    print(json.dumps(info, indent=2))
    for note in result.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    if result.value is None:
        raise typer.Exit(code=1)


trace_app = typer.Typer(no_args_is_help=True, help="Look into traces and replay them.")
app.add_typer(trace_app, name="trace")
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format", help="azure2019 | azure2021 | csv [default: detected]", show_default=False
    ),
]


def _format(path: Path, fmt: str | None) -> str:
    if fmt is None:
        return inspect_trace.detect_format(path)
    if fmt not in inspect_trace.FORMATS:
        raise ScenarioError(f"--format {fmt!r}: expected one of {', '.join(inspect_trace.FORMATS)}")
    return fmt


@trace_app.command("inspect")
def trace_inspect(
    path: Annotated[
        Path,
        typer.Argument(
            help="Trace file, or an Azure 2019 folder.", show_default=False, metavar="TRACE"
        ),
    ],
    fmt: FormatOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for inspect.json and the plot [default: results/trace-<name>]."),
    ] = None,
) -> None:
    """Summarise a trace: functions, apps, rates, inter-arrival CVs, triggers, a plot."""
    try:
        kind = _format(path, fmt)
        out_dir = check_output_dir(  # before the work, which may be long
            out or Path("results") / f"trace-{inspect_trace._name(path)}", "inspect"
        )
        with _progress(f"inspecting {escape(str(path))}") as bar:
            task = bar.add_task("inspect", total=1)
            stats, timeline = inspect_trace.summary(path, kind)
            bar.update(task, completed=1)
    except (ScenarioError, OutputDirError) as err:
        raise _fail(err) from None
    table = Table(title=f"{escape(str(path))} ({kind})", show_header=False)
    cv = stats["iat_cv"]
    rows = [
        ("functions", f"{stats['functions']:,}"),
        ("apps", f"{stats['apps']:,}"),
        ("invocations", f"{stats['invocations']:,}"),
        ("span", f"{stats['span_s'] / 3600:.2f} h"),
        ("mean rate", f"{stats['mean_rate_per_s']:.3f} /s"),
        ("invoked at most once per hour", _pct(stats["share_at_most_once_per_hour"])),
        ("inter-arrival CV p25/p50/p75", "/".join(_num(cv[k]) for k in ("p25", "p50", "p75"))),
        ("functions with CV > 1", _pct(cv["share_above_1"])),
    ]
    for trigger, t in (stats.get("triggers") or {}).items():
        rows.append(
            (
                f"trigger {trigger}",
                f"{t['functions']} fn, {_pct(t['share_of_invocations'])} of calls",
            )
        )
    for key, value in rows:
        table.add_row(key, value)
    out_console.print(table)
    fig = plots.per_bin(*timeline, title=f"{inspect_trace._name(path)}: invocations")

    def fill(tmp: Path) -> None:
        (tmp / "inspect.json").write_text(json.dumps(stats, indent=2) + "\n")
        fig.savefig(tmp / "invocations_over_time.png", dpi=110)

    _write(out_dir, "inspect", fill)
    out_console.print(f"written to {out_dir}", highlight=False, markup=False)


@trace_app.command("to-scenario")
def trace_to_scenario(
    path: Annotated[
        Path,
        typer.Argument(
            help="Trace file, or an Azure 2019 folder.", show_default=False, metavar="TRACE"
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Scenario YAML to write.", show_default=False)],
    fmt: FormatOpt = None,
    select: Annotated[str, typer.Option(help="top:N | sample:N | all")] = "all",
    name: Annotated[
        str | None, typer.Option(help="Scenario name [default: from the path].")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite --out even if coldsim did not write it.")
    ] = False,
    preset: Annotated[
        str | None,
        typer.Option(
            help=f"platform.preset: {' | '.join(PRESETS)} [default: research for the Azure "
            "traces, aws-lambda for csv].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write a runnable scenario that replays the trace, with a platform preset (research for
    the Azure traces, aws-lambda for csv, unless --preset)."""
    try:
        out = check_output_file(out, force)
        if name is not None and not (re.fullmatch(NAME_PATTERN, name) and len(name) <= 100):
            raise ScenarioError(
                f"--name {name!r}: letters, digits, '.', '_' and '-', at most 100 characters, "
                "starting with a letter or digit"
            )
        if preset is not None and preset not in PRESETS:
            raise ScenarioError(f"--preset {preset!r}: expected one of {', '.join(PRESETS)}")
        kind = _format(path, fmt)
        data, notes = inspect_trace.scenario_for(
            path, kind, inspect_trace.parse_select(select), name, preset
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the notes below say it better
            # Checked with the trace's own path (--out's folder may not exist yet: a path
            # through it cannot be followed), written as seen from the scenario, so that the
            # two can move together.
            data["workload"]["path"] = str(path.resolve())
            parse_scenario(data, file=str(path))  # runs as written
            data["workload"]["path"] = os.path.relpath(path.resolve(), out.parent.resolve())
    except (ScenarioError, OutputDirError) as err:
        raise _fail(err) from None
    chosen = data["platform"]["preset"]
    err_console.print(
        f"platform.preset {chosen}: {PRESETS[chosen].summary}", highlight=False, markup=False
    )
    for note in notes:
        err_console.print(f"[yellow]warning:[/] {escape(note)}")
    text = generated_text(
        f"# Replays {path} ({kind}); {GENERATED}", yaml.safe_dump(data, sort_keys=False)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    write_file(out, lambda tmp: tmp.write_text(text))
    out_console.print(f"wrote {out}", highlight=False, markup=False)


@app.command()
def version() -> None:
    """Print coldsim's version."""
    print(__version__)


#: Functions a run's printed table shows at most (summary.json holds every one).
PRINTED_FUNCTIONS = 20


def _print_summary(s: dict) -> None:
    table = Table(title=f"{s['scenario']} (seed {s['seed']}, {s['wall_s']:.2f} s wall)")
    columns = (
        "function",
        "requests",
        "cold",
        "cold rate",
        "throttled",
        "p50 ms",
        "p99 ms",
        "p99 cold ms",
        "mean instances",
        "idle GB-s",
        "cost USD",
    )
    for col in columns:
        table.add_column(col, justify="left" if col == "function" else "right", no_wrap=True)
    rows = list(s["per_function"].items())
    hidden = 0
    if len(rows) > PRINTED_FUNCTIONS:  # a trace day has thousands: the busiest, then the rest
        busiest = sorted(rows, key=lambda r: -r[1]["invocations"])[:PRINTED_FUNCTIONS]
        hidden = len(rows) - len(busiest)
        rows = busiest
        table.title += f": the {len(busiest)} busiest of {len(busiest) + hidden:,} functions"
    if len(rows) > 1:
        rows.append(("all", s))
    for name, m in rows:
        table.add_row(
            name,
            f"{m['invocations']:,}",
            f"{m['cold_starts']:,}",
            _pct(m["cold_start_rate"]),
            f"{m['throttled']:,}",
            _num(m["latency_ms"]["p50"]),
            _num(m["latency_ms"]["p99"]),
            _num(m["latency_ms_cold"]["p99"]),
            f"{m['mean_instances']:.2f}",
            f"{m['idle_gb_s']:,.0f}",
            f"{m['cost_usd']['total']:,.4f}",
        )
    out_console.print(table)
    if hidden:
        out_console.print(
            f"{hidden:,} more functions in summary.json (per_function)", highlight=False
        )
    if s.get("percentiles", "exact") != "exact":
        out_console.print(
            "percentiles from a DDSketch: each within 1 % of the latency at its rank "
            "(the run's latencies outgrew the memory kept to rank them exactly)",
            highlight=False, markup=False,
        )
    for name, p in (s.get("plugins") or {}).items():  # users' plug-ins only
        hooks = ", ".join(f"{hook} {h['calls']:,}" for hook, h in p["hooks"].items())
        out_console.print(
            f"plug-in {name}: {p['time_s']:.3f} s in {p['calls']:,} calls "
            f"({_pct(p['time_s'] / s['wall_s']) if s['wall_s'] else '-'} of the run's wall time; "
            f"{hooks})",
            highlight=False, markup=False,
        )  # fmt: skip
    for name, c in (s.get("connections") or {}).items():
        over = c["time_above_limit_s"]
        out_console.print(
            f"connections to {name}: peak {c['peak']:,.0f}, mean {c['mean']:,.1f}"
            + (f", above its limit of {c['limit']:,} for {over:,.0f} s" if over is not None
               else ""),
            highlight=False, markup=False,
        )  # fmt: skip
    hosts = s.get("hosts")
    if hosts is not None:
        ended = s["instances_ended"]
        waits = s["memory_wait_ms"]
        out_console.print(
            f"hosts: {hosts['count']} x {hosts['memory_mb']:,.0f} MB, utilisation "
            f"{_pct(hosts['utilisation'])} (busy {_pct(hosts['busy_utilisation'])}), wasted "
            f"{hosts['wasted_gb_s']:,.0f} GB-s; evicted for memory {ended['pressure']:,}, "
            f"dropped {s['dropped_no_memory']:,}, waited for memory {waits['waited']:,}"
            + (f" (p99 {_num(waits['p99'])} ms)" if waits["waited"] else ""),
            highlight=False,
            markup=False,
        )


def main() -> None:
    warnings.showwarning = _show_warning  # a user-facing note, not a Python source line
    app()
