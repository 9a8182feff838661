"""The service as the server runs it: background loading, reloads (watcher and admin call), and the
bounded pool of worker threads that CPU work (embedding, search) runs in.

A new build is picked up without downtime: QAService swaps its snapshot in one assignment, so
requests in flight finish on the old index; a bad build is logged and refused while the old one
keeps serving.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from newsqa.bot.http.errors import ApiError
from newsqa.index.format import IndexUnavailable, resolve_build
from newsqa.retrieval.service import QAService

log = logging.getLogger(__name__)

T = TypeVar("T")

LOADING = "The index is still loading; try again in a few seconds."


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")



class Runtime:
    """The service plus what the server knows about it: load errors, limiter, reload bookkeeping."""

    def __init__(self, service: QAService, max_concurrency: int) -> None:
        self.service = service
        self.queries = anyio.CapacityLimiter(max_concurrency)
        # One load at a time (start-up, watcher, admin call); QAService also locks, this keeps
        # threads from piling up behind it.
        self.loads = anyio.CapacityLimiter(1)
        self.load_error: str | None = None
        self.reload_error: str | None = None
        self.loaded_at: str | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(partial(fn, *args), limiter=self.queries)

    def require_ready(self) -> None:
        if not self.service.ready:
            if self.load_error:
                raise ApiError(503, "not_ready", self.load_error)
            raise ApiError(503, "not_ready", LOADING, {"Retry-After": "5"})

    def build_id(self) -> str:
        return str(self.service.manifest.get("build_id"))

    def target(self) -> Path | None:
        try:
            return resolve_build(self.service.config.index_dir, must_exist=False)
        except OSError:
            return None

    async def initial_load(self) -> None:
        if self.service.ready:
            self.loaded_at = now()
            return
        try:
            await anyio.to_thread.run_sync(self.service.warm_up, limiter=self.loads, abandon_on_cancel=True)
        except IndexUnavailable as exc:
            self.load_error = str(exc)
            log.error("index not loaded: %s", exc)
            return
        except Exception as exc:
            self.load_error = f"The index could not be loaded ({type(exc).__name__}); see the server log."
            log.exception("index not loaded")
            return
        self.load_error, self.loaded_at = None, now()
        log.info("serving index build %s", self.build_id())

    async def reload(self, source: str) -> bool:
        """Load what `current` points at now; on failure the previous index keeps serving."""
        try:
            changed = await anyio.to_thread.run_sync(self.service.reload, limiter=self.loads, abandon_on_cancel=True)
        except IndexUnavailable as exc:
            if self.service.ready:
                self.reload_error = str(exc)
                log.error("%s: new index refused, still serving build %s: %s", source, self.build_id(), exc)
            else:
                self.load_error = str(exc)
                log.error("%s: index not loaded: %s", source, exc)
            raise
        self.load_error = self.reload_error = None
        if changed:
            self.loaded_at = now()
            log.info("%s: now serving index build %s", source, self.build_id())
        return changed

    async def watch(self, interval: float) -> None:
        """Poll `current`; reload when it points somewhere new. Never dies on a bad build."""
        seen = self.target()
        while True:
            await anyio.sleep(interval)
            target = self.target()
            if target == seen:
                continue
            seen = target
            try:
                await self.reload("watcher")
            except IndexUnavailable:
                pass  # logged by reload(); the next build gets its own try
            except Exception:
                log.exception("watcher: reload failed")
