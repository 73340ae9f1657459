"""MkDocs hook: the command-line reference, each command's `--help` as the terminal shows it,
generated at build time from the commands themselves."""

from __future__ import annotations

from mkdocs.structure.files import File

PAGE = "reference/cli.md"

INTRO = """\
# Command line

Every `coldsim` command's help, as `coldsim COMMAND --help` prints it (generated when this
site is built). Exit status: 0 on success, 2 for bad input (the message names the file and
field), 1 when `coldsim plan` finds no value that meets every target.
"""


def commands(group, path: tuple[str, ...] = ()):
    """(path, command) for the group and every command under it, in the order of the
    group's own help."""
    yield path, group
    if hasattr(group, "list_commands"):  # a group (typer vendors its own click)
        for name in group.list_commands(None):
            yield from commands(group.get_command(None, name), (*path, name))


def render() -> str:
    import typer
    from coldsim.cli import app
    from typer.testing import CliRunner

    root = typer.main.get_command(app)
    runner = CliRunner()
    lines = [INTRO]
    for path, command in commands(root):
        if command.hidden:
            continue
        out = runner.invoke(app, [*path, "--help"], prog_name="coldsim", terminal_width=100,
                            color=False, env={"NO_COLOR": "1", "COLUMNS": "100"})  # fmt: skip
        if out.exit_code != 0:
            raise RuntimeError(f"coldsim {' '.join(path)} --help failed: {out.output}")
        title = " ".join(("coldsim", *path))
        lines += [f"## `{title}`", "", "```text", out.output.rstrip(), "```", ""]
    return "\n".join(lines)


def on_files(files, config):
    files.append(File.generated(config, PAGE, content=render()))
    return files
