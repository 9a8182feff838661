"""What the bot remembers between updates: conversations and the answers behind the Sources
buttons, in the StateStore (bot/state.py: SQLite, survives a restart), and recent update ids (to
answer a resent update once; bounded, in process memory).

`BotMemory` is synchronous (short SQLite calls): the handlers call it in a worker thread. In the
store's answers table, per answer (`tg:a:<key>`, the key in its Sources button's callback data): the
chat, the conversation and the turn it produced, and the answer itself when it has sources; per
message of it (`tg:m:<chat>:<message id>`) and per person's last answer with sources
(`tg:last:<conversation>`): a pointer to that key. An answer with sources is also kept for the votes
on it (the store's `record_answer`; its 👍/👎 buttons carry its answer_id), and the votes go to the
store's feedback table.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections import deque
from typing import Any

from newsqa.bot.state import FeedbackRow, StateStore, Vote
from newsqa.retrieval.conversation import Turn, next_turn
from newsqa.retrieval.models import Answer

RECENT_UPDATES = 10_000  # update ids remembered for de-duplication (Telegram resends within minutes)


def conversation_key(chat_id: int, user_id: int | None, private: bool) -> str:
    """A private chat is one conversation; in a group each person has their own."""
    return f"tg:{chat_id}" if private or user_id is None else f"tg:{chat_id}:{user_id}"


class BotMemory:
    """Conversations and answers of the bot, kept in a StateStore."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def previous(self, own: str, chat_id: int, replied_to: int | None) -> tuple[str, Turn | None]:
        """The conversation a question continues, and its turn to read the question with: the answer
        replied to (its conversation, the turn it produced), else the asker's own conversation."""
        record = self._record_of_message(chat_id, replied_to)
        if record is not None and "conversation" in record:
            return record["conversation"], _turn(record["turn"])
        return own, self.store.last_turn(own)

    def answered(self, own: str, chat_id: int, conversation: str, previous: Turn | None, answer: Answer) -> str:
        """Remembers the answered question in its conversation and the answer behind its button;
        returns the answer's key (for the button and `sent`)."""
        turn = next_turn(answer, previous)
        self.store.remember(conversation, turn)
        key = secrets.token_urlsafe(9)  # random: a guessed or stale button opens nothing else
        record: dict[str, Any] = {"chat": chat_id, "conversation": conversation, "turn": dataclasses.asdict(turn)}
        if answer.found and answer.citations:
            record["answer"] = answer.model_dump(mode="json")
        self.store.put_answer(f"tg:a:{key}", record)
        if "answer" in record:
            self.store.put_answer(f"tg:last:{own}", {"answer": key})
            self.store.record_answer(answer)  # for its 👍/👎 buttons
        return key

    def sent(self, chat_id: int, message_ids: list[int], key: str) -> None:
        """The messages that carried the answer `key`, so a reply to any of them continues it."""
        for message_id in message_ids:
            self.store.put_answer(f"tg:m:{chat_id}:{message_id}", {"answer": key})

    def sources(self, key: str, chat_id: int) -> Answer | None:
        """The answer behind a Sources button of this chat."""
        record = self.store.get_answer(f"tg:a:{key}")
        if record is None or record.get("chat") != chat_id or "answer" not in record:
            return None
        return Answer.model_validate(record["answer"])

    def sources_for(self, own: str, chat_id: int, replied_to: int | None) -> Answer | None:
        """What /sources shows: the answer replied to, else the asker's last answer with sources."""
        pointer = self.store.get_answer(f"tg:m:{chat_id}:{replied_to}") if replied_to is not None else None
        pointer = pointer or self.store.get_answer(f"tg:last:{own}")
        return None if pointer is None else self.sources(pointer["answer"], chat_id)

    def vote(self, answer_id: str, vote: Vote) -> FeedbackRow | None:
        """Stores a 👍/👎 press on an answer, replacing any earlier vote on it; the vote as stored
        (with the answer's language, for the reply), or None when the answer is no longer kept."""
        if self.store.vote(answer_id, vote, "telegram") is None:
            return None
        return self.store.get_vote(answer_id)

    def forget(self, own: str) -> Turn | None:
        """/new: forgets the conversation; returns its last turn (its language is the reply's)."""
        last = self.store.last_turn(own)
        self.store.forget(own)
        return last

    def _record_of_message(self, chat_id: int, message_id: int | None) -> dict[str, Any] | None:
        if message_id is None:
            return None
        pointer = self.store.get_answer(f"tg:m:{chat_id}:{message_id}")
        record = None if pointer is None else self.store.get_answer(f"tg:a:{pointer['answer']}")
        return record if record is not None and record.get("chat") == chat_id else None


def _turn(data: dict[str, Any]) -> Turn:
    return Turn(question=data["question"], topic=data["topic"], articles=tuple(data.get("articles", ())))


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
