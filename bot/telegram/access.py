"""Who may ask (NEWSQA_ALLOWED_CHATS), and how often (NEWSQA_TELEGRAM_RATE_LIMIT a minute per user)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class AllowList:
    """Chat or user ids allowed to use the bot (empty: everyone); others get one refusal per chat."""

    def __init__(self, ids: frozenset[int]) -> None:
        self.ids = ids
        self._refused: set[int] = set()

    def allows(self, chat_id: int | None, user_id: int | None) -> bool:
        return not self.ids or chat_id in self.ids or user_id in self.ids

    def should_refuse(self, chat_id: int) -> bool:
        if chat_id in self._refused:
            return False
        self._refused.add(chat_id)
        return True


class QuestionRateLimit:
    """At most `per_minute` questions per user in any 60 s; one "slow down" per burst beyond it."""

    OK, WARN, DROP = "ok", "warn", "drop"
    WINDOW_S = 60.0

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._asked: dict[int, deque[float]] = {}
        self._warned: set[int] = set()

    def check(self, user_id: int) -> str:
        if self.per_minute <= 0:
            return self.OK
        now = self.clock()
        asked = self._asked.setdefault(user_id, deque())
        while asked and now - asked[0] >= self.WINDOW_S:
            asked.popleft()
        if len(asked) < self.per_minute:
            asked.append(now)
            self._warned.discard(user_id)
            return self.OK
        if user_id in self._warned:
            return self.DROP
        self._warned.add(user_id)
        return self.WARN
