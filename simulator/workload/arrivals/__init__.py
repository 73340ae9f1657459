"""Arrival processes, chosen by `process:` in YAML: one module per kind. Each yields sorted
arrival times (seconds) as numpy batches, so no process holds a day of samples at once."""

from __future__ import annotations

from typing import Annotated

from ...policies.base import PluginField
from .azure2019 import Azure2019
from .azure2021 import Azure2021
from .base import ArrivalProcessBase
from .composite import Composite
from .csvlog import CsvLog
from .mmpp import MMPP
from .nhpp import Diurnal, Piecewise
from .none import NoArrivals
from .periodic import Periodic
from .poisson import Poisson
from .trace import Trace

BUILTINS: dict[str, type[ArrivalProcessBase]] = {
    cls.model_fields["process"].annotation.__args__[0]: cls
    for cls in (Poisson, Periodic, MMPP, Diurnal, Piecewise, Trace, Composite, Azure2019,
                Azure2021, CsvLog, NoArrivals)
}  # fmt: skip

#: The scenario field's type: a built-in or a plug-in, chosen by `process:`.
ArrivalProcessField = Annotated[ArrivalProcessBase, PluginField(ArrivalProcessBase, BUILTINS)]
Composite.model_rebuild(_types_namespace={"ArrivalProcessField": ArrivalProcessField})

__all__ = [
    "BUILTINS", "MMPP", "ArrivalProcessBase", "ArrivalProcessField", "Azure2019", "Azure2021",
    "Composite", "CsvLog", "Diurnal", "NoArrivals", "Periodic", "Piecewise", "Poisson", "Trace",
]  # fmt: skip
