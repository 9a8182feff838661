"""What the front ends remember between messages, in one small SQLite file that survives a restart.

Conversations (the last turns of each, for follow-up questions), the answers given (behind
Telegram's Sources buttons, and for the votes on them), and the votes (👍/👎) people gave. One file,
shared by every process of a server (`NEWSQA_HTTP_WORKERS`), so a conversation's next question, or
the vote on an answer, may land on any of them; WAL lets them read while one writes. Bounded: a cap
on conversations and on remembered answers, least recently used dropped first, and turns older than
the time to live are ignored and pruned. Votes are kept without a cap: they are the product's
evidence of how well it answers, and one vote per answer bounds them by the answers given.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from newsqa.retrieval.conversation import Turn
from newsqa.retrieval.models import Answer

FILE = "state.sqlite"
VOTES = ("up", "down")
CHANNELS = ("http", "telegram")
COMMENT_CHARS = 1000  # a vote's comment is cut to this: one vote cannot grow a file that is never pruned
ANSWER_KEY = "answer:"  # key prefix, in the answers table, of an answer kept for the votes on it

Vote = Literal["up", "down"]
Channel = Literal["http", "telegram"]


@dataclass(frozen=True)
class StateOptions:
    """How much is remembered, and for how long."""

    conversations: int = 10_000  # conversations kept; the least recently used go first
    turns: int = 5  # turns kept of each conversation
    ttl_s: float = 3600.0  # a conversation idle this long starts afresh
    # Rows of the answers table: every answer the API and Telegram give (so a vote, which names only
    # the answer's id, can be stored with its question and citations), and Telegram's pointers to its
    # buttons' answers (about three rows per Telegram answer). A reader may vote minutes after the
    # answer, while other people's answers arrive: 10,000 rows hold nearly three hours of answers
    # at one a second, and at a few kB each (the cited passages) still only tens of MB.
    answers: int = 10_000


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
CREATE TABLE IF NOT EXISTS feedback (
    answer_id TEXT PRIMARY KEY,
    vote TEXT NOT NULL CHECK (vote IN ('up', 'down')),
    at REAL NOT NULL,
    channel TEXT NOT NULL,
    comment TEXT,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    citations TEXT NOT NULL,
    build_id TEXT NOT NULL,
    language TEXT NOT NULL
);
"""
_FEEDBACK_COLUMNS = "answer_id, vote, at, channel, comment, question, answer, citations, build_id, language"


@dataclass(frozen=True)
class FeedbackRow:
    """One vote, with what it was a vote on."""

    answer_id: str
    vote: str
    at: float  # seconds since the epoch, when the vote was given (the latest, if it replaced others)
    channel: str
    comment: str | None
    question: str
    answer: str
    citations: list[dict[str, Any]]
    build_id: str
    language: str

    def as_json(self) -> dict[str, Any]:
        """What `newsqa feedback export` writes for the vote: `at` as ISO-8601 UTC."""
        return {
            "answer_id": self.answer_id,
            "vote": self.vote,
            "at": dt.datetime.fromtimestamp(self.at, dt.UTC).isoformat(timespec="seconds"),
            "question": self.question,
            "answer": self.answer,
            "citations": self.citations,
            "build_id": self.build_id,
            "language": self.language,
            "channel": self.channel,
            "comment": self.comment,
        }


def feedback_rows(path: Path) -> Iterator[FeedbackRow]:
    """Every vote in the state file at `path`, in the order they were last given; nothing when there
    is no such file or it has no votes (it predates them). Reads on a connection of its own, in one
    snapshot (WAL), so a server writing meanwhile neither waits for the reader nor splits what it
    reads; never creates the file."""
    if not Path(path).is_file():
        return
    db = sqlite3.connect(Path(path), timeout=10.0)
    try:
        with contextlib.closing(db.execute("SELECT name FROM sqlite_master WHERE name = 'feedback'")) as found:
            if found.fetchone() is None:
                return
        with contextlib.closing(db.execute(f"SELECT {_FEEDBACK_COLUMNS} FROM feedback ORDER BY at, rowid")) as rows:
            for row in rows:
                yield _feedback_row(row)
    finally:
        db.close()


def _feedback_row(row: tuple[Any, ...]) -> FeedbackRow:
    # Columns in _FEEDBACK_COLUMNS' order; the citations column holds their JSON.
    answer_id, vote, at, channel, comment, question, answer, citations, build_id, language = row
    return FeedbackRow(answer_id, vote, at, channel, comment, question, answer, json.loads(citations), build_id, language)


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
        self._use_wal(deadline=time.monotonic() + 10.0)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _use_wal(self, deadline: float) -> None:
        # Turning a new file to WAL needs it alone for a moment, and SQLite answers "locked" at once
        # rather than waiting: a server's workers opening it together on their first answers would
        # fail here. Once the file is in WAL this is a no-op.
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

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

    # -- votes on answers ------------------------------------------------------------------------

    def record_answer(self, answer: Answer) -> None:
        """Remembers an answer a person was given, so a vote naming its id finds what it voted on."""
        if not answer.answer_id:  # made outside the service (no id): nothing can vote on it
            return
        self.put_answer(
            ANSWER_KEY + answer.answer_id,
            {
                "question": answer.question,
                "answer": answer.answer,
                "citations": [c.model_dump(mode="json") for c in answer.citations],
                "build_id": answer.build_id,
                "language": answer.language,
            },
        )

    def vote(self, answer_id: str, vote: Vote, channel: Channel, comment: str | None = None) -> bool | None:
        """Stores a vote on a remembered answer, replacing any earlier vote on it (and its comment).
        Returns whether one was replaced; None when the answer is unknown (never given, or forgotten
        past the cap, and never voted on)."""
        if vote not in VOTES or channel not in CHANNELS:
            raise ValueError(f"a vote is one of {VOTES} from one of {CHANNELS}, not {vote!r} from {channel!r}")
        comment = (comment or "").strip()[:COMMENT_CHARS] or None
        now = self._clock()
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            # An answer voted on before may have left the capped answers table since: its vote row
            # holds what the new vote needs.
            replaced = self._db.execute(
                "UPDATE feedback SET vote = ?, at = ?, channel = ?, comment = ? WHERE answer_id = ?",
                (vote, now, channel, comment, answer_id),
            ).rowcount
            if replaced:
                return True
            row = self._db.execute("SELECT value FROM answers WHERE key = ?", (ANSWER_KEY + answer_id,)).fetchone()
            if row is None:
                return None
            given = json.loads(row[0])
            self._db.execute(
                f"INSERT INTO feedback ({_FEEDBACK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    answer_id, vote, now, channel, comment, given["question"], given["answer"],
                    json.dumps(given["citations"], ensure_ascii=False), given["build_id"], given["language"],
                ),
            )
            return False

    def get_vote(self, answer_id: str) -> FeedbackRow | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_FEEDBACK_COLUMNS} FROM feedback WHERE answer_id = ?", (answer_id,)).fetchone()
        return None if row is None else _feedback_row(row)

    def feedback_rows(self) -> Iterator[FeedbackRow]:
        return feedback_rows(self.path)


def _turn(data: dict[str, Any]) -> Turn:
    return Turn(question=data["question"], topic=data["topic"], articles=tuple(data.get("articles", ())))
