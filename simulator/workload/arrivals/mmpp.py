"""Markov-modulated Poisson arrivals: bursty on/off traffic and n-state generalisations."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from ...rng import batch_sizes
from .base import ArrivalProcessBase, uniform_counts


class MMPP(ArrivalProcessBase):
    """A Poisson process whose rate switches between states. State i lasts an exponential
    time with mean mean_durations_s[i], during which requests arrive at rates_per_s[i]; then
    the next state is drawn from `transitions` (row i; default: any other state, uniformly).
    The first state is drawn from the stationary distribution, so the process is stationary
    from t = 0 (mean rate = Σ π_i λ_i, π_i ∝ ν_i · mean_durations_s[i], ν the embedded
    chain's stationary distribution). On/off bursts: rates_per_s [50, 0],
    mean_durations_s [10, 600]."""

    process: Literal["mmpp"]
    rates_per_s: list[float] = Field(min_length=2, description="Arrival rate in each state.")
    mean_durations_s: list[float] = Field(
        min_length=2, description="Mean time spent in each state per visit, s."
    )
    transitions: list[list[float]] | None = Field(
        None, description="Row-stochastic matrix of next-state probabilities (zero diagonal)."
    )

    @model_validator(mode="after")
    def _consistent(self):
        n = len(self.rates_per_s)
        if len(self.mean_durations_s) != n:
            raise ValueError("rates_per_s and mean_durations_s need one entry per state")
        if any(not np.isfinite(r) or r < 0 for r in self.rates_per_s):
            raise ValueError("rates_per_s must be finite and >= 0")
        if any(not np.isfinite(d) or d <= 0 for d in self.mean_durations_s):
            raise ValueError("mean_durations_s must be finite and > 0")
        if max(self.rates_per_s) <= 0:
            raise ValueError("at least one state needs a positive rate")
        if self.transitions is not None:
            p = np.asarray(self.transitions, dtype=float)
            if p.shape != (n, n) or (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0):
                raise ValueError(
                    f"transitions must be a {n}x{n} matrix of probabilities, rows summing to 1"
                )
            if np.diag(p).any():
                raise ValueError(
                    "transitions must have a zero diagonal (a visit lasts mean_durations_s)"
                )
        return self

    def _matrix(self) -> np.ndarray:
        n = len(self.rates_per_s)
        if self.transitions is not None:
            p = np.asarray(self.transitions, dtype=float)
            return p / p.sum(axis=1, keepdims=True)  # rows summing to 0.99999 must not overrun
        return (np.ones((n, n)) - np.eye(n)) / (n - 1)

    def stationary(self) -> np.ndarray:
        """Long-run fraction of time in each state."""
        p = self._matrix()
        w, v = np.linalg.eig(p.T)
        nu = np.real(v[:, np.argmin(np.abs(w - 1.0))])
        pi = np.abs(nu) * np.asarray(self.mean_durations_s)
        return pi / pi.sum()

    def mean_rate(self) -> float:
        return float(self.stationary() @ np.asarray(self.rates_per_s))

    def generate(self, rng, t0, t1):
        p = np.cumsum(self._matrix(), axis=1)
        p[:, -1] = 1.0
        rates = np.asarray(self.rates_per_s)
        means = np.asarray(self.mean_durations_s)
        state = int(rng.choice(len(rates), p=self.stationary()))
        t = t0
        for size in batch_sizes():  # `size` state visits at a time
            states = np.empty(size, dtype=np.int64)
            u = rng.random(size)
            for j in range(size):  # the chain itself is sequential; visits are few
                states[j] = state
                state = int(np.searchsorted(p[state], u[j], side="right"))
            lengths = rng.exponential(means[states])
            starts = t + np.concatenate([[0.0], np.cumsum(lengths[:-1])])
            end = starts[-1] + lengths[-1]
            keep = starts < t1
            lengths = np.minimum(lengths[keep], t1 - starts[keep])
            yield uniform_counts(rng, starts[keep], lengths, rates[states[keep]])
            if end >= t1:
                return
            t = end

    def expected_count(self, t0, t1):
        return self.mean_rate() * (t1 - t0)
