"""The keep-alive built-ins by name, and the scenario field that chooses one (or a plug-in).
Apart from `keepalive` because one built-in, the hybrid histogram, builds on its classes."""

from __future__ import annotations

from typing import Annotated

from .base import PluginField
from .hybrid import HybridHistogram
from .keepalive import Fixed, KeepAlivePolicy, LoadDependent, RandomIdle

BUILTINS: dict[str, type[KeepAlivePolicy]] = {
    "fixed": Fixed, "random": RandomIdle, "hybrid-histogram": HybridHistogram,
    "load": LoadDependent,
}  # fmt: skip

#: The scenario field's type: a built-in or a plug-in, chosen by `policy:`.
KeepAliveField = Annotated[KeepAlivePolicy, PluginField(KeepAlivePolicy, BUILTINS)]


def default_policy() -> RandomIdle:
    return RandomIdle(policy="random")
