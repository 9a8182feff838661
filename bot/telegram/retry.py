"""Retrying Bot API calls on transient faults: flood control, timeouts, 5xx, dropped connections."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import BaseRateLimiter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # tries per Bot API call, the first included
    backoff_s: float = 1.0  # wait after the first network error; doubles each time
    max_retry_after_s: float = 60.0  # a longer flood-control wait fails the call instead


def retry_after_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB warns that retry_after will become a timedelta
        value = exc.retry_after
    return value.total_seconds() if hasattr(value, "total_seconds") else float(value)  # type: ignore[union-attr]


def is_transient(exc: TelegramError) -> bool:
    """Worth trying again: flood control, timeouts, 5xx, dropped connections, garbled responses."""
    if isinstance(exc, (BadRequest, Forbidden, InvalidToken, Conflict, ChatMigrated)):
        return False
    if isinstance(exc, (RetryAfter, NetworkError)):
        return True
    return "Invalid server response" in exc.message


class RetryingRateLimiter(BaseRateLimiter[None]):
    """Retries every Bot API call (PTB's hook for this is the rate limiter) on transient faults.

    getUpdates is not routed here: PTB's updater has its own retry loop for it.
    """

    BEST_EFFORT = frozenset({"sendChatAction"})  # stale by the time a retry would land

    def __init__(self, policy: RetryPolicy = RetryPolicy()) -> None:
        self.policy = policy

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        attempt = 1
        while True:
            try:
                return await callback(*args, **kwargs)
            except TelegramError as exc:
                delay = self._delay(exc, endpoint, attempt)
                if delay is None:
                    raise
                log.warning(
                    "Bot API %s failed (%s); retry %d of %d in %.1f s",
                    endpoint, exc, attempt, self.policy.attempts - 1, delay,
                )
                await asyncio.sleep(delay)
                attempt += 1

    def _delay(self, exc: TelegramError, endpoint: str, attempt: int) -> float | None:
        if attempt >= self.policy.attempts or endpoint in self.BEST_EFFORT or not is_transient(exc):
            return None
        if isinstance(exc, RetryAfter):
            wait = retry_after_seconds(exc)
            return wait if wait <= self.policy.max_retry_after_s else None
        return self.policy.backoff_s * 2 ** (attempt - 1)
