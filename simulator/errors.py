"""The one error type users see: bad input, named by file and field."""

from __future__ import annotations


class ScenarioError(Exception):
    """Invalid scenario input. The CLI prints it (no traceback) and exits with status 2."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None):
        self.message = message
        self.file = file
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.file, self.field) if part)
        return f"{where}: {self.message}" if where else self.message


class ScenarioErrors(ScenarioError):
    """Several validation problems found at once (one line each)."""

    def __init__(self, errors: list[ScenarioError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors), file=None, field=None)


class ScenarioWarning(UserWarning):
    """A valid scenario with a setting that changes nothing (the CLI prints it as a note)."""
