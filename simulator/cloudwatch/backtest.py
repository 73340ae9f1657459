"""How well a scenario reproduces production (`coldsim logs backtest`): the observed arrivals
replayed through it, predicted against observed per hour.

Compared: cold starts (in total, as a rate, per hour), environments in use per hour (log
streams with a request in the hour; instances in the run), and the share of busy time spent in
init. Hours count from the first observed request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ScenarioError
from ..reporting.pricing import pays_init
from .fit import Fit, requests


def replay_scenario(scenario: dict[str, Any], fitted: Fit, folder: Path) -> dict[str, Any]:
    """`scenario` (plain data) with each function's arrivals replaced by the observed ones,
    written as CSV files into folder."""
    data = dict(scenario)
    names = {f["name"] for f in data["functions"]}
    missing = sorted(set(fitted.arrivals) - names)
    if missing:
        raise ScenarioError(
            f"the scenario has no function {missing[0]!r}, which the logs have "
            f"(its functions: {', '.join(sorted(names))})"
        )
    folder.mkdir(parents=True, exist_ok=True)
    functions = []
    for f in data["functions"]:
        if f["name"] not in fitted.arrivals:
            continue  # not in the logs: nothing to compare
        path = folder / f"{f['name']}.csv"
        path.write_text("timestamp_s\n" + "".join(f"{t:.6f}\n" for t in fitted.arrivals[f["name"]]))
        functions.append({**f, "arrivals": {"process": "trace", "path": str(path)}})
    span = max(float(t.max()) for t in fitted.arrivals.values()) + 1.0
    data.update(functions=functions, duration_s=float(np.ceil(span)), warmup_s=0.0, sweep=None)
    data.pop("workload", None)
    return data


def compare(fitted: Fit, parsed, result) -> dict[str, Any]:
    """Observed against predicted: totals, per-hour series and error figures."""
    obs = requests(parsed)
    t0 = fitted.t0_epoch_s
    hours = int(np.ceil(max(float(obs["arrival_s"].max()) - t0, 1.0) / 3600.0))
    edges = np.arange(hours + 1) * 3600.0

    def per_hour(times: np.ndarray) -> np.ndarray:
        return np.histogram(times, bins=edges)[0]

    inv = result.invocations
    served = inv[inv["status"].astype(str) == "served"].copy()
    # As the logs count them: one init per instance (requests that joined a multi-request
    # instance's init only waited: their REPORTs carry no Init Duration).
    served["cold"] = served["cold"].to_numpy() & pays_init(
        served["cold"].to_numpy(), served["instance_id"].to_numpy(), served["init_ms"].to_numpy()
    )
    obs_cold = per_hour(obs.loc[obs["cold"], "arrival_s"].to_numpy() - t0)
    pred_cold = per_hour(served.loc[served["cold"], "arrival_s"].to_numpy())
    obs_envs = _active(obs["stream"].to_numpy(), obs["start_s"].to_numpy() - t0, edges)
    pred_envs = _active(served["instance_id"].to_numpy(), served["start_s"].to_numpy(), edges)
    obs_init = float(obs["init_ms"].fillna(0).sum())
    obs_share = obs_init / (obs_init + float(obs["duration_ms"].sum()))
    pred_init = float(served["init_ms"].sum())
    pred_share = pred_init / (pred_init + float(served["duration_ms"].sum()))
    n_obs, n_pred = int(obs["cold"].sum()), int(served["cold"].sum())
    errors = {
        "cold_starts_relative_error": (n_pred - n_obs) / n_obs if n_obs else None,
        "cold_starts_per_hour_mae": float(np.mean(np.abs(pred_cold - obs_cold))),
        "cold_starts_per_hour_correlation": _correlation(obs_cold, pred_cold),
        "environments_per_hour_mae": float(np.mean(np.abs(pred_envs - obs_envs))),
        "init_share_difference": pred_share - obs_share,
    }
    return {
        "errors": errors,
        "observed": {"invocations": int(len(obs)), "cold_starts": n_obs,
                     "cold_start_rate": n_obs / len(obs), "init_share": obs_share},
        "predicted": {"invocations": int(len(served)), "cold_starts": n_pred,
                      "cold_start_rate": n_pred / max(1, len(served)),
                      "init_share": pred_share},
        "per_hour": pd.DataFrame({
            "hour": np.arange(hours), "cold_observed": obs_cold, "cold_predicted": pred_cold,
            "environments_observed": obs_envs, "environments_predicted": pred_envs,
        }),
    }  # fmt: skip


def _active(keys: np.ndarray, times: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Distinct keys (environments) with a request starting in each bin."""
    frame = pd.DataFrame({"key": keys, "bin": np.searchsorted(edges, times, side="right") - 1})
    frame = frame[(frame["bin"] >= 0) & (frame["bin"] < len(edges) - 1)]
    counts = frame.drop_duplicates().groupby("bin").size()
    return counts.reindex(range(len(edges) - 1), fill_value=0).to_numpy()


def _correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def figure(report: dict[str, Any], title: str):
    from ..reporting import style

    table = report["per_hour"]
    fig, axes = style.figures(2, 1, 9, 6.4)
    for ax, what, label in ((axes[0], "cold", "cold starts per hour"),
                            (axes[1], "environments", "environments in use per hour")):  # fmt: skip
        x = np.arange(len(table) + 1)
        ax.stairs(table[f"{what}_observed"], x, color=style.PALETTE[0], lw=2, label="observed")
        ax.stairs(table[f"{what}_predicted"], x, color=style.PALETTE[1], lw=2, ls="--",
                  label="predicted")  # fmt: skip
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend()
    axes[1].set_xlabel("hours from the first request")
    e = report["errors"]
    rel = e["cold_starts_relative_error"]
    axes[0].set_title(
        f"{title}: cold starts {report['predicted']['cold_starts']:,} predicted vs "
        f"{report['observed']['cold_starts']:,} observed"
        + (f" ({100 * rel:+.1f}%)" if rel is not None else "")
    )
    return fig
