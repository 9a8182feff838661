"""The front ends' memory (bot/state.py): conversations and button answers in SQLite, bounded."""

from __future__ import annotations

import subprocess
import sys

from newsqa.bot.state import StateOptions, StateStore
from newsqa.retrieval.conversation import Turn


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


def test_answers_behind_buttons_are_capped_newest_kept(tmp_path):
    clock = Clock()
    store = StateStore(tmp_path / "s.sqlite", StateOptions(answers=2), clock=clock)
    for n in range(4):
        clock.now += 1
        store.put_answer(f"k{n}", {"n": n})
    assert [store.get_answer(f"k{n}") for n in range(4)] == [None, None, {"n": 2}, {"n": 3}]
