"""Running independent tasks in local worker processes or on a Dask cluster, as they finish.

Sweeps send whole runs this way, sharded runs their shards. A task is a top-level function
(it travels to other processes by name) and its arguments plain data.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..errors import ScenarioError


def execute(
    task: Callable[..., Any],
    jobs: Sequence[tuple[Any, tuple]],
    workers: int | None,
    dask: str | Any | None,
    poll: Callable[[], None] | None = None,
) -> Iterator[tuple[Any, Any]]:
    """Yield (tag, task(*args)) for each (tag, args) in jobs, in the order they finish.
    dask: a scheduler address or a distributed.Client; else `workers` local processes
    (default: the machine's cores; 1 runs them in this process, in order). poll: called in
    this thread every POLL_S while local processes work, and before each result is yielded
    (a sweep reads its runs' progress so)."""
    if not jobs:
        return
    if dask is not None:
        from distributed import Client, as_completed

        own = not isinstance(dask, Client)
        try:
            client = Client(dask, timeout="20s") if own else dask
        except (OSError, TimeoutError, ValueError) as err:
            raise ScenarioError(f"Dask scheduler {dask}: cannot reach it ({err})") from None
        try:
            futures = {client.submit(task, *args, pure=False): tag for tag, args in jobs}
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            if own:
                client.close()
        return
    if in_process(workers, dask):
        for tag, args in jobs:
            yield tag, task(*args)
        return
    # Workers ignore Ctrl-C: the parent stops them at once, after keeping what finished.
    pool = cf.ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1,
                                  initializer=_ignore_sigint)
    futures = {pool.submit(task, *args): tag for tag, args in jobs}
    try:
        pending = set(futures)
        while pending:
            finished, pending = cf.wait(pending, POLL_S if poll else None, cf.FIRST_COMPLETED)
            if poll is not None:
                poll()
            for future in finished:
                yield futures[future], future.result()
    except BaseException:
        _quiet_pool_shutdown()
        for future in futures:
            future.cancel()
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()  # tasks under way are lost; finished ones were kept
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


#: How often `execute` polls while local processes work, s.
POLL_S = 0.2


def in_process(workers: int | None, dask: Any) -> bool:
    """Whether `execute` runs its tasks in this process (one worker, no Dask)."""
    return dask is None and (workers or os.cpu_count() or 1) == 1


def _quiet_pool_shutdown() -> None:
    """The pool's manager thread, finding its workers gone, may try to fail futures already
    cancelled and raise InvalidStateError (a CPython race): not the user's concern."""
    previous = threading.excepthook

    def hook(args):
        if not isinstance(args.exc_value, cf.InvalidStateError):
            previous(args)

    threading.excepthook = hook


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
