"""A streamed run's consumer of the engine's blocks of rows: the summary accumulates, the
request log goes to Parquet (all of it, a sample, or none), nothing grows with the request
count but the rows of the few functions whose summary needs them together
(rowstats.functions_kept) and the throttled attempts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..engine.eventlog import EventLog
from ..scenario.schema import Scenario
from .logs import LogWriter, Sampler, about_requests, requests_frame, throttles_frame
from .rowstats import RowStats, frame_facts, functions_kept

#: Rows the engine holds before it hands them over as a block.
BLOCK_ROWS = 1 << 16


class RequestSink:
    """Takes the engine's blocks (engine.sink): `rows(block, instances)`,
    `throttles(block)`; then `finish(log)` gives what the report needs. `folder`: where
    invocations.parquet is written as the run goes (None: the requests kept, if any, stay in
    memory)."""

    block_rows = BLOCK_ROWS

    def __init__(self, scenario: Scenario, folder: Path | None = None):
        self.scenario = scenario
        self.names = [f.name for f in scenario.functions]
        self.stats = RowStats(scenario)
        self.kept_functions = functions_kept(scenario)
        self._kept: list[dict[str, np.ndarray]] = []
        self._throttles: list[dict[str, np.ndarray]] = []
        self.requests = scenario.outputs.requests
        self.total = 0
        self.sampler = (
            Sampler(self.names, scenario.seed, self.requests)
            if not isinstance(self.requests, str)
            else None
        )
        self.writer = (
            LogWriter(folder / "invocations.parquet", "invocations", scenario)
            if folder is not None and self.requests != "none"
            else None
        )
        self._in_memory: list[pd.DataFrame] = []
        self._waiting: list[dict[str, np.ndarray]] = []  # rows not yet in request-id turn

    def rows(self, block: dict[str, np.ndarray], instances, before: int = 2**31) -> None:
        """A block of final rows (in request-id order within it); rows of requests numbered
        from `before` on may still come in later blocks."""
        self.total += len(block["function"])
        kept = self.kept_functions[block["function"]]
        rest = block
        if kept.any():
            self._kept.append({c: v[kept] for c, v in block.items()})
            rest = {c: v[~kept] for c, v in block.items()}
        self.stats.add(rest, instances.facts)
        if self.requests == "none":
            return
        self._waiting.append(block)
        self._release(before)

    def _release(self, before: int) -> None:
        """Log the waiting rows of requests numbered below `before`, in request-id order
        (the request log's order: later rows wait for their turn)."""
        ready = [{c: v[b["request_id"] < before] for c, v in b.items()} for b in self._waiting]
        self._waiting = [{c: v[b["request_id"] >= before] for c, v in b.items()}
                         for b in self._waiting]  # fmt: skip
        self._waiting = [b for b in self._waiting if len(b["request_id"])]
        ready = _concatenated([b for b in ready if len(b["request_id"])], None)
        if ready is None:
            return
        if len(ready["request_id"]) > 1 and (np.diff(ready["request_id"]) < 0).any():
            order = np.argsort(ready["request_id"], kind="stable")
            ready = {c: v[order] for c, v in ready.items()}
        frame = requests_frame(ready, self.names, self.scenario.warmup_s)
        if self.sampler is not None:
            frame = frame[self.sampler.keep(ready["function"])].reset_index(drop=True)
        if self.writer is not None:
            self.writer.write(frame)
        else:
            self._in_memory.append(frame)

    def abort(self) -> None:
        """The run failed: let go of the file being written."""
        if self.writer is not None:
            self.writer.abort()

    def throttles(self, block: dict[str, np.ndarray]) -> None:
        self.stats.add_throttles(block)
        if len(block["function"]):
            self._throttles.append(block)

    def finish(self, log: EventLog):
        """(requests kept in memory, instances, throttles, rows kept for the summary, about
        the request log) once the run is over; the rows kept are added to the statistics."""
        from .logs import instances_frame

        if self.requests != "none":
            self._release(2**31)
        instances = instances_frame(log)
        if self._throttles:
            log.throttles = {c: np.concatenate([b[c] for b in self._throttles])
                             for c in log.throttles}  # fmt: skip
        throttles = throttles_frame(log)
        kept = _concatenated(self._kept, log.invocations)
        if len(kept["request_id"]) > 1 and (np.diff(kept["request_id"]) < 0).any():
            order = np.argsort(kept["request_id"], kind="stable")
            kept = {c: v[order] for c, v in kept.items()}
        self.stats.add(kept, frame_facts(instances))
        kept = requests_frame(kept, self.names, self.scenario.warmup_s)
        empty = requests_frame(log.invocations, self.names, self.scenario.warmup_s)
        written = sum(len(f) for f in self._in_memory)
        if self.writer is not None:
            written = self.writer.rows
        about = about_requests(self.requests, self.total, written)
        if self.writer is not None:
            self.writer.close(about, empty=empty)
        requests = pd.concat(self._in_memory, ignore_index=True) if self._in_memory else empty
        self._in_memory = []
        return requests, instances, throttles, kept, about

    def shard(self, log: EventLog) -> RowStats:
        """A shard's end (engine.sharding): its statistics, the rows it kept added, go back
        with its log, whose invocations become those rows (the merge renumbers them)."""
        self.finish(log)
        log.invocations = _concatenated(self._kept, log.invocations)
        self._kept = []
        return self.stats


def _concatenated(blocks: list[dict[str, np.ndarray]], empty: dict[str, np.ndarray]):
    if not blocks:
        return empty
    return {c: np.concatenate([b[c] for b in blocks]) for c in blocks[0]}


def shard_sink(scenario: Scenario) -> RequestSink:
    """The sink of one shard of a streamed sharded run (engine.sharding's `sink`): it writes
    no request log."""
    return RequestSink(scenario.updated({"outputs": {"requests": "none"}}))
