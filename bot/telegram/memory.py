"""What the bot remembers between updates: recent answers (for /sources and the Sources button)
and recent update ids (to answer a resent update once). Both bounded, both in process memory."""

from __future__ import annotations

import secrets
from collections import OrderedDict, deque

from newsqa.retrieval.models import Answer

REMEMBERED_ANSWERS = 2000
RECENT_UPDATES = 10_000  # update ids remembered for de-duplication (Telegram resends within minutes)


class AnswerMemory:
    """Recent answers, so /sources and the Sources button can show their full passages."""

    def __init__(self, capacity: int = REMEMBERED_ANSWERS) -> None:
        self.capacity = capacity
        self._answers: OrderedDict[str, Answer] = OrderedDict()
        self._last: dict[int, str] = {}

    def remember(self, chat_id: int, answer: Answer) -> str:
        # Random keys: a button from before a restart must not open some other answer.
        key = secrets.token_urlsafe(9)
        self._answers[key] = answer
        self._last[chat_id] = key
        while len(self._answers) > self.capacity:
            old, _ = self._answers.popitem(last=False)
            self._last = {chat: k for chat, k in self._last.items() if k != old}
        return key

    def get(self, key: str) -> Answer | None:
        return self._answers.get(key)

    def last(self, chat_id: int) -> Answer | None:
        key = self._last.get(chat_id)
        return None if key is None else self._answers.get(key)


class RecentIds:
    """The last `size` ids seen, to tell a resent update from a new one."""

    def __init__(self, size: int) -> None:
        self._order: deque[int] = deque(maxlen=size)
        self._ids: set[int] = set()

    def first_time(self, value: int) -> bool:
        if value in self._ids:
            return False
        if len(self._order) == self._order.maxlen:
            self._ids.discard(self._order[0])
        self._order.append(value)
        self._ids.add(value)
        return True
