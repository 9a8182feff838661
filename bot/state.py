"""What the front ends remember between messages, in one small SQLite file that survives a restart.

Conversations (the last turns of each, for follow-up questions) and the answers behind Telegram's
Sources buttons. One file, shared by every process of a server (`NEWSQA_HTTP_WORKERS`), so a
conversation's next question may land on any of them; WAL lets them read while one writes. Bounded:
a cap on conversations and on remembered answers, least recently used dropped first, and turns older
than the time to live are ignored and pruned.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsqa.retrieval.conversation import Turn

FILE = "state.sqlite"


@dataclass(frozen=True)
class StateOptions:
    """How much is remembered, and for how long."""

    conversations: int = 10_000  # conversations kept; the least recently used go first
    turns: int = 5  # turns kept of each conversation
    ttl_s: float = 3600.0  # a conversation idle this long starts afresh
    answers: int = 2_000  # answers kept behind Telegram's Sources buttons


_SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    conversation TEXT NOT NULL,
    at REAL NOT NULL,
    turn TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_by_conversation ON turns (conversation, at);
CREATE TABLE IF NOT EXISTS conversations (
    conversation TEXT PRIMARY KEY,
    last REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_by_last ON conversations (last);
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    at REAL NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_by_at ON answers (at);
"""


class StateStore:
    def __init__(
        self, path: Path, options: StateOptions | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path)
        self.options = options or StateOptions()
        self._clock = clock
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection for the process; the lock serialises its users (front ends call it from
        # their worker threads). timeout: another process's write waits instead of failing.
        self._db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- conversations ---------------------------------------------------------------------------

    def turns(self, conversation: str) -> list[Turn]:
        """The conversation's remembered turns, oldest first; none once it has been idle too long."""
        since = self._clock() - self.options.ttl_s
        with self._lock:
            rows = self._db.execute(
                "SELECT turn FROM turns WHERE conversation = ? AND at >= ? ORDER BY at, rowid",
                (conversation, since),
            ).fetchall()
        return [_turn(json.loads(text)) for (text,) in rows]

    def last_turn(self, conversation: str) -> Turn | None:
        turns = self.turns(conversation)
        return turns[-1] if turns else None

    def remember(self, conversation: str, turn: Turn) -> None:
        now = self._clock()
        text = json.dumps({"question": turn.question, "topic": turn.topic, "articles": list(turn.articles)})
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT INTO turns (conversation, at, turn) VALUES (?, ?, ?)", (conversation, now, text))
            self._db.execute(
                "INSERT INTO conversations (conversation, last) VALUES (?, ?) "
                "ON CONFLICT (conversation) DO UPDATE SET last = excluded.last",
                (conversation, now),
            )
            self._db.execute(
                "DELETE FROM turns WHERE conversation = ? AND rowid NOT IN "
                "(SELECT rowid FROM turns WHERE conversation = ? ORDER BY at DESC, rowid DESC LIMIT ?)",
                (conversation, conversation, self.options.turns),
            )
            self._prune_conversations(now)

    def forget(self, conversation: str) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM turns WHERE conversation = ?", (conversation,))
            self._db.execute("DELETE FROM conversations WHERE conversation = ?", (conversation,))

    def conversation_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0])

    def _prune_conversations(self, now: float) -> None:
        stale = now - self.options.ttl_s
        over = self._db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0] - self.options.conversations
        doomed = self._db.execute(
            "SELECT conversation FROM conversations WHERE last < ? "
            "UNION SELECT conversation FROM (SELECT conversation FROM conversations ORDER BY last LIMIT ?)",
            (stale, max(0, over)),
        ).fetchall()
        for (name,) in doomed:
            self._db.execute("DELETE FROM turns WHERE conversation = ?", (name,))
            self._db.execute("DELETE FROM conversations WHERE conversation = ?", (name,))

    # -- answers behind buttons ------------------------------------------------------------------

    def put_answer(self, key: str, value: dict[str, Any]) -> None:
        now = self._clock()
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO answers (key, at, value) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET at = excluded.at, value = excluded.value",
                (key, now, json.dumps(value, ensure_ascii=False)),
            )
            self._db.execute(
                "DELETE FROM answers WHERE key IN (SELECT key FROM answers ORDER BY at DESC LIMIT -1 OFFSET ?)",
                (self.options.answers,),
            )

    def get_answer(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM answers WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])


def _turn(data: dict[str, Any]) -> Turn:
    return Turn(question=data["question"], topic=data["topic"], articles=tuple(data.get("articles", ())))
