"""Lambda SnapStart: a cold start restores a snapshot taken after Init instead of running it.

Init (and the global state it builds) runs once, when a version is published; each new
execution environment then restores the cached snapshot [sources: aws-snapstart]. What a
cold start costs a request is the restore, then the after-restore hooks: work that must not
be shared by every environment restored from one snapshot, such as re-opening a network
connection. So a cached global-state item that holds connections is rebuilt after restore
(its init_ms counts there); items without connections (imports, a loaded model, parsed
config) come back with the snapshot for free.

AWS bills the runtime load and the hooks as duration (Billed Restore Duration), not the
snapshot restore itself; for Python and .NET it adds a cache charge while the version is
active and a charge per GB restored; for Java both are waived [sources: aws-snapstart-pricing].
"""

from __future__ import annotations

from pydantic import Field, model_validator

from ..distributions import DistributionMs, LogNormalMs
from ..model import Model
from .globalstate import GlobalStateItem

#: Runtimes AWS supports SnapStart on, among coldsim's presets [sources: aws-snapstart].
SUPPORTED = ("java17", "java21", "python3.12", "python3.13", "dotnet8")

#: Restore Duration of hello-world Java functions, log-normal fit (median 630 ms, sigma 0.14)
#: [sources: lambda-perf-snapstart]; AWS publishes no distribution.
MEASURED_RESTORE = {"dist": "lognormal", "median_ms": 630.0, "sigma": 0.14}
#: Billed Restore Duration of that published Java REPORT line (512 ms restored), ms.
BILLED_RESTORE_MS = 136.0


class SnapStart(Model):
    """SnapStart on: cold starts restore a snapshot (AWS: Java 11+, Python 3.12+, .NET 8+;
    among coldsim's runtimes java17, java21, python3.12, python3.13, dotnet8)."""

    restore: DistributionMs = Field(
        default_factory=lambda: LogNormalMs.model_validate(MEASURED_RESTORE),
        description=(
            "Restore Duration before any after-restore hook, ms. Default: hello-world Java "
            "measurements, lognormal median 630 ms, sigma 0.14 (a fresh snapshot; AWS "
            "publishes none and nobody measured Python or .NET) "
            "[sources: lambda-perf-snapstart]."
        ),
    )
    billed_restore_ms: float = Field(
        BILLED_RESTORE_MS,
        ge=0,
        allow_inf_nan=False,
        description=(
            "The part of `restore` AWS bills (loading the runtime; restoring the snapshot is "
            "free), ms. Default 136 ms, from a published Java REPORT line of 512 ms restore "
            "[sources: lambda-perf-snapstart, aws-snapstart]."
        ),
    )
    after_restore_ms: float = Field(
        0.0,
        ge=0,
        le=10_000,
        allow_inf_nan=False,
        description=(
            "Work in after-restore hooks beyond re-opening the function's connections (those "
            "are added from global_state), ms; billed. At most 10 s, AWS's limit."
        ),
    )

    @model_validator(mode="after")
    def _billed_within(self):
        if self.billed_restore_ms > self.restore.expected():
            if "billed_restore_ms" not in self.model_fields_set:  # blame what the user wrote
                raise ValueError(
                    f"restore: its mean, {self.restore.expected():g} ms, is below the default "
                    f"billed_restore_ms ({self.billed_restore_ms:g} ms, the part of a restore "
                    "AWS bills): set billed_restore_ms too, at most the mean restore"
                )
            raise ValueError(
                f"billed_restore_ms {self.billed_restore_ms:g} exceeds the mean restore "
                f"({self.restore.expected():g} ms): it is a part of the restore"
            )
        return self

    def hooks_ms(self, items: list[GlobalStateItem]) -> float:
        """After-restore work: the hooks, plus rebuilding cached items with connections."""
        reopened = sum(i.init_ms for i in items if i.cached and i.connections)
        return self.after_restore_ms + float(reopened)

    def billed_ms(self, items: list[GlobalStateItem]) -> float:
        """Billed Restore Duration of one cold start, ms."""
        return self.billed_restore_ms + self.hooks_ms(items)


def priced(runtime: str | None) -> bool:
    """Does AWS charge SnapStart's cache and restore fees for this runtime (not Java)?"""
    return not (runtime or "").startswith("java")
