"""Does one keep-alive explain all the logs? (`coldsim logs fit`)

The evidence on the keep-alive (`fit.environments`: idle periods followed by reuse, bounding
it from below; environments seen to end, bounding it from above) is split three ways:
- by file (when several files hold evidence);
- by day (UTC, of the moment each idle period began);
- by load: the number of its function's environments seen alive (between their first and
  last requests) as the idle period began, split at the median of the informative
  observations: "quiet" at or below it, "busy" above. (The platform also holds environments
  idle since their last request, so its own count is higher: a `busy_from` fitted from
  this one is a low estimate.)

Each split is tested by a likelihood-ratio test: a log-normal keep-alive fitted to the
interval-censored evidence of each group (a reuse after g: P(K > g); an end seen within u:
P(K < u)) against one fitted to all of them, 2 (sum of the groups' log-likelihoods - the
pooled one) ~ chi-square with 2 (groups - 1) degrees of freedom [sources: lifelines]. The
log-normal is a yardstick, not a claim about the platform: it is the same in every group, so
groups that differ only by chance score about the degrees of freedom. Groups whose evidence
is thin (fewer than MIN_EVIDENCE informative observations) are left out of their split. The
logs disagree when a split's p-value is below ALPHA / the number of splits tested
(Bonferroni) and a reuse in one group came after an idle period beyond the range of
another's estimate: a difference that matters, not only one that many observations make
significant.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

#: Informative observations (ends, and reuses near the estimate) a group needs to be tested.
MIN_EVIDENCE = 8
#: The test's level, shared by the splits tested (Bonferroni).
ALPHA = 0.001
#: The log-normal's least spread: a fixed keep-alive's likelihood tends to 1 as it shrinks.
_MIN_SIGMA = 1e-3


def check(idle: pd.DataFrame, describe) -> dict[str, Any]:
    """The consistency report: per split, its groups (name, evidence, description by
    `describe(rows)`, which gives {"text", "low_s", "high_s", ...}), the test's statistic,
    degrees of freedom and p-value, and whether the split disagrees; overall `consistent`
    and, if not, a `note` naming each group's estimate."""
    use = idle[idle["kind"].isin(["reused", "ended"])].copy()
    ended = use["kind"] == "ended"
    if not ended.any():
        return {"consistent": True, "splits": [], "note": "nothing to test: no end seen"}
    shortest = float(use.loc[ended, "upper_s"].min())
    # Reuses after short gaps say nothing about the keep-alive beyond what the longest does.
    informative = ended | (use["lower_s"] >= shortest / 2)
    use, informative = use[informative], informative[informative]
    splits = []
    files = use["file"].astype(str)
    if files[informative].nunique() > 1:
        splits.append(("file", files))
    days = use["at_s"].map(lambda t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d"))
    if days[informative].nunique() > 1:
        splits.append(("day", days))
    load = use["load"].to_numpy(dtype=float)
    cut = float(np.median(load[informative.to_numpy()]))
    if (load[informative.to_numpy()] > cut).any():
        envs = "environment" if cut == 1 else "environments"
        quiet, busy = f"quiet (at most {cut:.0f} {envs})", f"busy (more than {cut:.0f} {envs})"
        splits.append(("load", pd.Series(np.where(load > cut, busy, quiet), index=use.index)))
    tested = []
    for by, labels in splits:
        enough = informative.groupby(labels).sum()
        names = [g for g in enough.index if enough[g] >= MIN_EVIDENCE]
        if len(names) < 2:
            continue
        groups = [use[labels == g] for g in names]
        stat, df, p = _likelihood_ratio(groups)
        described = [{"name": g, "evidence": _evidence(rows), **describe(rows)}
                     for g, rows in zip(names, groups, strict=True)]  # fmt: skip
        tested.append({"by": by, "groups": described, "statistic": round(stat, 2),
                       "df": df, "p_value": p, "differ": _differ(described)})  # fmt: skip
        if by == "load":
            tested[-1]["busy_from"] = int(cut) + 1
    level = ALPHA / max(1, len(tested))
    for t in tested:
        t["disagree"] = bool(t["p_value"] < level and t["differ"])
    out: dict[str, Any] = {"consistent": not any(t["disagree"] for t in tested),
                           "level": level, "splits": tested}  # fmt: skip
    if not out["consistent"]:
        worst = min((t for t in tested if t["disagree"]), key=lambda t: t["p_value"])
        out["note"] = (
            f"one keep-alive does not explain these logs: by {worst['by']} (likelihood ratio "
            f"{worst['statistic']:,.1f}, p = {worst['p_value']:.1e}), "
            + "; ".join(f"{g['name']}: {g['text']}" for g in worst["groups"])
        )
    return out


def _evidence(rows: pd.DataFrame) -> dict[str, int]:
    kinds = rows["kind"].value_counts()
    return {"reused": int(kinds.get("reused", 0)), "ended": int(kinds.get("ended", 0))}


def _differ(described: list[dict]) -> bool:
    """Whether the groups differ by more than chance spreads them: one group's longest reuse
    (or the low end of its estimate) lies beyond the high end of another's estimate (the
    right end of the interval holding its 95th percentile)."""
    for a in described:
        reach = max(a["longest_reuse_s"] or 0.0, a["low_s"] or 0.0)
        if any(b is not a and b["high_s"] is not None and reach > b["high_s"]
               for b in described):  # fmt: skip
            return True
    return False


def _likelihood_ratio(groups: list[pd.DataFrame]) -> tuple[float, int, float]:
    from scipy.stats import chi2

    pooled = _lognormal_loglik(pd.concat(groups))
    apart = sum(_lognormal_loglik(g) for g in groups)
    stat = max(0.0, 2.0 * (apart - pooled))
    df = 2 * (len(groups) - 1)
    return stat, df, float(chi2.sf(stat, df))


def _lognormal_loglik(rows: pd.DataFrame) -> float:
    """The largest log-likelihood of a log-normal keep-alive given reuses (K > lower) and
    ends (K < upper)."""
    from scipy.optimize import minimize
    from scipy.special import log_ndtr

    reused = rows["kind"].to_numpy() == "reused"
    below = np.log(np.maximum(rows.loc[reused, "lower_s"].to_numpy(dtype=float), 1e-3))
    above = np.log(rows.loc[~reused, "upper_s"].to_numpy(dtype=float))
    below, w_below = np.unique(np.round(below, 4), return_counts=True)
    above, w_above = np.unique(np.round(above, 4), return_counts=True)

    def minus(theta: np.ndarray) -> float:
        mu, sigma = theta[0], _MIN_SIGMA + math.exp(theta[1])
        return -float(w_below @ log_ndtr((mu - below) / sigma)
                      + w_above @ log_ndtr((above - mu) / sigma))  # fmt: skip

    # Starts between the longest reuse and the shortest end (both when they cross).
    hi = float(above.min()) if len(above) else float(below.max(initial=0.0)) + 1.0
    lo = float(below.max()) if len(below) else hi - 1.0
    best = math.inf
    for mu0 in {lo, hi, (lo + hi) / 2}:
        for log_sigma in (-5.0,):
            res = minimize(minus, np.array([mu0, log_sigma]), method="Nelder-Mead",
                           options={"xatol": 1e-6, "fatol": 1e-6, "maxiter": 2000})  # fmt: skip
            best = min(best, float(res.fun))
    return -best
