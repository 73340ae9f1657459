"""Controllers: platform-wide decisions taken periodically (`platform.controllers`, a list).

One copy of each controller serves the whole platform. The engine calls, in simulated-time
order:
- `start(ctx, rng)` once before the run: `ctx` is the platform's context
  (`coldsim.policies.context`), rng the controller's own stream;
- `observe(invocation)` as each request of any function is placed on an instance, if the class
  defines it;
- `tick(now)` every `tick_s` seconds from `tick_s` on, while now < duration_s.
A controller acts through its context: `ctx.prewarm`, `ctx.retire`, `ctx.extend`,
`ctx.call_at`.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field
from scipy.stats import poisson

from .base import PluginField, Policy
from .context import PolicyContext
from .keepalive import Invocation


class Controller(Policy):
    """Base of controllers (see the module docstring for the call order). A subclass
    defines `tick(now)` and `tick_s` (a class attribute, a field, or a property)."""

    tag: ClassVar[str] = "policy"
    family: ClassVar[str] = "controller"
    public_name: ClassVar[str] = "Controller"
    required: ClassVar[tuple[str, ...]] = ("tick",)
    policy: str = Field(description="A built-in's name, or a plug-in class as module:Class.")

    def start(self, ctx: PolicyContext, rng: np.random.Generator) -> None:
        """Set up state (in `_underscore` attributes); keep `ctx` to act later."""

    def observe(self, invocation: Invocation) -> None:
        """A request of any function was placed on an instance."""

    def tick(self, now: float) -> None:
        """The periodic decision, every tick_s seconds."""
        raise NotImplementedError


def defines(policy: Policy, method: str, base: type) -> bool:
    """Whether the policy's class overrides `method` of `base` (else the engine skips it)."""
    return getattr(type(policy), method) is not getattr(base, method)


class ForecastPrewarm(Controller):
    """Forecast each function's arrivals for the next interval from its recent history and
    keep enough instances warm for them (the shape of IceBreaker and Aquatope
    [sources: icebreaker, aquatope], with their forecasters replaced by a moving average or
    an exponentially weighted one).

    Every `interval_s`: the forecast f of the next interval's requests is the mean of the
    last `window` intervals' counts (moving-average), or an exponentially weighted mean with
    weight `alpha` on the latest (ewma). Requests in flight then are Poisson with mean
    a = f x mean handler time / interval (M/G/inf), so keeping N = Poisson quantile(q, a) + 1
    instances gives an arriving request a free warm instance with probability about q; N is
    0 when f < min_arrivals. Idle instances among the N are kept warm for two intervals from
    now (`ctx.extend`: through the requests they serve meanwhile), the missing ones are
    pre-warmed (ready as soon as their init allows) and kept warm as long, and with
    `retire_surplus` the idle ones beyond N are retired. Instances the controller does not
    keep follow the keep-alive policy."""

    policy: Literal["forecast-prewarm"]
    interval_s: float = Field(
        60.0, gt=0, le=86_400, allow_inf_nan=False,
        description="Time between decisions, s (a minute, the granularity of the Azure "
                    "traces and of IceBreaker's forecasts).",
    )  # fmt: skip
    forecast: Literal["moving-average", "ewma"] = Field(
        "ewma", description="How the next interval's requests are forecast from past counts."
    )
    window: int = Field(10, ge=1, le=10_000, description="moving-average: intervals averaged.")
    alpha: float = Field(0.5, gt=0, le=1, description="ewma: the weight of the latest interval.")
    quantile: float = Field(
        0.99, gt=0, lt=1,
        description="Probability that an arriving request finds a free warm instance, if the "
                    "forecast is right.",
    )  # fmt: skip
    min_arrivals: float = Field(
        1.0, ge=0, allow_inf_nan=False,
        description="Below this many forecast requests per interval, keep nothing warm.",
    )  # fmt: skip
    retire_surplus: bool = Field(
        False,
        description="Retire idle instances beyond the target (the controller decides alone); "
                    "false: the keep-alive policy ends them.",
    )  # fmt: skip

    @property
    def tick_s(self) -> float:
        return self.interval_s

    def start(self, ctx, rng):
        n = len(ctx.functions)
        self._ctx = ctx
        self._index = {f.name: f.index for f in ctx.functions}
        self._counts = np.zeros(n)  # requests this interval
        self._busy_s = np.zeros(n)  # handler seconds observed (for means a trace gives)
        self._served = np.zeros(n)
        self._mean_s = np.array([f.duration_ms / 1000.0 for f in ctx.functions])
        self._past: list[np.ndarray] = []  # moving-average: the last `window` intervals
        self._forecast = np.zeros(n)

    def observe(self, invocation):
        if invocation.kind != "user":
            return
        k = self._index[invocation.function]
        self._counts[k] += 1.0
        self._busy_s[k] += invocation.end_s - invocation.start_s
        self._served[k] += 1.0

    def tick(self, now):
        counts, self._counts = self._counts, np.zeros_like(self._counts)
        if self.forecast == "ewma":
            self._forecast = self.alpha * counts + (1.0 - self.alpha) * self._forecast
        else:
            self._past = [*self._past[-(self.window - 1):], counts] if self.window > 1 else [counts]
            self._forecast = np.mean(self._past, axis=0)
        f = self._forecast
        served = np.maximum(self._served, 1.0)
        mean_s = np.where(np.isnan(self._mean_s), self._busy_s / served, self._mean_s)
        load = f * mean_s / self.interval_s
        target = np.where(f >= self.min_arrivals, poisson.ppf(self.quantile, load) + 1.0, 0.0)
        until = now + 2.0 * self.interval_s
        ctx = self._ctx
        for k in np.flatnonzero((target > 0) | (counts > 0) | (f > 1e-9)).tolist():
            self._keep(ctx, k, int(target[k]), until)

    def _keep(self, ctx: PolicyContext, k: int, n: int, until: float) -> None:
        """Keep n instances of function k warm till `until` (pre-warming what is missing)."""
        counts = ctx.instances(k)
        idle = ctx.idle_instances(k)  # on-demand ones, oldest first
        others = counts.live - counts.idle  # busy, initialising and pre-warming
        wanted_idle = max(0, n - others)
        kept = idle[len(idle) - wanted_idle:] if wanted_idle else []
        for iid in kept:
            ctx.extend(iid, until)
        if self.retire_surplus:
            for iid in idle[: len(idle) - len(kept)]:
                ctx.retire(iid)
        missing = n - counts.live
        if missing > 0:
            for iid in ctx.prewarm(k, missing, keep_alive_s=0.0):
                ctx.extend(iid, until)


BUILTINS: dict[str, type[Controller]] = {"forecast-prewarm": ForecastPrewarm}

#: The scenario field's type: a built-in or a plug-in, chosen by `policy:`.
ControllerField = Annotated[Controller, PluginField(Controller, BUILTINS)]
