"""The answers the API gives, remembered so that a vote (POST /feedback), which names only an
answer's id, is stored with its question, text and citations; and the votes themselves.

Both live in the server's StateStore (bot/state.py), the file conversations use, which every worker
process shares: an answer given by one process may be voted on through another. The store is opened
on first use (`Conversations.store`), and every call here runs in a worker thread, never on the
event loop.
"""

from __future__ import annotations

import logging
import sqlite3

from newsqa.bot.http.conversations import Conversations
from newsqa.bot.state import Vote
from newsqa.retrieval.models import Answer

log = logging.getLogger(__name__)


class Votes:
    def __init__(self, state: Conversations) -> None:
        self._state = state
        self._failed = False

    def remember(self, answer: Answer) -> None:
        """Keeps `answer` for the votes on it. A store that cannot be written costs only those votes
        (they will be answered 404): the question is answered anyway, and the failure is logged."""
        try:
            self._state.store().record_answer(answer)
        except (sqlite3.Error, OSError) as exc:
            # The traceback once; after that a line per answer, so a broken store is seen, not flooded.
            log.error("state store unavailable (%s: %s); answer %s cannot be voted on", type(exc).__name__, exc,
                      answer.answer_id, exc_info=not self._failed)
            self._failed = True

    def vote(self, answer_id: str, vote: Vote, comment: str | None) -> bool | None:
        """Stores a vote given over the API; whether it replaced an earlier one, None for an unknown
        answer. Raises the store's errors (sqlite3.Error, OSError) for the caller to answer."""
        return self._state.store().vote(answer_id, vote, "http", comment)
