"""The front ends' memory (bot/state.py): conversations, button answers and votes in SQLite, bounded."""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from newsqa.bot.state import COMMENT_CHARS, StateOptions, StateStore, feedback_rows
from newsqa.retrieval.conversation import Turn
from newsqa.retrieval.models import Answer, Citation


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def turn(n: int) -> Turn:
    return Turn(question=f"q{n}", topic=f"topic {n}", articles=(f"a{n}", "b"))


def test_turns_come_back_in_order_and_only_the_last_few_are_kept(tmp_path):
    store = StateStore(tmp_path / "s.sqlite", StateOptions(turns=3))
    for n in range(5):
        store.remember("c1", turn(n))
    assert store.turns("c1") == [turn(2), turn(3), turn(4)]
    assert store.last_turn("c1") == turn(4) and store.last_turn("other") is None


def test_an_idle_conversation_starts_afresh(tmp_path):
    clock = Clock()
    store = StateStore(tmp_path / "s.sqlite", StateOptions(ttl_s=1800), clock=clock)
    store.remember("c1", turn(1))
    clock.now += 1799
    assert store.last_turn("c1") == turn(1)
    clock.now += 2
    assert store.last_turn("c1") is None


def test_the_least_recently_used_conversations_go_first_past_the_cap(tmp_path):
    clock = Clock()
    store = StateStore(tmp_path / "s.sqlite", StateOptions(conversations=3), clock=clock)
    for name in ("a", "b", "c"):
        clock.now += 1
        store.remember(name, turn(1))
    clock.now += 1
    store.remember("a", turn(2))  # "a" used again: "b" is now the oldest
    clock.now += 1
    store.remember("d", turn(1))
    assert store.conversation_count() == 3
    assert store.last_turn("b") is None
    assert store.last_turn("a") == turn(2) and store.last_turn("c") == turn(1) and store.last_turn("d") == turn(1)


def test_forget_starts_a_conversation_again(tmp_path):
    store = StateStore(tmp_path / "s.sqlite")
    store.remember("c1", turn(1))
    store.forget("c1")
    assert store.last_turn("c1") is None and store.conversation_count() == 0


def test_what_is_remembered_survives_a_restart_and_is_shared_by_processes(tmp_path):
    path = tmp_path / "state" / "s.sqlite"
    store = StateStore(path)
    store.remember("c1", turn(1))
    store.put_answer("42:7", {"answer": "…", "citations": [1, 2]})
    store.close()
    # Another process (a second server worker, or the bot after a restart) sees it.
    code = (
        "import sys; from newsqa.bot.state import StateStore; from newsqa.retrieval.conversation import Turn\n"
        f"s = StateStore({str(path)!r}); t = s.last_turn('c1'); a = s.get_answer('42:7')\n"
        "assert t == Turn('q1', 'topic 1', ('a1', 'b')), t; assert a == {'answer': '…', 'citations': [1, 2]}, a\n"
        "s.remember('c1', Turn('q2', 'topic 2', ()))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert StateStore(path).last_turn("c1") == Turn("q2", "topic 2", ())


def _open_and_write(path: Path, start: Any, failures: Any) -> None:
    start.wait()
    try:
        store = StateStore(path)
        store.put_answer("k", {"n": 1})
        store.close()
    except sqlite3.Error as exc:
        failures.put(repr(exc))


def test_processes_opening_a_new_file_at_once_all_open_it(tmp_path):
    # A server's worker processes open the file together on their first answers; turning a new file
    # to WAL is refused ("database is locked") to all but one unless they wait their turn.
    fork = multiprocessing.get_context("fork")  # the store's module is loaded already: starts fast
    failures = fork.Queue()
    for round_ in range(40):
        start = fork.Barrier(3)
        path = tmp_path / str(round_) / "state.sqlite"
        processes = [fork.Process(target=_open_and_write, args=(path, start, failures)) for _ in range(3)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(60)
        assert [p.exitcode for p in processes] == [0, 0, 0]
    assert failures.empty(), failures.get()


def test_answers_behind_buttons_are_capped_newest_kept(tmp_path):
    clock = Clock()
    store = StateStore(tmp_path / "s.sqlite", StateOptions(answers=2), clock=clock)
    for n in range(4):
        clock.now += 1
        store.put_answer(f"k{n}", {"n": n})
    assert [store.get_answer(f"k{n}") for n in range(4)] == [None, None, {"n": 2}, {"n": 3}]


# -- votes on answers ------------------------------------------------------------------------------


def answer(question: str = "Nga yêu cầu NATO những gì?") -> Answer:
    citation = Citation(
        n=1, article_id="000_a04ea2cbfe5e1bb5", title="Putin và NATO", passage_id="000_a04ea2cbfe5e1bb5:3",
        paragraph=2, start=120, end=260, text="Nga yêu cầu NATO chấm dứt mở rộng về phía đông.", score=0.91,
        quote="Nga yêu cầu NATO chấm dứt mở rộng về phía đông.", highlights=[(0, 48)],
    )
    return Answer(
        question=question, answer="Nga yêu cầu NATO chấm dứt mở rộng về phía đông [1].", found=True,
        citations=[citation], took_ms=12.0, mode="hybrid", language="vi", answer_id=uuid.uuid4().hex,
        build_id="20240101T000000Z-abc",
    )


def test_a_vote_is_stored_with_its_answer_and_a_second_vote_replaces_the_first(tmp_path):
    clock = Clock()
    store = StateStore(tmp_path / "s.sqlite", clock=clock)
    given = answer()
    store.record_answer(given)
    assert store.vote(given.answer_id, "up", "http") is False  # the first vote on it
    clock.now += 60
    assert store.vote(given.answer_id, "down", "telegram", "sai năm") is True
    [row] = list(store.feedback_rows())
    assert (row.answer_id, row.vote, row.channel, row.comment, row.at) == (
        given.answer_id, "down", "telegram", "sai năm", clock.now
    )
    assert (row.question, row.answer, row.build_id, row.language) == (
        given.question, given.answer, given.build_id, "vi"
    )
    assert row.citations == [c.model_dump(mode="json") for c in given.citations]
    clock.now += 60
    assert store.vote(given.answer_id, "up", "http") is True  # the comment went with the vote it belonged to
    assert store.get_vote(given.answer_id).comment is None and store.get_vote(given.answer_id).vote == "up"


def test_a_vote_on_an_unknown_answer_is_not_stored(tmp_path):
    store = StateStore(tmp_path / "s.sqlite")
    assert store.vote(uuid.uuid4().hex, "up", "http") is None
    assert list(store.feedback_rows()) == []
    with pytest.raises(ValueError):
        store.vote(uuid.uuid4().hex, "meh", "http")  # type: ignore[arg-type]


def test_votes_outlive_the_answers_cap_and_can_still_be_changed(tmp_path):
    clock = Clock()
    store = StateStore(tmp_path / "s.sqlite", StateOptions(answers=2), clock=clock)
    voted = answer("first")
    store.record_answer(voted)
    store.vote(voted.answer_id, "up", "http")
    forgotten = answer("second")
    store.record_answer(forgotten)
    for n in range(3):  # newer answers push both out of the capped answers table
        clock.now += 1
        store.record_answer(answer(f"later {n}"))
    assert store.vote(forgotten.answer_id, "up", "http") is None  # never voted on: nothing to vote on now
    assert store.vote(voted.answer_id, "down", "http") is True
    assert [(r.question, r.vote) for r in store.feedback_rows()] == [("first", "down")]


def test_a_long_comment_is_cut_and_an_answer_without_an_id_is_not_kept(tmp_path):
    store = StateStore(tmp_path / "s.sqlite")
    given = answer()
    store.record_answer(given)
    store.vote(given.answer_id, "down", "http", "x" * (COMMENT_CHARS + 500))
    assert len(store.get_vote(given.answer_id).comment) == COMMENT_CHARS
    store.record_answer(given.model_copy(update={"answer_id": ""}))
    assert store.get_answer("answer:") is None


def test_export_rows_are_the_votes_in_the_order_last_given_with_utc_times(tmp_path):
    clock = Clock()
    store = StateStore(tmp_path / "state" / "s.sqlite", clock=clock)
    first, second = answer("một"), answer("hai")
    for given in (first, second):
        store.record_answer(given)
    store.vote(first.answer_id, "up", "http")
    clock.now += 1
    store.vote(second.answer_id, "down", "telegram")
    clock.now += 1
    store.vote(first.answer_id, "down", "http", "thiếu nguồn")  # now the latest
    rows = [r.as_json() for r in feedback_rows(store.path)]
    assert [(r["question"], r["vote"]) for r in rows] == [("hai", "down"), ("một", "down")]
    assert rows[1] == {
        "answer_id": first.answer_id, "vote": "down", "at": "1970-01-12T13:46:42+00:00", "question": "một",
        "answer": first.answer, "citations": [c.model_dump(mode="json") for c in first.citations],
        "build_id": first.build_id, "language": "vi", "channel": "http", "comment": "thiếu nguồn",
    }


def test_export_of_a_missing_or_older_state_file_is_empty_and_creates_nothing(tmp_path):
    missing = tmp_path / "nowhere" / "state.sqlite"
    assert list(feedback_rows(missing)) == [] and not missing.parent.exists()
    older = tmp_path / "older.sqlite"  # a state file from before votes were kept
    sqlite3.connect(older).executescript("CREATE TABLE answers (key TEXT PRIMARY KEY, at REAL, value TEXT);")
    assert list(feedback_rows(older)) == []
