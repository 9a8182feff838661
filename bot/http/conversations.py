"""Conversations over the API: POST /ask with a `conversation_id` is read with that conversation's
last turn and remembered as its next one, in the server's StateStore (bot/state.py), which every
worker process of a server shares.

The store is opened on first use (the first answer: every answer is remembered there for the votes
on it, bot/http/votes.py); the app closes it at shutdown when it opened it. All of it runs in the
question's worker thread (`Conversations.ask`), never on the event loop.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from newsqa.bot.settings import Settings
from newsqa.bot.state import StateStore
from newsqa.retrieval.conversation import next_turn
from newsqa.retrieval.models import Answer
from newsqa.retrieval.service import QAService

log = logging.getLogger(__name__)


def default_store(settings: Settings, service: QAService) -> Callable[[], StateStore]:
    """The store the settings describe; without NEWSQA_STATE_DIR, beside the index the app serves
    (the settings' own index, unless the app was handed a service over another)."""
    if settings.state_dir is None:
        settings = settings.model_copy(update={"state_dir": Path(service.config.index_dir) / "state"})
    return settings.state_store


class Conversations:
    """The store behind conversation ids (and the answers voted on): one given (its owner closes it)
    or one opened on first use."""

    def __init__(self, store: StateStore | None = None, opener: Callable[[], StateStore] | None = None) -> None:
        if store is None and opener is None:
            raise ValueError("Conversations needs a store or a way to open one")
        self._store, self._opener, self._owns = store, opener, store is None
        self._closed = self._failed = False
        self._lock = threading.Lock()

    def store(self) -> StateStore:
        with self._lock:
            if self._closed:
                raise sqlite3.ProgrammingError("the conversation store is closed (the server is stopping)")
            if self._store is None:
                assert self._opener is not None
                self._store = self._opener()
            return self._store

    def ask(self, service: QAService, conversation: str, question: str, top_k: int | None) -> Answer:
        """Answer `question` as the next turn of `conversation`. If the store cannot be read, the
        question is answered alone (and says so: context_used false); that is logged, not refused."""
        try:
            store = self.store()
            previous = store.last_turn(conversation)
        except (sqlite3.Error, OSError) as exc:
            self._unavailable(exc, "question answered without its conversation")
            return service.ask(question, top_k)
        answer = service.ask(question, top_k, context=previous)
        try:
            store.remember(conversation, next_turn(answer, previous))
        except (sqlite3.Error, OSError) as exc:
            self._unavailable(exc, "this turn is not remembered")
        return answer

    def _unavailable(self, exc: Exception, outcome: str) -> None:
        # The traceback once; after that a line per question, so a broken store is seen, not flooded.
        log.error("conversation store unavailable (%s: %s); %s", type(exc).__name__, exc, outcome,
                  exc_info=not self._failed)
        self._failed = True

    def close(self) -> None:
        """Close the store if this object opened it."""
        with self._lock:
            self._closed = True
            if self._owns and self._store is not None:
                self._store.close()
            self._store = None
