"""A finished run: its logs, summary and plots, and writing them to a folder atomically."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from matplotlib.figure import Figure

from ..scenario.schema import Scenario
from . import plots, style
from .logs import requests_written, write_parquet
from .output import check_output_dir, write_folder
from .rowstats import RowStats
from .summary import per_host

PLOTS = {
    "latency_cdf": "plot_latency_cdf",
    "instances_over_time": "plot_instances",
    "cold_starts_over_time": "plot_cold_starts",
}


@dataclass
class Result:
    """A run: its scenario (as run, seed included), its logs and its summary. `invocations`
    holds every request, unless the run was streamed (see simulate): then only those kept
    in memory. `stats` are the requests' statistics the figures are drawn from; `kept`, the
    request rows the host and connection figures need (every row when `invocations` is
    whole)."""

    scenario: Scenario
    invocations: pd.DataFrame
    instances: pd.DataFrame
    throttles: pd.DataFrame
    summary: dict[str, Any] = field(repr=False)
    stats: RowStats | None = field(default=None, repr=False)
    kept: pd.DataFrame | None = field(default=None, repr=False)
    streamed: bool = False
    #: The folder a streamed run wrote as it went (simulate(save_to=...)), if any.
    saved_to: Path | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kept is None:
            self.kept = self.invocations
        if self.stats is None:
            from .summary import row_stats

            self.stats = row_stats(self.invocations, self.instances, self.throttles,
                                   self.scenario)  # fmt: skip

    def plot_latency_cdf(self) -> Figure:
        """Latency CDFs of cold and warm requests (one panel per function when there are
        several), from every counted request (latency_cdf.png)."""
        return plots.latency_cdf(
            self.stats,
            f"{self.scenario.name}: latency CDF",
            [f.name for f in self.scenario.functions],
        )

    def plot_instances(self) -> Figure:
        """Instances over time (provisioned apart), and the memory they hold: on the hosts
        (their footprint, host_memory_mb) with platform.hosts, else Lambda's memory_mb."""
        from ..engine.hosts import footprint_mb

        s = self.scenario
        hosts = s.platform.hosts
        memory_mb = {f.name: footprint_mb(f.footprint_mb()) if hosts is not None
                     else f.memory_mb for f in s.functions}  # fmt: skip
        return plots.instances_over_time(
            self.stats, self.instances, s.duration_s, s.warmup_s,
            title=f"{s.name}: instances over time", memory_mb=memory_mb,
            host_capacity_mb=None if hosts is None else float(sum(hosts.per_host("memory_mb"))),
        )  # fmt: skip

    def plot_cold_starts(self) -> Figure:
        """Cold starts per bin of simulated time, the warm-up marked (cold_starts_over_time.png)."""
        s = self.scenario
        return plots.cold_starts_over_time(
            self.stats, s.duration_s, s.warmup_s, title=f"{s.name}: cold starts over time"
        )

    def plot_hosts(self) -> Figure:
        """Memory per host over time (with platform.hosts)."""
        if self.scenario.platform.hosts is None:
            raise ValueError("this run has no platform.hosts")
        return plots.hosts_over_time(
            self.kept, self.instances, self.scenario,
            title=f"{self.scenario.name}: memory held on the hosts",
            dropped_no_memory=self.summary["dropped_no_memory"],
        )  # fmt: skip

    def plot_connections(self) -> Figure:
        """Connections held to each resource of functions' global_state over time."""
        return plots.connections_over_time(
            self.kept, self.instances, self.scenario,
            title=f"{self.scenario.name}: connections held over time",
        )  # fmt: skip

    def host_table(self) -> pd.DataFrame:
        """One row per host: time-average memory used, busy and idle, peak, utilisation,
        instances placed and evicted (with platform.hosts)."""
        if self.scenario.platform.hosts is None:
            raise ValueError("this run has no platform.hosts")
        return per_host(self.kept, self.instances, self.scenario)

    def save(self, out_dir: str | Path, figure_style: str | None = None) -> Path:
        """Write summary.json, the logs (Parquet: the requests' as scenario.outputs.requests
        says), scenario.yaml and the plots to out_dir (PNG, or with figure_style "paper" PDF
        and SVG one paper column wide: see reporting.style).
        Everything goes to a temporary sibling first, then replaces out_dir in one rename, so a
        reader never sees a half-written result. An existing out_dir is replaced only if it is
        empty or holds an earlier run."""
        out = check_output_dir(out_dir, "run")
        with style.using(figure_style):
            write_folder(out, "run", self.save_into)
        return out

    def save_into(self, folder: Path, requests: bool = True) -> None:
        """Write the run's files into an empty folder; `requests`: invocations.parquet too
        (a streamed run wrote it as it went). A streamed run's requests are those it kept:
        the sample it took, or none."""
        s = self.scenario
        if requests:
            if self.saved_to is not None:  # its request log went to disk as it ran
                about, kept = self.summary["requests_log"], None
                written = self.saved_to / "invocations.parquet"
                if about["requests"] != "none":
                    if not written.is_file():
                        raise FileNotFoundError(
                            f"this run's request log was written to {written} as it ran, "
                            "and is no longer there: it is not held in memory"
                        )
                    shutil.copyfile(written, folder / "invocations.parquet")
            elif self.streamed:  # what it kept is what it writes
                about = self.summary["requests_log"]
                kept = None if about["requests"] == "none" else self.invocations
            else:
                kept, about = requests_written(self.invocations, s.outputs.requests, s.seed)
            if kept is not None:
                write_parquet(kept, folder / "invocations.parquet", "invocations", about, s)
        summary = json.dumps(_finite(self.summary), indent=2, allow_nan=False)
        (folder / "summary.json").write_text(summary + "\n")
        (folder / "scenario.yaml").write_text(yaml.safe_dump(s.to_dict(), sort_keys=False))
        for log in ("instances", "throttles"):
            write_parquet(getattr(self, log), folder / f"{log}.parquet", log, scenario=s)
        # A run's figures are PNG for a screen (the SVG beside them is compare's), or a paper's.
        formats = ("png",) if style.current() == "default" else None
        for stem, method in PLOTS.items():
            style.save(getattr(self, method)(), folder / stem, formats)
        if s.platform.hosts is not None:
            self.host_table().to_csv(folder / "hosts.csv", index=False)
            style.save(self.plot_hosts(), folder / "hosts", formats)
        if self.summary.get("connections"):
            style.save(self.plot_connections(), folder / "connections", formats)


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such values become null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
