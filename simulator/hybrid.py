"""The hybrid-histogram keep-alive policy with pre-warming (Shahrad et al., "Serverless in
the Wild", USENIX ATC 2020, §4.2) [sources: shahrad-2020].

Per function it keeps a histogram of idle times: from the end of the function's latest
execution to the arrival of its next request (0 while an execution is running), in bins of
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

Warmer pings are not traffic: they do not enter the histogram. Under instance_scope: app the
paper's per-application histogram is this per-function one (coldsim keeps one policy copy per
function).
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
        if self.forecast == "arima":
            try:
                import statsmodels  # noqa: F401
            except ImportError:
                raise ValueError(
                    "forecast: arima needs statsmodels (pip install 'coldsim[arima]')"
                ) from None
        return self

    def start(self, function, rng):
        self._bins = np.zeros(max(1, math.ceil(self.range_s / self.bin_s)), dtype=np.int64)
        self._beyond = 0  # idle times past the range
        self._recent: deque[float] = deque(maxlen=RECENT)
        self._last_end: float | None = None
        self._decision: tuple[float, Prewarm | None] | None = None
        self._sum = 0  # idle times in range (the bins' total) ...
        self._sumsq = 0  # ... and the sum of the squared bin counts: the CV without a pass
        self._windows: tuple | None = None  # cached until the next idle time is seen

    def observe(self, invocation: Invocation) -> None:
        if invocation.kind != "user":
            return
        if self._last_end is not None:
            idle = max(0.0, invocation.arrival_s - self._last_end)
            self._recent.append(idle)
            i = int(idle // self.bin_s)
            if i < len(self._bins):
                self._sumsq += 2 * int(self._bins[i]) + 1  # (c + 1)^2 - c^2
                self._sum += 1
                self._bins[i] += 1
            else:
                self._beyond += 1
            self._windows = None
        end = invocation.end_s
        self._last_end = end if self._last_end is None else max(self._last_end, end)

    # -- the decision, taken once per idle instance -----------------------------------------

    def keep_alive_s(self, end_s, instance_id):
        keep, prewarm = self.windows()
        self._decision = (end_s, prewarm)
        return keep

    def prewarm(self, end_s, instance_id):
        prewarm = self._decision[1] if self._decision else None
        self._decision = None
        return None if prewarm is None else Prewarm(end_s + prewarm[0], prewarm[1])

    def windows(self) -> tuple[float, tuple[float, float] | None]:
        """(keep-alive window of the instance going idle, None or (pre-warm window, how long
        the pre-warmed instance is kept once ready)), from the histogram as it stands."""
        if self._windows is None:
            self._windows = self._decide()
        return self._windows

    def _decide(self) -> tuple[float, tuple[float, float] | None]:
        in_range = self._sum
        total = in_range + self._beyond
        if total and self._beyond / total >= self.oob_threshold:
            guess = self._forecast()
            lo, hi = guess * (1 - self.oob_margin), guess * (1 + self.oob_margin)
            return 0.0, (lo, hi - lo)
        if in_range < self.min_samples or self.cv() < self.cv_threshold:
            return self.range_s, None
        head = self._bin_of(self.head_percentile) * self.bin_s * (1 - self.margin)
        tail = (self._bin_of(self.tail_percentile) + 1) * self.bin_s * (1 + self.margin)
        if head <= 0.0:
            return tail, None
        return 0.0, (head, tail - head)

    def cv(self) -> float:
        """Coefficient of variation of the bin counts (sample standard deviation), from the
        running sums."""
        n = len(self._bins)
        if self._sum == 0 or n < 2:
            return 0.0
        mean = self._sum / n
        variance = max(0.0, (self._sumsq - self._sum * mean) / (n - 1))
        return math.sqrt(variance) / mean

    def _bin_of(self, percentile: float) -> int:
        """The first bin at which the cumulative share of idle times reaches `percentile`."""
        cumulative = np.cumsum(self._bins)
        return int(np.searchsorted(cumulative, percentile / 100.0 * cumulative[-1]))

    def _forecast(self) -> float:
        recent = np.array(self._recent, dtype=float)
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
