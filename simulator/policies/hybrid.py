"""The hybrid-histogram keep-alive policy with pre-warming (Shahrad et al., "Serverless in
the Wild", USENIX ATC 2020, §4.2) [sources: shahrad-2020].

Per function (per application with instance_scope app, as in the paper) it keeps a
histogram of idle times: from the end of the latest execution to the arrival of the next
request (0 while an execution is running), in bins of
`bin_s` over `range_s`. Each time an instance goes idle the policy decides from it:

- representative (at least `min_samples` idle times in range, and the coefficient of
  variation of the bin counts at least `cv_threshold`): the head (the `head_percentile` of
  idle times, the lower edge of its bin) less `margin` is the pre-warm window, the tail (the
  `tail_percentile`, the upper edge of its bin) plus `margin` the end of the keep-alive
  window. With a head of 0 the instance simply stays until the tail; otherwise it is unloaded
  at once and a pre-warmed instance is ready at end + pre-warm window, kept until end + tail.
- too many idle times beyond the range (a share of at least `oob_threshold`): the next idle
  time is forecast (`forecast`: the mean of the recent ones, or an ARIMA model of them, which
  needs statsmodels: `pip install coldsim[arima]`), and an instance is pre-warmed to cover
  the forecast ± `oob_margin`.
- otherwise (few samples, or a flat histogram): the conservative fallback, keep the instance
  for the whole range and pre-warm nothing.

Warmer pings are not traffic: they do not enter the histogram. With `scope: app` (the default
under instance_scope: app) one copy serves each application: the paper's per-application
histogram, over the app's functions' own instances unless they share them too.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from .keepalive import Invocation, KeepAlivePolicy, Prewarm

#: Idle times kept for forecasts beyond the histogram's range.
RECENT = 50


def moved(bins: list[int], i: int, below: int, target: float) -> tuple[int, int]:
    """A percentile's pointer moved to the first bin at which the cumulative count reaches
    `target` (0 <= target <= count), as bin_of's scan finds it: (bin, count before it),
    from (i, below), the pointer's last place and the count before that."""
    if below >= target:  # the bin is before i (or is 0)
        while i:
            i -= 1
            below -= bins[i]
            if below < target:
                break
    else:
        while below + bins[i] < target:
            below += bins[i]
            i += 1
    return i, below


#: Bins one histogram may have (range_s / bin_s): a bound on its memory and set-up time.
MAX_BINS = 100_000


class HybridHistogram(KeepAlivePolicy):
    """Keep-alive and pre-warm windows learnt from each function's idle times (ATC'20)."""

    policy: Literal["hybrid-histogram"]
    range_s: float = Field(14400.0, gt=0, allow_inf_nan=False,
                           description="Histogram range, s (the paper: 4 h).")  # fmt: skip
    bin_s: float = Field(60.0, gt=0, allow_inf_nan=False, description="Bin width, s (1 min).")
    head_percentile: float = Field(5.0, ge=0, lt=100, description="Pre-warm percentile (5th).")
    tail_percentile: float = Field(99.0, gt=0, le=100,
                                   description="Keep-alive percentile (99th).")  # fmt: skip
    margin: float = Field(0.10, ge=0, lt=1, description="Histogram margin (10%).")
    cv_threshold: float = Field(2.0, ge=0, description="Least CV of the bin counts (2).")
    min_samples: int = Field(
        10,
        ge=1,
        description=(
            "Least idle times in range before the histogram is trusted. The paper asks for "
            "'enough' without a number; 10 is coldsim's choice."
        ),
    )
    oob_threshold: float = Field(
        0.5, gt=0, le=1,
        description="Share of idle times beyond the range that switches to forecasting (0.5, "
                    "as dslab-faas's implementation).",
    )  # fmt: skip
    oob_margin: float = Field(0.15, ge=0, lt=1, description="Forecast margin (15%).")
    forecast: Literal["mean", "arima"] = Field(
        "mean",
        description="Forecast of the next idle time beyond the range: the mean of the recent "
                    "ones, or ARIMA (the paper's; needs statsmodels).",
    )  # fmt: skip

    @model_validator(mode="after")
    def _consistent(self):
        if self.head_percentile >= self.tail_percentile:
            raise ValueError("head_percentile must be below tail_percentile")
        if self.bin_s > self.range_s:
            raise ValueError("bin_s must not exceed range_s")
        if self.range_s / self.bin_s > MAX_BINS:
            raise ValueError(
                f"range_s / bin_s = {self.range_s / self.bin_s:,.0f} bins; at most "
                f"{MAX_BINS:,} (each function's histogram holds them: the paper's 4 h of 1-min "
                "bins is 240)"
            )
        if self.forecast == "arima":
            try:
                import statsmodels  # noqa: F401
            except ImportError:
                raise ValueError(
                    "forecast: arima needs statsmodels (pip install 'coldsim[arima]')"
                ) from None
        return self

    def state_bytes(self) -> float:
        return 8.0 * math.ceil(self.range_s / self.bin_s) + 2000.0  # list slots, deque, object

    def start(self, function, rng):
        # The state is a plain object: attribute writes on a pydantic model go through its
        # validation hooks, which cost more than the rest of a decision. The per-request hooks
        # are closures (bound over this copy's methods): they read the parameters from cells.
        h = self._h = _Histogram(max(1, math.ceil(self.range_s / self.bin_s)), self.bin_s)
        decide = self._decider(h)
        recent = h.recent
        bins, bin_s, n_bins = h.bins, h.bin_s, len(h.bins)

        def observe(invocation) -> None:
            # _Histogram.add, inlined (it runs once per request).
            if invocation.kind != "user":
                return
            last = h.last_end
            end_s = invocation.end_s
            if last is None:
                h.last_end = end_s
                return
            idle = invocation.arrival_s - last
            if not idle > 0.0:  # max(0.0, idle)
                idle = 0.0
            recent.append(idle)
            i = int(idle // bin_s)
            if i < n_bins:
                c = bins[i]
                bins[i] = c + 1
                h.sumsq += 2 * c + 1  # (c + 1)^2 - c^2
                h.sum += 1
                if i < h.head_i:
                    h.head_below += 1
                if i < h.tail_i:
                    h.tail_below += 1
            else:
                h.beyond += 1
            h.windows = None
            if end_s > last:  # max(last, end_s)
                h.last_end = end_s

        def windows() -> tuple[float, tuple[float, float] | None]:
            w = h.windows
            if w is None:
                w = h.windows = decide()
            return w

        def keep_alive_s(end_s, instance_id):
            w = h.windows
            if w is None:
                w = h.windows = decide()
            h.prewarm = w[1]
            return w[0]

        def prewarm(end_s, instance_id):
            ask = h.prewarm
            if ask is None:
                return None
            h.prewarm = None
            return Prewarm(end_s + ask[0], ask[1])

        self._bind(observe=observe, windows=windows, keep_alive_s=keep_alive_s,
                   prewarm=prewarm)  # fmt: skip

    # The class's own hooks, below, are what `keepalive.overrides` sees; on each started copy
    # the closures above take their place, and do the same.

    def observe(self, invocation: Invocation) -> None:
        if invocation.kind == "user":
            self._h.add(invocation.arrival_s, invocation.end_s)

    # -- the decision, taken once per idle instance -----------------------------------------

    def keep_alive_s(self, end_s, instance_id):
        keep, prewarm = self.windows()
        self._h.prewarm = prewarm
        return keep

    def prewarm(self, end_s, instance_id):
        h = self._h
        prewarm, h.prewarm = h.prewarm, None
        return None if prewarm is None else Prewarm(end_s + prewarm[0], prewarm[1])

    def windows(self) -> tuple[float, tuple[float, float] | None]:
        """(keep-alive window of the instance going idle, None or (pre-warm window, how long
        the pre-warmed instance is kept once ready)), from the histogram as it stands."""
        h = self._h
        if h.windows is None:
            h.windows = self._decider(h)()
        return h.windows

    def _decider(self, h: _Histogram):
        """The decision from h as it stands, a closure over the parameters. The percentiles'
        bins come from pointers kept up to date as idle times arrive (see `_Histogram`): the
        same bins as `_Histogram.bin_of`'s scans (kept as the reference), found in a few steps
        instead of up to range_s / bin_s."""
        oob_threshold, oob_margin = self.oob_threshold, self.oob_margin
        min_samples, cv_threshold, range_s, bin_s = (
            self.min_samples, self.cv_threshold, self.range_s, self.bin_s,
        )  # fmt: skip
        head_q, tail_q = self.head_percentile / 100.0, self.tail_percentile / 100.0
        below_head, above_tail = 1 - self.margin, 1 + self.margin
        forecast = self._forecast
        bins = h.bins
        n = len(bins)

        def decide() -> tuple[float, tuple[float, float] | None]:
            beyond = h.beyond
            # (with none beyond the range, 0 / total is below oob_threshold, which is > 0)
            if beyond and beyond / (h.sum + beyond) >= oob_threshold:
                guess = forecast()
                lo, hi = guess * (1 - oob_margin), guess * (1 + oob_margin)
                return 0.0, (lo, hi - lo)
            count = h.sum
            if count < min_samples:
                return range_s, None
            if n < 2:  # _Histogram.cv, inlined (count > 0 here)
                cv = 0.0
            else:
                mean = count / n
                var = (h.sumsq - count * mean) / (n - 1)
                if not var > 0.0:  # max(0.0, var)
                    var = 0.0
                cv = math.sqrt(var) / mean
            if cv < cv_threshold:
                return range_s, None
            # The percentiles' bins: each pointer moves to the first bin at which the
            # cumulative count reaches the target (0 <= target <= count), as bin_of's scans.
            h.head_i, h.head_below = moved(bins, h.head_i, h.head_below, head_q * count)
            head = h.head_i * bin_s * below_head
            h.tail_i, h.tail_below = moved(bins, h.tail_i, h.tail_below, tail_q * count)
            tail = (h.tail_i + 1) * bin_s * above_tail
            if head <= 0.0:
                return tail, None
            return 0.0, (head, tail - head)

        return decide

    def cv(self) -> float:
        """Coefficient of variation of the bin counts (sample standard deviation)."""
        return self._h.cv()

    @property
    def _bins(self) -> np.ndarray:
        return np.array(self._h.bins)

    def _forecast(self) -> float:
        recent = np.array(self._h.recent, dtype=float)
        if self.forecast == "arima" and len(recent) >= 5:
            from statsmodels.tsa.arima.model import ARIMA

            try:
                fitted = ARIMA(recent, order=(1, 0, 0)).fit()
                guess = float(fitted.forecast(1)[0])
                if math.isfinite(guess) and guess > 0:
                    return guess
            except (ValueError, np.linalg.LinAlgError):
                pass  # too few or degenerate samples: the mean below
        return float(recent.mean()) if len(recent) else self.range_s


class _Histogram:
    """One function's idle times: bin counts (a list: read a bin at a time), their running
    sum and sum of squares (for the CV), those past the range, the recent ones (for
    forecasts), the end of the latest execution, and the decision while it holds.

    For the head and tail percentiles it keeps a pointer: a bin (head_i, tail_i) and the count
    of idle times in the bins before it (head_below, tail_below), kept up to date as idle times
    arrive. A decision moves each pointer to its percentile's bin from where it was: a step or
    two, as the bins change by one idle time at a time, instead of a scan of the bins."""

    __slots__ = ("bins", "bin_s", "sum", "sumsq", "beyond", "recent", "last_end", "windows",
                 "prewarm", "head_i", "head_below", "tail_i", "tail_below")  # fmt: skip

    def __init__(self, n_bins: int, bin_s: float):
        self.bins = [0] * n_bins
        self.bin_s = bin_s
        self.sum = self.sumsq = self.beyond = 0
        self.recent: deque[float] = deque(maxlen=RECENT)
        self.last_end: float | None = None
        self.windows: tuple | None = None
        self.prewarm: tuple[float, float] | None = None
        self.head_i = self.head_below = self.tail_i = self.tail_below = 0

    def add(self, arrival_s: float, end_s: float) -> None:
        if self.last_end is not None:
            idle = max(0.0, arrival_s - self.last_end)
            self.recent.append(idle)
            i = int(idle // self.bin_s)
            if i < len(self.bins):
                c = self.bins[i]
                self.bins[i] = c + 1
                self.sumsq += 2 * c + 1  # (c + 1)^2 - c^2
                self.sum += 1
                if i < self.head_i:
                    self.head_below += 1
                if i < self.tail_i:
                    self.tail_below += 1
            else:
                self.beyond += 1
            self.windows = None
        self.last_end = end_s if self.last_end is None else max(self.last_end, end_s)

    def cv(self) -> float:
        n = len(self.bins)
        if self.sum == 0 or n < 2:
            return 0.0
        mean = self.sum / n
        return math.sqrt(max(0.0, (self.sumsq - self.sum * mean) / (n - 1))) / mean

    def bin_of(self, percentile: float) -> int:
        """The first bin at which the cumulative share of idle times reaches `percentile`:
        scanned from the nearer end (the head from the left, the tail from the right)."""
        target = percentile / 100.0 * self.sum
        bins = self.bins
        if percentile <= 50.0:
            cumulative = 0
            for i, c in enumerate(bins):
                cumulative += c
                if cumulative >= target:
                    return i
            return len(bins) - 1
        above = 0  # idle times in bins after i
        for i in range(len(bins) - 1, -1, -1):
            if self.sum - above - bins[i] < target:  # cumulative up to i-1 falls short
                return i
            above += bins[i]
        return 0
