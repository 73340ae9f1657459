"""Arrival processes, chosen by `process:` in YAML: one module per kind. Each yields sorted
arrival times (seconds) as numpy batches, so no process holds a day of samples at once."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .azure2019 import Azure2019
from .azure2021 import Azure2021
from .base import ArrivalProcessBase
from .composite import Composite
from .csvlog import CsvLog
from .mmpp import MMPP
from .nhpp import Diurnal, Piecewise
from .periodic import Periodic
from .poisson import Poisson
from .trace import Trace

ArrivalProcess = Annotated[
    Poisson
    | Periodic
    | MMPP
    | Diurnal
    | Piecewise
    | Trace
    | Composite
    | Azure2019
    | Azure2021
    | CsvLog,
    Field(discriminator="process"),
]
Composite.model_rebuild(_types_namespace={"ArrivalProcess": ArrivalProcess})

__all__ = [
    "MMPP", "ArrivalProcess", "ArrivalProcessBase", "Azure2019", "Azure2021", "Composite",
    "CsvLog", "Diurnal", "Periodic", "Piecewise", "Poisson", "Trace",
]  # fmt: skip
