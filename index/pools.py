"""A thread pool that its owner starts on first use and shuts down when it closes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class LazyPool:
    """A ThreadPoolExecutor of `workers` threads, made the first time work is submitted, so an
    owner that never needs one starts no threads. Its owner (a searcher, a sharded index) closes
    it when it is replaced; work submitted after that is refused with None, and the caller runs
    it itself: a question still in flight on a build a reload replaced finishes without the pool."""

    def __init__(self, prefix: str, workers: int) -> None:
        self._prefix = prefix
        self.workers = max(1, workers)
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T] | None:
        """`fn(*args)` on a pool thread, or None once the pool is closed."""
        with self._lock:
            if self._closed:
                return None
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=self._prefix)
            return self._pool.submit(fn, *args)

    def close(self) -> None:
        """Let the threads go once the work already submitted is done; refuse new work."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)
