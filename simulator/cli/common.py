"""What the commands share: the Typer app, consoles, option types, progress bars and how an
error becomes a message and an exit status."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from ..reporting.output import (
    OutputDirError,
    write_folder,
)
from ..version import __version__


def _usage_name(self) -> str:
    """NAME for a required argument, [NAME] for an optional one, as POSIX usage lines do
    (Typer 0.2x writes {NAME})."""
    name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
    return name + ("..." if self.nargs != 1 else "")


if hasattr(typer.core.TyperArgument, "_usage_display_name"):
    typer.core.TyperArgument._usage_display_name = _usage_name

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Simulate serverless cold and warm starts from a YAML scenario.",
)
# No emoji codes: user text such as `mymodule:Boom:` must print as written, not as 💥 (markup
# in user text is escaped where it is printed).
out_console = Console(emoji=False)
if not out_console.is_terminal:  # piped or captured: do not squeeze tables into 80 columns
    out_console = Console(width=180, emoji=False)
err_console = Console(stderr=True, emoji=False)

ScenarioArg = Annotated[
    Path, typer.Argument(help="Scenario YAML file.", show_default=False, metavar="SCENARIO")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override a field: dotted.path=value (repeatable).", metavar="PATH=V"
    ),
]


AllowImportOpt = Annotated[
    bool,
    typer.Option(
        "--allow-import",
        help=(
            "Let the scenario name plug-in policies (module:Class) from modules not imported "
            "yet: coldsim imports them, which runs their code. Only for scenarios you trust."
        ),
    ),
]


MemoryOpt = Annotated[
    bool,
    typer.Option(
        "--skip-memory-check",
        help="Run even if the memory estimate exceeds what the machine has available.",
    ),
]


def _show_version(value: bool) -> None:
    if value:
        print(f"coldsim {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Simulate serverless cold and warm starts from a YAML scenario."""


class _Eta(ProgressColumn):
    """Time left at the average pace of this session so far (runs taken from a sweep's store
    are not counted as pace); '-' until something was done."""

    def render(self, task) -> Text:
        start_done = task.fields.get("start_done", 0)
        done = task.completed - start_done
        if not task.total or done <= 0 or task.elapsed is None:
            return Text("eta -", style="progress.remaining")
        left = task.elapsed / done * (task.total - task.completed)
        return Text(f"eta {int(left) // 60}:{int(left) % 60:02d}", style="progress.remaining")


class _Count(ProgressColumn):
    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        total = "?" if task.total is None else f"{task.total:.0f}"
        # Whole ones done (a sweep's runs under way add their fractions to `completed`).
        done = math.floor(task.completed + 1e-9)
        return Text(f"{done}/{total} {self.unit}", style="progress.download")


class _Rate(ProgressColumn):
    """Requests placed per wall-clock second so far (a run's progress reports them)."""

    def render(self, task) -> Text:
        requests = task.fields.get("requests")
        if not requests or not task.elapsed:
            return Text("")
        return Text(f"{requests / task.elapsed:,.0f} req/s", style="progress.data.speed")


def _progress(label: str, unit: str = "") -> Progress:
    """The progress display of every long command: label, bar, percentage, count, elapsed
    time and time left, on stderr; gone when done."""
    count = [_Count(unit)] if unit else []
    return Progress(
        TextColumn(label),
        BarColumn(),
        TaskProgressColumn(),
        *count,
        _Rate(),
        TimeElapsedColumn(),
        _Eta(),
        console=err_console,
        transient=True,
    )


def _fail(err: Exception, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
    return typer.Exit(code=code)



def _write(out_dir: Path, kind: str, fill) -> None:
    """write_folder for a command: its errors are messages (exit 2, or 1 for I/O)."""
    try:
        write_folder(out_dir, kind, fill)
    except OutputDirError as err:
        raise _fail(err) from None
    except OSError as err:
        raise _fail(f"cannot write {out_dir}: {err}", code=1) from None


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:,.1f}"


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False)
