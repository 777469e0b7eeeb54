"""Worker processes for genaug's independent trainings: the demo's stages and evaluate's classifier fits."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.pool import AsyncResult

from genaug.errors import ArgumentError
from genaug.startup import start_worker


class Workers:
    """A pool of spawned processes, each with TensorFlow started quietly on one thread.

    genaug's models are small: a second thread barely speeds one up (a 600-step CNN fit: 1.67 s on one
    thread, 1.75 s on two), so one single-thread process per core does the most work, and a task's result
    does not depend on the core count or on ``processes``. Spawned, not forked: TensorFlow's threads do not
    survive a fork. Tasks run in the order they were given (first in, first out). Leaving the ``with``
    block stops the processes at once (after an error or Ctrl-C, nothing waits for the other tasks).

    Example:
        >>> with Workers(2) as workers:
        ...     report = evaluate("digits", "syn/", "report/", workers=workers)
    """

    def __init__(self, processes: int):
        if processes < 1:
            raise ArgumentError(f"{{}} must be at least 1, got {processes}", "jobs")
        self.processes = processes
        self._pool = multiprocessing.get_context("spawn").Pool(processes, initializer=start_worker)

    def submit(self, function: Callable, *args) -> AsyncResult:
        """Queues ``function(*args)``; ``.get()`` on the result waits for it (and re-raises its error)."""
        return self._pool.apply_async(function, args)

    def imap(self, function: Callable, items: Iterable) -> Iterator:
        """``function`` over ``items``, all queued at once, the results yielded in ``items``' order."""
        return self._pool.imap(function, items)

    def close(self) -> None:
        self._pool.terminate()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def in_order(function: Callable, items: Iterable, workers: Workers | None = None) -> Iterator:
    """``function`` over ``items``, side by side in ``workers`` when given, else here one after another; the
    results in ``items``' order either way."""
    return workers.imap(function, items) if workers else map(function, items)


def worker_count(jobs: int | None) -> int:
    """The processes to use for ``jobs`` (``None``: one per CPU core, at most 4; :class:`Workers` checks the rest)."""
    return min(4, os.cpu_count() or 1) if jobs is None else jobs
