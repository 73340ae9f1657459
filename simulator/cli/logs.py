"""`coldsim logs`: Lambda's CloudWatch logs in (fit a scenario) and out (export a run)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Annotated, Literal

import typer
import yaml
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..errors import ScenarioError
from ..reporting.logs import read_requests
from ..reporting.output import OutputDirError, check_output_dir
from ..scenario.schema import NAME_PATTERN
from .common import _fail, _num, _pct, _write, app, out_console

logs_app = typer.Typer(
    no_args_is_help=True, help="Lambda's CloudWatch logs: fit a scenario to them, or export a run."
)
app.add_typer(logs_app, name="logs")


#: The latest time 0 of exported logs (1 January 3000, UTC): beyond, dates overflow.
LATEST_EPOCH_S = 32_503_680_000.0


@logs_app.command("fit")
def logs_fit(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Log files or folders (formats detected).", show_default=False),
    ],
    out: Annotated[
        Path | None, typer.Option(help="Output folder [default: results/<name>-fit].")
    ] = None,
    name: Annotated[str, typer.Option(help="The fitted scenario's name.")] = "fitted",
    function: Annotated[
        str | None,
        typer.Option(help="Function name for logs that carry no log group [default: file name]."),
    ] = None,
    arrivals: Annotated[
        Literal["replay", "hourly", "diurnal"],
        typer.Option(
            help="replay the observed times, or fit a Poisson process to them: a rate per hour "
            "of day (hourly) or a daily cosine (diurnal)."
        ),
    ] = "replay",
    warmup_s: Annotated[
        float | None,
        typer.Option(
            help="Requests in the first this many seconds are replayed but not counted (the "
            "scenario's warmup_s) [default: 0; for logs written by coldsim logs export, the "
            "run's warm-up]."
        ),
    ] = None,
) -> None:
    """Fit a scenario to Lambda's logs: arrivals replayed as observed (or a Poisson process
    fitted to them), handler and init times, memory, and the platform's keep-alive and
    recycling estimated from the environments."""
    from ..cloudwatch.figures import fit_figure
    from ..cloudwatch.fit import fit
    from ..cloudwatch.parse import read_logs

    try:
        _check_name("--name", name, 100)
        _check_name("--function", function, 200)
        out_dir = check_output_dir(out or Path("results") / f"{name}-fit", "logs-fit")
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise ScenarioError(f"not found: {', '.join(missing)}")
        if warmup_s is not None and not (warmup_s >= 0 and math.isfinite(warmup_s)):
            raise ScenarioError(f"--warmup-s {warmup_s!r}: expected a number of seconds >= 0")
        parsed = read_logs(paths, function)
        until = _exported_warmup(paths) if warmup_s is None else None
        result = fit(parsed, name, arrivals=arrivals, warmup_s=warmup_s or 0.0,
                     warmup_end_epoch_s=until)  # fmt: skip
    except (ScenarioError, OutputDirError) as err:
        raise _fail(err) from None
    except ImportError as err:
        raise _fail(f"{err.name} is needed to fit logs: pip install 'coldsim[logs]'") from None
    rep = result.report
    keep = rep["keep_alive"]
    table = Table(title=f"{escape(name)}: fitted to {rep['invocations']:,} invocations")
    for col in ("function", "runtime", "requests", "cold", "cold rate", "p50 ms", "init p50 ms",
                "envs"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("function", "runtime") else "right")
    for f, m in rep["per_function"].items():
        table.add_row(Text(f), m["runtime"] or "-", f"{m['invocations']:,}",
                      f"{m['cold_starts']:,}",
                      _pct(m["cold_start_rate"]), _num(m["duration_ms_p50"]),
                      _num(m["init_ms_p50"]), f"{m['environments']:,}")  # fmt: skip
    out_console.print(table)
    for f, m in rep["per_function"].items():
        if m.get("note"):
            out_console.print(f"{f}: note: {m['note']}", highlight=False, markup=False)
    ev = keep.get("evidence", {})
    out_console.print(
        f"keep-alive: {keep['summary']} (from {ev.get('reused', 0):,} reuse gaps, "
        f"{ev.get('ended', 0):,} environments seen to end); lifetime: "
        f"{rep['lifetime'].get('summary', 'not estimated')}"
        + (f"; note: {keep['note']}" if keep.get("note") else ""),
        highlight=False, markup=False,
    )  # fmt: skip
    if "arrivals" in rep:
        _print_arrivals(rep)
    if parsed.malformed:
        out_console.print(f"malformed REPORT lines: {parsed.malformed:,}", highlight=False)
        for example in parsed.examples:
            out_console.print(f"  {escape(example)}", highlight=False)
    for warning in rep["warnings"]:
        if warning != keep.get("consistency", {}).get("note"):  # (printed with the keep-alive)
            out_console.print(f"warning: {warning}", highlight=False, markup=False)
    fig = fit_figure(result, parsed)

    def fill(tmp: Path) -> None:
        (tmp / "arrivals").mkdir()
        for f, times in result.arrivals.items():
            (tmp / "arrivals" / f"{f}.csv").write_text(
                "timestamp_s\n" + "".join(f"{t:.6f}\n" for t in times.tolist())
            )
        header = (f"# Fitted by coldsim logs fit to {rep['invocations']:,} invocations; "
                  f"time 0 is {rep['t0_epoch_s']} (epoch s). See fit.json.\n")  # fmt: skip
        if "arrivals" in rep:
            when = f"{rep['t0_epoch_s']} (epoch s, {rep['arrivals']['time_zero_utc']})"
            header = (f"# Fitted by coldsim logs fit to {rep['invocations']:,} invocations, "
                      f"arrivals a fitted {arrivals} Poisson process; time 0 is {when}. "
                      "See fit.json.\n")  # fmt: skip
        if "sweep" in result.scenario:
            header += (
                "# The logs do not pin the keep-alive down to one value: the sweep block "
                "spans what they allow (coldsim sweep runs it). See fit.json.\n"
            )
        (tmp / "scenario.yaml").write_text(
            header + yaml.safe_dump(result.scenario, sort_keys=False)
        )
        (tmp / "fit.json").write_text(json.dumps(rep, indent=2, default=float) + "\n")
        fig.savefig(tmp / "fit.png", dpi=110)

    _write(out_dir, "logs-fit", fill)
    out_console.print(f"written to {out_dir} (run: coldsim run {out_dir / 'scenario.yaml'})",
                      highlight=False, markup=False)  # fmt: skip


def _exported_warmup(paths: list[Path]) -> float | None:
    """The end of the warm-up (epoch s) of the run whose export holds every path (the
    .export.json of the export's folder: the path, or its parent, as in run-logs/text); None
    for other logs, or runs exported with different warm-ups."""
    ends = set()
    for path in paths:
        folder = path if path.is_dir() else path.parent
        meta = next((m for m in (folder / ".export.json", folder.parent / ".export.json")
                     if m.is_file()), None)  # fmt: skip
        if meta is None:
            return None
        try:
            data = json.loads(meta.read_text())
            ends.add(float(data["epoch_s"]) + float(data["warmup_s"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
    return ends.pop() if len(ends) == 1 else None


def _check_name(option: str, value: str | None, longest: int) -> None:
    """A name that becomes a scenario's and a file's: letters, digits, . _ - (NAME_PATTERN),
    so no path escapes the output folder."""
    if value is not None and not (re.fullmatch(NAME_PATTERN, value) and len(value) <= longest):
        raise ScenarioError(
            f"{option} {value!r}: letters, digits, '.', '_' and '-', at most {longest} "
            "characters, starting with a letter or digit"
        )


def _print_arrivals(rep: dict) -> None:
    """The fitted process per function: how well it fits, and a warning on bursty traffic."""
    a = rep["arrivals"]
    out_console.print(f"arrivals: {a['process']} Poisson fit; time 0 is {a['time_zero_utc']}",
                      highlight=False, markup=False)  # fmt: skip
    for f, m in rep["per_function"].items():
        fa, best = m["arrivals"], m["arrivals"][m["arrivals"]["process"]]
        disp = "-" if best["dispersion"] is None else f"{best['dispersion']:.2f}"
        log_l = ", ".join(f"{k} {fa[k]['log_likelihood']:.1f}" for k in ("hourly", "diurnal")
                          if fa[k] is not None)  # fmt: skip
        out_console.print(
            f"  {f}: per-hour chi-square/dof {disp}; log-likelihood {log_l}"
            + (f" (AIC prefers {fa['preferred_by_aic']})" if fa["preferred_by_aic"] else "")
            + (f"; note: {fa['note']}" if fa.get("note") else ""),
            highlight=False, markup=False,
        )  # fmt: skip


@logs_app.command("export")
def logs_export(
    run_dir: Annotated[
        Path, typer.Argument(help="A run's folder (written by coldsim run).", show_default=False)
    ],
    out: Annotated[
        Path | None, typer.Option(help="Output folder [default: <run folder>-logs].")
    ] = None,
    formats: Annotated[
        list[str] | None,
        typer.Option("--format", help="text | filter-log-events | insights-csv | lambda-json "
                     "(repeatable) [default: all]"),
    ] = None,  # fmt: skip
    epoch_s: Annotated[
        float, typer.Option(help="Epoch seconds of simulated time 0 [default: 2026-01-01].")
    ] = 1_767_225_600.0,
) -> None:
    """Write a run's invocations as the CloudWatch logs Lambda would have written."""
    import pandas as pd

    from ..cloudwatch import export

    try:
        if not 0.0 <= epoch_s <= LATEST_EPOCH_S:  # (nan fails too)
            raise ScenarioError(
                f"--epoch-s {epoch_s!r}: expected seconds since 1970-01-01 UTC, from 0 to "
                f"{LATEST_EPOCH_S:,.0f} (the year 3000): log timestamps are dates"
            )
        chosen = formats or list(export.FORMATS)
        bad = [f for f in chosen if f not in export.FORMATS]
        if bad:
            raise ScenarioError(
                f"--format {bad[0]!r}: expected one of {', '.join(export.FORMATS)}"
            )
        files = [run_dir / n for n in ("summary.json", "instances.parquet",
                                       "scenario.yaml")]  # fmt: skip
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise ScenarioError(f"{run_dir} is not a run's folder (missing {missing[0]})")
        out_dir = check_output_dir(out or run_dir.with_name(run_dir.name + "-logs"), "logs")
        data = yaml.safe_load(files[2].read_text())
        memory = {f["name"]: f.get("memory_mb", 128) for f in data["functions"]}
        # The runtime each environment logs as it starts (null: python3.12, coldsim's default).
        runtimes = {f["name"]: f.get("runtime") for f in data["functions"]}
        ev = export.events(read_requests(run_dir, "logs export"), pd.read_parquet(files[1]), memory,
                           data["name"], epoch_s, _snapstart_billed_ms(data),
                           runtimes)  # fmt: skip
    except (ScenarioError, OutputDirError) as err:
        raise _fail(err) from None

    def fill(tmp: Path) -> None:
        export.write(ev, tmp, chosen)
        # Hidden: a folder of logs is read whole by `coldsim logs fit`.
        (tmp / ".export.json").write_text(json.dumps(
            {"run": str(run_dir.resolve()), "epoch_s": epoch_s, "formats": chosen,
             "reports": len(ev), "warmup_s": float(data.get("warmup_s") or 0.0)},
            indent=2) + "\n")  # fmt: skip

    _write(out_dir, "logs", fill)
    out_console.print(f"{len(ev):,} invocations written as {', '.join(chosen)} logs to "
                      f"{out_dir}", highlight=False, markup=False)  # fmt: skip


@logs_app.command("backtest")
def logs_backtest(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Log files or folders (formats detected).", show_default=False),
    ],
    scenario: Annotated[
        Path | None,
        typer.Option(help="Scenario to test (its functions named as in the logs) [default: "
                     "the one fitted to the logs]."),
    ] = None,  # fmt: skip
    out: Annotated[
        Path | None, typer.Option(help="Output folder [default: results/backtest].")
    ] = None,
    function: Annotated[
        str | None,
        typer.Option(help="Function name for logs that carry no log group [default: file name]."),
    ] = None,
) -> None:
    """Replay the observed arrivals through a scenario and compare its cold starts and
    environments, hour by hour, with what the logs show."""
    import tempfile

    from ..cloudwatch import backtest
    from ..cloudwatch.fit import fit
    from ..cloudwatch.parse import read_logs
    from ..scenario.loading import parse_scenario
    from ..simulation import simulate

    try:
        _check_name("--function", function, 200)
        out_dir = check_output_dir(out or Path("results") / "backtest", "logs-backtest")
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise ScenarioError(f"not found: {', '.join(missing)}")
        parsed = read_logs(paths, function)
        fitted = fit(parsed, "backtest")
        if scenario is None:
            data, base = fitted.scenario, None
        else:
            if not scenario.is_file():
                raise ScenarioError(f"--scenario {scenario}: not found")
            try:
                data = yaml.safe_load(scenario.read_text())
            except (yaml.YAMLError, UnicodeDecodeError) as err:
                raise ScenarioError(f"{scenario}: not valid YAML ({err})") from None
            if isinstance(data, dict) and data.get("workload") is not None:
                raise ScenarioError(
                    f"{scenario}: a scenario with a workload: cannot be backtested; list its "
                    "functions (coldsim trace to-scenario writes them out)"
                )
            if not isinstance(data, dict) or not isinstance(data.get("functions"), list):
                raise ScenarioError(f"{scenario}: not a scenario (no functions list)")
            base = scenario.parent
        with tempfile.TemporaryDirectory() as tmp:
            replay = backtest.replay_scenario(data, fitted, Path(tmp))
            result = simulate(
                parse_scenario(replay, base_dir=base, file=str(scenario) if scenario else None)
            )
        report = backtest.compare(fitted, parsed, result)
    except (ScenarioError, OutputDirError) as err:
        raise _fail(err) from None
    except ImportError as err:
        raise _fail(f"{err.name} is needed to fit logs: pip install 'coldsim[logs]'") from None
    e, o, p = report["errors"], report["observed"], report["predicted"]
    rel = e["cold_starts_relative_error"]
    out_console.print(
        f"cold starts: predicted {p['cold_starts']:,}, observed {o['cold_starts']:,}"
        + (f" ({100 * rel:+.1f}%)" if rel is not None else "")
        + f"; per hour: mean absolute error {e['cold_starts_per_hour_mae']:.2f}, correlation "
        + (f"{e['cold_starts_per_hour_correlation']:.3f}"
           if e["cold_starts_per_hour_correlation"] is not None else "-"),
        highlight=False, markup=False,
    )  # fmt: skip
    table = Table(title="observed vs predicted")
    for col in ("", "observed", "predicted"):
        table.add_column(col, justify="left" if not col else "right")
    table.add_row("invocations", f"{o['invocations']:,}", f"{p['invocations']:,}")
    table.add_row("cold starts", f"{o['cold_starts']:,}", f"{p['cold_starts']:,}")
    table.add_row("cold-start rate", _pct(o["cold_start_rate"]), _pct(p["cold_start_rate"]))
    table.add_row("init share of busy time", _pct(o["init_share"]), _pct(p["init_share"]))
    table.add_row("environments per hour, MAE", "", _num(e["environments_per_hour_mae"]))
    out_console.print(table)
    fig = backtest.figure(report, "backtest")

    def fill(tmp: Path) -> None:
        body = {k: v for k, v in report.items() if k != "per_hour"}
        (tmp / "backtest.json").write_text(json.dumps(body, indent=2) + "\n")
        report["per_hour"].to_csv(tmp / "per_hour.csv", index=False)
        fig.savefig(tmp / "backtest.png", dpi=110)

    _write(out_dir, "logs-backtest", fill)
    out_console.print(f"written to {out_dir}", highlight=False, markup=False)


def _snapstart_billed_ms(data: dict) -> dict[str, float]:
    """Billed Restore Duration per SnapStart function of a run's (resolved) scenario."""
    from ..scenario.globalstate import GlobalStateItem
    from ..scenario.snapstart import SnapStart

    return {
        f["name"]: SnapStart.model_validate(f["snapstart"]).billed_ms(
            [GlobalStateItem.model_validate(i) for i in f.get("global_state") or []]
        )
        for f in data["functions"]
        if f.get("snapstart") is not None
    }
