"""Thread pools started on first use, so importing a module starts no threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


class LazyPool:
    """One process-wide ThreadPoolExecutor, made the first time `get()` is called, with the
    number of workers `workers()` gives then (a setting may change before first use)."""

    def __init__(self, prefix: str, workers: Callable[[], int]) -> None:
        self._prefix = prefix
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def get(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=max(1, self._workers()), thread_name_prefix=self._prefix)
            return self._pool
