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

import math
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
        # Per request, plain lists (a numpy element update costs several times more).
        self._counts = [0] * n  # requests this interval
        self._busy_s = [0.0] * n  # handler seconds observed (for means a trace gives)
        self._served = [0] * n
        self._mean_s = np.array([f.duration_ms / 1000.0 for f in ctx.functions])
        self._past: list[np.ndarray] = []  # moving-average: the last `window` intervals
        self._forecast = np.zeros(n)

    def observe(self, invocation):
        if invocation.kind != "user":
            return
        k = self._index[invocation.function]
        self._counts[k] += 1
        self._busy_s[k] += invocation.end_s - invocation.start_s
        self._served[k] += 1

    def tick(self, now):
        counts = np.array(self._counts, dtype=float)
        self._counts = [0] * len(counts)
        if self.forecast == "ewma":
            self._forecast = self.alpha * counts + (1.0 - self.alpha) * self._forecast
        else:
            self._past = [*self._past[-(self.window - 1):], counts] if self.window > 1 else [counts]
            self._forecast = np.mean(self._past, axis=0)
        f = self._forecast
        served = np.maximum(np.array(self._served, dtype=float), 1.0)
        mean_s = np.where(np.isnan(self._mean_s), np.array(self._busy_s) / served, self._mean_s)
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
        others = counts.live - len(idle)  # busy, initialising, pre-warming, provisioned
        wanted_idle = max(0, n - others)
        kept = idle[max(0, len(idle) - wanted_idle):] if wanted_idle else []
        for iid in kept:
            ctx.extend(iid, until)
        if self.retire_surplus:
            for iid in idle[: len(idle) - len(kept)]:
                ctx.retire(iid)
        missing = n - counts.live
        if missing > 0:
            for iid in ctx.prewarm(k, missing, keep_alive_s=0.0):
                ctx.extend(iid, until)


class Knative(Controller):
    """The Knative Pod Autoscaler (KPA) for multi-request functions (instance_concurrency >
    1), as its autoscaler computes [sources: knative-kpa]. Every second it samples each
    function's requests in flight; every `tick_s` (2 s) it decides: desired instances =
    ceil(mean in flight over the stable window / target), target = target_utilization x the
    instance's concurrency. Over the panic window (panic_window_pct of the stable one) the same
    count is computed; when it reaches panic_threshold_pct of the ready instances the
    autoscaler panics: it never scales down, keeps the highest count reached, and leaves panic
    once a whole stable window passed without reaching the threshold again. Changes are bounded
    per decision by max_scale_up_rate x ready (up) and ready / max_scale_down_rate (down); to
    zero only after a stable window without requests plus scale_to_zero_grace_s. Instances
    are started ahead (pre-warmed) and idle surplus ones retired; the keep-alive policy should
    not reap them itself: pair it with `keep_alive: {policy: fixed, idle_s: .inf}`. The
    engine still starts an instance for a request that finds every one full (Knative's
    activator would hold it for the next pod instead)."""

    policy: Literal["knative"]
    stable_window_s: float = Field(
        60.0, ge=6, le=3600, description="Stable window, s (Knative's default 60 s)."
    )
    panic_window_pct: float = Field(
        10.0, ge=1, le=100, description="Panic window, % of the stable window (10%: 6 s)."
    )
    panic_threshold_pct: float = Field(
        200.0, ge=110, le=1000, description="Panic when desired / ready reaches this, % (200)."
    )
    target_utilization: float = Field(
        0.7, gt=0, le=1, description="Share of an instance's concurrency to aim at (0.7)."
    )
    max_scale_up_rate: float = Field(1000.0, gt=1, description="Up to ready x this (1000).")
    max_scale_down_rate: float = Field(2.0, gt=1, description="Down to ready / this (2).")
    scale_to_zero_grace_s: float = Field(
        30.0, ge=0, description="After a stable window without requests, this long more (30 s)."
    )
    decide_every_s: float = Field(2.0, gt=0, description="Time between decisions, s (2).")

    tick_s: ClassVar[float] = 1.0  # metrics are scraped every second

    def start(self, ctx, rng):
        self._ctx = ctx
        self._mine = [f.index for f in ctx.functions]
        n = len(ctx.functions)
        stable = int(round(self.stable_window_s))
        self._stable = max(1, stable)
        self._panic = max(1, int(round(stable * self.panic_window_pct / 100.0)))
        self._samples = np.zeros((n, self._stable))  # ring buffer of per-second samples
        self._seen = 0
        self._panic_since = [None] * n  # when it last was over the threshold, in panic
        self._max_panic = [0] * n
        self._quiet_since = [0.0] * n  # since when the stable average is 0
        self._target = [self.target_utilization * f.concurrency for f in ctx.functions]
        self._every = max(1, int(round(self.decide_every_s)))

    def tick(self, now):
        ctx = self._ctx
        col = self._seen % self._stable
        for k in self._mine:
            self._samples[k, col] = ctx.in_flight(k)
        self._seen += 1
        if self._seen % self._every:
            return
        for k in self._mine:
            self._decide(k, now)

    def _window(self, k: int, width: int) -> float:
        seen = min(self._seen, self._stable)
        width = min(width, seen)
        cols = [(self._seen - 1 - i) % self._stable for i in range(width)]
        return float(self._samples[k, cols].mean()) if width else 0.0

    def _decide(self, k: int, now: float) -> None:
        ctx = self._ctx
        counts = ctx.instances(k)
        ready = max(1, counts.idle + counts.busy)
        target = self._target[k]
        stable_avg, panic_avg = self._window(k, self._stable), self._window(k, self._panic)
        stable = math.ceil(stable_avg / target - 1e-9)
        panic = math.ceil(panic_avg / target - 1e-9)
        up = math.ceil(self.max_scale_up_rate * ready)
        down = math.floor(ready / self.max_scale_down_rate)
        over = panic / ready >= self.panic_threshold_pct / 100.0
        if over:
            self._panic_since[k] = now
        elif self._panic_since[k] is not None and now - self._panic_since[k] > self.stable_window_s:
            self._panic_since[k] = None  # a whole stable window without panic
            self._max_panic[k] = 0
        desired = min(max(stable, down), up)
        if self._panic_since[k] is not None:
            desired = max(desired, min(max(panic, down), up), self._max_panic[k])
            self._max_panic[k] = desired
        if stable_avg > 0:
            self._quiet_since[k] = now
        elif desired == 0 and now - self._quiet_since[k] < self.scale_to_zero_grace_s:
            desired = 1 if counts.live else 0  # the last instance stays for the grace period
        live = counts.live
        if desired > live:
            ctx.prewarm(k, desired - live)
        elif desired < live:
            for iid in ctx.idle_instances(k)[: live - desired]:
                ctx.retire(iid)


BUILTINS: dict[str, type[Controller]] = {"forecast-prewarm": ForecastPrewarm, "knative": Knative}

#: The scenario field's type: a built-in or a plug-in, chosen by `policy:`.
ControllerField = Annotated[Controller, PluginField(Controller, BUILTINS)]
