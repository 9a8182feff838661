"""End-to-end tests of the Telegram bot: the real python-telegram-bot Application, long polling (and
the webhook) against a fake Bot API server on 127.0.0.1, answering from the real seed index."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient

from newsqa.bot.settings import Settings
from newsqa.bot.state import FILE as STATE_FILE
from newsqa.bot.state import feedback_rows
from newsqa.bot.http.telegram_hook import webhook_router
from newsqa.bot.telegram.access import AllowList, QuestionRateLimit
from newsqa.bot.telegram.app import build_application, poll
from newsqa.bot.telegram.config import TelegramConfigError, bot_api_urls, bot_token
from newsqa.bot.labels import EN, VI
from newsqa.bot.telegram.retry import RetryPolicy, is_transient
from newsqa.bot.telegram.webhook import SECRET_HEADER, TelegramWebhook
from newsqa.retrieval.answer import NOT_FOUND_EN, NOT_FOUND_VI
from tests.bot.fake_bot_api import BOT_USER, FakeBotApi, parse_telegram_html, utf16_len, wait_until

REPO = Path(__file__).resolve().parents[2]
TOKEN = "4242424242:AAFakeTokenForTheTestsOnly_abc-XYZ0123"
FAST = RetryPolicy(attempts=4, backoff_s=0.05, max_retry_after_s=5)
SCENARIO_TIMEOUT_S = 60
EN_QUESTION = "Who is Ned Price?"  # the stand-in model answers few English questions; this is one
VI_QUESTION = "Nga yêu cầu NATO những gì?"
FOLLOW_UP = "Ông ấy nói gì?"  # names no topic: read with the previous question when there is one
MENTION = f"@{BOT_USER['username']} "
HOSTILE_TITLE = '<b>Tin & "nóng"</i> <script>'

pytestmark = [
    pytest.mark.slow,
    # PTB warns from inside RetryAfter itself about a future type change; nothing for us to do.
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]


# -- harness -----------------------------------------------------------------------------------------


def run(scenario: Callable[[], Awaitable[None]], timeout: float = SCENARIO_TIMEOUT_S) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout))


async def eventually(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's conversations and button answers in a folder of its own (NEWSQA_STATE_DIR)."""
    folder = tmp_path / "state"
    monkeypatch.setenv("NEWSQA_STATE_DIR", str(folder))
    return folder


@pytest.fixture
def fake() -> Any:
    with FakeBotApi(TOKEN, max_long_poll_s=0.25) as api:  # a stopping bot waits out its current long poll
        yield api


def make_settings(fake: FakeBotApi, token: str = TOKEN, **overrides: Any) -> Settings:
    return Settings(TELEGRAM_BOT_TOKEN=token, telegram_base_url=fake.base_url, **overrides)


@contextlib.asynccontextmanager
async def running_bot(service: Any, fake: FakeBotApi, **overrides: Any) -> AsyncIterator[Any]:
    """The bot long-polling the fake until the block ends."""
    settings = make_settings(fake, **overrides)
    application = build_application(service, settings, retry=FAST, timeout_s=5)
    stop = asyncio.Event()
    task = asyncio.create_task(poll(application, settings, stop, poll_timeout=1))
    try:
        await eventually(lambda: fake.calls_to("getUpdates") or task.done())
        if task.done():
            task.result()
        yield application
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


def texts(fake: FakeBotApi, chat_id: int) -> list[str]:
    return [p["text"] for p in fake.sent(chat_id)]


def buttons(params: dict[str, Any]) -> list[dict[str, Any]]:
    markup = params.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


async def answer_to(fake: FakeBotApi, chat_id: int, count: int = 1) -> list[dict[str, Any]]:
    return (await eventually(lambda: len(fake.sent(chat_id)) >= count and fake.sent(chat_id)))[:count]


def assert_clean(fake: FakeBotApi) -> None:
    """Nothing the bot sent was refused by the (strict) fake on its merits."""
    assert [(c.method, c.params.get("text", "")[:80]) for c in fake.rejected()] == []


@pytest.fixture(scope="module")
def hostile_service(tmp_path_factory: pytest.TempPathFactory, embedder: Any, service_factory: Any) -> Any:
    """An index of one article whose title and text are full of HTML and ampersands."""
    from newsqa.index.build import build_index

    seeds = tmp_path_factory.mktemp("hostile-seeds")
    (seeds / "hostile.txt").write_text(
        f"{HOSTILE_TITLE}\n\n"
        "Tổng thống Putin muốn <b>đảm bảo</b> an ninh & ràng buộc pháp lý từ NATO </i>.\n\n"
        "Đoạn hai: a < b > c && d, <a href='x'>liên kết</a> [1] &amp; hết.\n",
        encoding="utf-8",
    )
    root = tmp_path_factory.mktemp("hostile-index")
    build_index(seeds, root, embedder)
    service = service_factory(root)
    service.warm_up()
    return service


# -- answering ---------------------------------------------------------------------------------------


def test_english_question_is_answered_with_cited_passages(seed_service: Any, fake: FakeBotApi) -> None:
    expected = seed_service.ask(EN_QUESTION)
    assert expected.found, "retrieval no longer answers this English question; pick another for this test"
    titles = {a.title for a in seed_service.articles()}

    async def scenario() -> None:
        async with running_bot(seed_service, fake):
            fake.push_message(EN_QUESTION, chat_id=101)
            [reply] = await answer_to(fake, 101)
        assert reply["parse_mode"] == "HTML"
        text = parse_telegram_html(reply["text"])
        assert "[1]" in text and "Sources" in text and "paragraph" in text
        assert any(title.rstrip("…") in text for title in titles)
        # Only what the answer cites, numbered as cited, each with the sentences it quotes.
        shown = text.split("Sources", 1)[1]
        assert sorted(set(re.findall(r"\[(\d+)\]", shown))) == sorted(str(c.n) for c in expected.citations)
        assert all(" ".join(c.quote.split()) in " ".join(shown.split()) for c in expected.citations)
        assert expected.also_retrieved and "Also retrieved" not in text
        sources, up, down = (b["callback_data"] for b in buttons(reply))  # then 👍 and 👎, for this answer
        assert sources.startswith("src:") and up.startswith("vote:up:") and down == up.replace(":up:", ":down:")
        typing = [c for c in fake.calls_to("sendChatAction") if c.params["chat_id"] == 101]
        assert typing and typing[0].params["action"] == "typing"
        assert typing[0].at <= fake.calls_to("sendMessage")[0].at
        assert_clean(fake)

    run(scenario)


def test_vietnamese_question_is_answered_with_cited_passages(seed_service: Any, fake: FakeBotApi) -> None:
    async def scenario() -> None:
        async with running_bot(seed_service, fake):
            fake.push_message(VI_QUESTION, chat_id=102)
            [reply] = await answer_to(fake, 102)
        text = parse_telegram_html(reply["text"])
        assert "NATO chấm dứt mở rộng" in text and "[1]" in text
        assert "Nguồn" in text and "đoạn" in text
        assert buttons(reply)
        assert_clean(fake)

    run(scenario)


def test_nothing_found_gets_a_polite_message_in_the_question_language(seed_service: Any, fake: FakeBotApi) -> None:
    async def scenario() -> None:
        async with running_bot(seed_service, fake):
            fake.push_message("What is the capital of Australia?", chat_id=103)
            fake.push_message("Ai là tác giả của Truyện Kiều?", chat_id=104)
            [en] = await answer_to(fake, 103)
            [vi] = await answer_to(fake, 104)
        assert NOT_FOUND_EN in parse_telegram_html(en["text"]) and not buttons(en)
        assert NOT_FOUND_VI in parse_telegram_html(vi["text"]) and VI.not_found_hint in vi["text"]
        assert_clean(fake)

    run(scenario)


def test_hostile_input_and_article_text_are_escaped(hostile_service: Any, fake: FakeBotApi) -> None:
    question = "Putin muốn <b>đảm bảo</b> an ninh & gì </i> <unclosed"

    async def scenario() -> None:
        async with running_bot(hostile_service, fake):
            fake.push_message(question, chat_id=105)
            [reply] = await answer_to(fake, 105)
            assert buttons(reply), "the hostile article should answer the question"
            fake.push_callback(buttons(reply)[0]["callback_data"], reply["_message"])
            sources = (await answer_to(fake, 105, 2))[1]
            fake.push_message("<b>&amp; </i> & <<>>", chat_id=106)
            [nothing] = await answer_to(fake, 106)
        shown = reply["_message"]["text"]  # what Telegram would display
        assert HOSTILE_TITLE in shown and "<b>đảm bảo</b> an ninh & ràng buộc" in shown
        assert "&lt;script&gt;" in reply["text"]
        full = sources["_message"]["text"]
        assert question in full and "a < b > c && d, <a href='x'>liên kết</a> [1] &amp; hết." in full
        assert parse_telegram_html(nothing["text"])
        assert_clean(fake)

    run(scenario)


def test_long_reply_is_split_into_valid_parts(
    tmp_path: Path, embedder: Any, service_factory: Any, fake: FakeBotApi
) -> None:
    """The seed articles plus 60 with long headlines, so /articles runs past 4,096 characters."""
    import shutil

    from newsqa.index.build import build_index
    from tests.conftest import SEEDS

    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    for i in range(60):
        title = f"Nga và NATO, bài số {i}: các cam kết an ninh, việc mở rộng về phía đông và phản hồi của Mỹ"
        (seeds / f"long_{i}.txt").write_text(f"{title}\n\nNga yêu cầu NATO cam kết an ninh, bài {i}.\n", encoding="utf-8")
    root = tmp_path / "index"
    build_index(seeds, root, embedder)
    service = service_factory(root)
    service.warm_up()

    async def scenario() -> None:
        async with running_bot(service, fake):
            fake.push_message("/articles", chat_id=107)
            await eventually(lambda: len(fake.sent(107)) >= 2)
            await asyncio.sleep(0.3)  # any further part would arrive right behind
        parts = fake.sent(107)
        assert len(parts) >= 2
        for part in parts:
            assert utf16_len(part["text"]) <= 4096
            parse_telegram_html(part["text"])
        assert sum(utf16_len(p["text"]) for p in parts) > 4096
        assert_clean(fake)

    run(scenario)


# -- commands and the Sources button ---------------------------------------------------------------------


def test_start_help_and_articles_list_what_the_bot_knows(seed_service: Any, fake: FakeBotApi) -> None:
    titles = [a.title for a in seed_service.articles()]

    async def scenario() -> None:
        async with running_bot(seed_service, fake):
            fake.push_message("/start", chat_id=110)
            [start] = await answer_to(fake, 110)
            fake.push_message("/help", chat_id=110)
            fake.push_message("/articles", chat_id=111)
            help_, = (await answer_to(fake, 110, 2))[1:]
            [articles] = await answer_to(fake, 111)
        for message in (start, help_):
            text = parse_telegram_html(message["text"])
            assert "Xin chào" in text and "Hello" in text and "@newsqa_test_bot" in text
            assert all(title in text for title in titles)
        listing = parse_telegram_html(articles["text"])
        assert all(title in listing for title in titles) and "(2)" in listing
        assert_clean(fake)

    run(scenario)


def test_sources_command_and_button_show_full_passages(seed_service: Any, fake: FakeBotApi) -> None:
    async def scenario() -> None:
        async with running_bot(seed_service, fake):
            fake.push_message("/sources", chat_id=112)
            [none_yet] = await answer_to(fake, 112)
            fake.push_message(VI_QUESTION, chat_id=112)
            answer = (await answer_to(fake, 112, 2))[1]
            fake.push_message("/sources", chat_id=112)
            by_command = (await answer_to(fake, 112, 3))[2]
            query_id = fake.push_callback(buttons(answer)[0]["callback_data"], answer["_message"])
            by_button = (await answer_to(fake, 112, 4))[3]
            stale_id = fake.push_callback("src:forgotten", answer["_message"])
            await eventually(lambda: len(fake.calls_to("answerCallbackQuery")) >= 2)
        assert parse_telegram_html(none_yet["text"]) == f"{VI.no_answer_yet}\n{EN.no_answer_yet}"
        passage = seed_service.ask(VI_QUESTION).citations[0].text
        for message in (by_command, by_button):
            text = parse_telegram_html(message["text"])
            assert "Đoạn trích đầy đủ" in text and " ".join(passage.split()) in " ".join(text.split())
        assert by_button["reply_parameters"]["message_id"] == answer["_message"]["message_id"]
        answered = {c.params["callback_query_id"]: c.params for c in fake.calls_to("answerCallbackQuery")}
        assert query_id in answered and "text" not in answered[query_id]
        assert EN.expired in answered[stale_id]["text"]
        assert_clean(fake)

    run(scenario)


def test_a_vote_button_stores_the_vote_thanks_and_ticks_it_and_the_other_replaces_it(
    seed_service: Any, fake: FakeBotApi, state_dir: Path
) -> None:
    def votes() -> list[Any]:
        return list(feedback_rows(state_dir / STATE_FILE))

    async def scenario() -> None:
        async with running_bot(seed_service, fake):
            fake.push_message(VI_QUESTION, chat_id=191)
            [answer] = await answer_to(fake, 191)
            sources, up, down = buttons(answer)
            assert (up["text"], down["text"]) == ("👍", "👎")
            assert all(len(b["callback_data"].encode()) <= 64 for b in (sources, up, down))
            message = answer["_message"]
            liked = fake.push_callback(up["callback_data"], message)
            await eventually(lambda: [v.vote for v in votes()] == ["up"])
            await eventually(lambda: fake.calls_to("editMessageReplyMarkup"))
            ticked = fake.edited_markup(191, message["message_id"])
            disliked = fake.push_callback(down["callback_data"], {**message, "reply_markup": ticked})
            await eventually(lambda: [v.vote for v in votes()] == ["down"])
            await eventually(lambda: len(fake.calls_to("editMessageReplyMarkup")) == 2)
            stale = fake.push_callback("vote:up:" + "0" * 32, message)
            fake.push_message(EN_QUESTION, chat_id=192)
            [english] = await answer_to(fake, 192)
            thanked = fake.push_callback(buttons(english)[1]["callback_data"], english["_message"])
            await eventually(lambda: len(fake.calls_to("answerCallbackQuery")) == 4)
        answered = {c.params["callback_query_id"]: c.params for c in fake.calls_to("answerCallbackQuery")}
        assert answered[liked]["text"] == answered[disliked]["text"] == VI.thanks  # the answer's language
        assert answered[thanked]["text"] == EN.thanks
        assert EN.expired in answered[stale]["text"]  # an answer no longer kept
        assert [b["text"] for b in ticked["inline_keyboard"][-1]] == ["👍 ✓", "👎"]
        now = fake.edited_markup(191, message["message_id"])
        assert [b["text"] for b in now["inline_keyboard"][-1]] == ["👍", "👎 ✓"]
        assert now["inline_keyboard"][0] == answer["reply_markup"]["inline_keyboard"][0]  # Sources stays
        expected = seed_service.ask(VI_QUESTION)
        vi_vote = next(v for v in votes() if v.question == VI_QUESTION)
        assert (vi_vote.vote, vi_vote.channel, vi_vote.language) == ("down", "telegram", "vi")
        assert vi_vote.answer_id == up["callback_data"].rsplit(":", 1)[1]
        assert vi_vote.answer == expected.answer and vi_vote.build_id == expected.build_id
        assert [c["passage_id"] for c in vi_vote.citations] == [c.passage_id for c in expected.citations]
        assert [v.vote for v in votes()] == ["down", "up"]  # one row per answer: the Vietnamese, then the English
        assert_clean(fake)

    run(scenario)


def test_in_groups_only_mentions_and_replies_are_questions(seed_service: Any, fake: FakeBotApi) -> None:
    group = -100500

    async def scenario() -> None:
        async with running_bot(seed_service, fake):
            fake.push_message(VI_QUESTION, chat_id=group, user_id=7, chat_type="supergroup")
            asked = fake.push_message(f"@{BOT_USER['username']} {VI_QUESTION}", chat_id=group, user_id=7, chat_type="supergroup")
            [first] = await answer_to(fake, group)
            followup = fake.push_message(
                "Moskva cáo buộc NATO điều gì?", chat_id=group, user_id=8, chat_type="supergroup",
                reply_to=first["_message"],
            )
            second = (await answer_to(fake, group, 2))[1]
            fake.push_message(f"/help@{BOT_USER['username']}", chat_id=group, user_id=8, chat_type="supergroup")
            await answer_to(fake, group, 3)
        assert first["reply_parameters"]["message_id"] == asked["message_id"]
        assert second["reply_parameters"]["message_id"] == followup["message_id"]
        assert "Hello" in parse_telegram_html(fake.sent(group)[2]["text"])
        assert len(fake.sent(group)) == 3  # the message without a mention was not answered
        assert_clean(fake)

    run(scenario)


# -- conversations ----------------------------------------------------------------------------------------


def read_with(message: dict[str, Any]) -> str | None:
    """The earlier question an answer says it was read with (its first line), or None."""
    first = parse_telegram_html(message["text"]).splitlines()[0]
    for labels in (VI, EN):
        if first.startswith(f"{labels.read_with}: «") and first.endswith("»"):
            assert message["text"].startswith(f"<i>{labels.read_with}: «"), "the context line is in italics"
            return first[len(labels.read_with) + 3 : -1]
    return None


async def ask(fake: FakeBotApi, text: str, chat_id: int, **kwargs: Any) -> dict[str, Any]:
    """Sends a message and waits for the bot's next message in that chat."""
    before = len(fake.sent(chat_id))
    fake.push_message(text, chat_id=chat_id, **kwargs)
    return (await answer_to(fake, chat_id, before + 1))[before]


def test_a_follow_up_in_a_private_chat_is_read_with_the_previous_question(seed_service: Any, fake: FakeBotApi) -> None:
    async def scenario() -> None:
        async with running_bot(seed_service, fake):
            first = await ask(fake, VI_QUESTION, 180)
            follow_up = await ask(fake, FOLLOW_UP, 180)
            fresh = await ask(fake, FOLLOW_UP, 181)  # the same question in a chat that asked nothing before
        assert read_with(first) is None and read_with(fresh) is None
        assert read_with(follow_up) == VI_QUESTION
        assert buttons(follow_up) and "[1]" in follow_up["text"]
        assert_clean(fake)

    run(scenario)


def test_in_a_group_each_person_has_a_conversation_and_a_reply_continues_the_answer_s(
    seed_service: Any, fake: FakeBotApi
) -> None:
    group = -100600
    other = "Moskva cáo buộc NATO điều gì?"

    async def scenario() -> None:
        def asks(text: str, user: int, **kwargs: Any) -> Awaitable[dict[str, Any]]:
            return ask(fake, text, group, user_id=user, chat_type="supergroup", **kwargs)

        async with running_bot(seed_service, fake):
            first_7 = await asks(MENTION + VI_QUESTION, 7)
            first_8 = await asks(MENTION + FOLLOW_UP, 8)  # 8 has asked nothing yet
            second_7 = await asks(MENTION + FOLLOW_UP, 7)
            second_8 = await asks(MENTION + other, 8)
            # 9 replies to 7's first answer: 7's conversation goes on from that answer
            reply_9 = await asks("Thủ tướng Anh muốn gì?", 9, reply_to=first_7["_message"])
            third_7 = await asks(MENTION + other, 7)
        assert read_with(first_7) is None and read_with(first_8) is None
        assert read_with(second_7) == VI_QUESTION
        assert read_with(second_8) == FOLLOW_UP
        assert read_with(reply_9) == VI_QUESTION
        assert read_with(third_7) == "Thủ tướng Anh muốn gì?"
        assert_clean(fake)

    run(scenario)


def test_a_reply_to_an_earlier_answer_continues_from_that_answer(seed_service: Any, fake: FakeBotApi) -> None:
    async def scenario() -> None:
        async with running_bot(seed_service, fake):
            first = await ask(fake, VI_QUESTION, 182)
            second = await ask(fake, "Thủ tướng Anh muốn gì?", 182)
            reply = await ask(fake, FOLLOW_UP, 182, reply_to=first["_message"])
            after = await ask(fake, "Moskva cáo buộc NATO điều gì?", 182)
        assert read_with(second) == VI_QUESTION
        assert read_with(reply) == VI_QUESTION  # not the conversation's last question
        assert read_with(after) == FOLLOW_UP  # the conversation went on from the reply
        assert_clean(fake)

    run(scenario)


def test_new_forgets_the_conversation(seed_service: Any, fake: FakeBotApi) -> None:
    async def scenario() -> None:
        async with running_bot(seed_service, fake):
            await ask(fake, VI_QUESTION, 183)
            done = await ask(fake, "/new", 183)
            after = await ask(fake, FOLLOW_UP, 183)
            english = await ask(fake, EN_QUESTION, 184)
            done_en = await ask(fake, "/new", 184)
            help_ = await ask(fake, "/help", 184)
        assert parse_telegram_html(done["text"]) == VI.new_conversation
        assert parse_telegram_html(done_en["text"]) == EN.new_conversation and buttons(english)
        assert read_with(after) is None
        assert "/new" in parse_telegram_html(help_["text"])
        [commands] = fake.calls_to("setMyCommands")
        assert "new" in [c["command"] for c in commands.params["commands"]]
        assert_clean(fake)

    run(scenario)


def test_conversations_and_sources_buttons_survive_a_restart(seed_service: Any, fake: FakeBotApi) -> None:
    async def scenario() -> None:
        async with running_bot(seed_service, fake):
            first = await ask(fake, VI_QUESTION, 185)
        # A new Application (and state store) over the same state folder, as after a restart.
        async with running_bot(seed_service, fake):
            follow_up = await ask(fake, FOLLOW_UP, 185)
            query_id = fake.push_callback(buttons(first)[0]["callback_data"], first["_message"])
            sources = (await answer_to(fake, 185, 3))[2]
            reply = await ask(fake, "Thủ tướng Anh muốn gì?", 185, reply_to=first["_message"])
            await ask(fake, "/sources", 185)
        assert read_with(follow_up) == VI_QUESTION
        passage = seed_service.ask(VI_QUESTION).citations[0].text
        text = parse_telegram_html(sources["text"])
        assert "Đoạn trích đầy đủ" in text and " ".join(passage.split()) in " ".join(text.split())
        answered = {c.params["callback_query_id"]: c.params for c in fake.calls_to("answerCallbackQuery")}
        assert "text" not in answered[query_id]  # not "no longer stored"
        assert read_with(reply) == VI_QUESTION
        assert len([m for m in fake.sent(185) if read_with(m) is None]) == 3  # first, sources, /sources
        assert_clean(fake)

    run(scenario)


# -- who may ask, and how often ---------------------------------------------------------------------------


def test_allow_list_refuses_other_chats_once(seed_service: Any, fake: FakeBotApi) -> None:
    async def scenario() -> None:
        async with running_bot(seed_service, fake, allowed_chats="120, 777"):
            fake.push_message(VI_QUESTION, chat_id=300)
            [refusal] = await answer_to(fake, 300)
            fake.push_message("/help", chat_id=300)
            fake.push_message(VI_QUESTION, chat_id=300)
            fake.push_message(VI_QUESTION, chat_id=120)  # allowed chat
            fake.push_message(VI_QUESTION, chat_id=-400, user_id=777, chat_type="private")  # allowed user
            await answer_to(fake, 120)
            await answer_to(fake, -400)
        assert parse_telegram_html(refusal["text"]) == VI.refused
        assert len(fake.sent(300)) == 1
        assert not [c for c in fake.calls_to("sendChatAction") if c.params["chat_id"] == 300]
        assert buttons(fake.sent(120)[0]) and buttons(fake.sent(-400)[0])

    run(scenario)


def test_rate_limit_says_slow_down_once(seed_service: Any, fake: FakeBotApi) -> None:
    async def scenario() -> None:
        async with running_bot(seed_service, fake, telegram_rate_limit=2):
            for _ in range(5):
                fake.push_message(VI_QUESTION, chat_id=130)
            fake.push_message(VI_QUESTION, chat_id=131)  # someone else is not limited
            await answer_to(fake, 131)
            await answer_to(fake, 130, 3)
        replies = texts(fake, 130)
        assert len(replies) == 3
        assert replies.count(VI.slow_down) == 1
        assert sum("Nguồn" in r for r in replies) == 2

    run(scenario)


# -- faults -------------------------------------------------------------------------------------------------


def test_flood_control_429_is_waited_out_and_retried(seed_service: Any, fake: FakeBotApi) -> None:
    async def scenario() -> None:
        async with running_bot(seed_service, fake):
            fake.fail_next("429", 1, retry_after=1)
            fake.push_message(VI_QUESTION, chat_id=140)
            await answer_to(fake, 140)
        calls = fake.calls_to("sendMessage")
        assert [c.status for c in calls] == [429, 200]
        assert calls[1].at - calls[0].at >= 0.9

    run(scenario)


def test_server_errors_dropped_connections_and_garbage_are_retried(seed_service: Any, fake: FakeBotApi) -> None:
    async def scenario() -> None:
        async with running_bot(seed_service, fake):
            fake.fail_next("500", 1, methods=["getUpdates"])
            fake.fail_next("500", 1)
            fake.fail_next("drop", 1)
            fake.fail_next("malformed", 1)
            fake.push_message(VI_QUESTION, chat_id=141)
            [reply] = await answer_to(fake, 141)
            fake.push_message("/articles", chat_id=141)
            await answer_to(fake, 141, 2)
        faults = [c.fault for c in fake.calls_to("sendMessage")]
        assert faults[:4] == ["500", "drop", "malformed", None]
        assert "Nguồn" in reply["text"]

    run(scenario)


def test_rejected_html_is_resent_as_plain_text_and_the_bot_carries_on(seed_service: Any, fake: FakeBotApi) -> None:
    async def scenario() -> None:
        async with running_bot(seed_service, fake):
            fake.fail_next("bad_html", 1)
            fake.push_message(VI_QUESTION, chat_id=142)
            [plain] = await answer_to(fake, 142)
            fake.push_message(VI_QUESTION, chat_id=142)
            second = (await answer_to(fake, 142, 2))[1]
        assert "parse_mode" not in plain and "<b>" not in plain["text"] and "Nguồn" in plain["text"]
        assert buttons(plain)
        assert second["parse_mode"] == "HTML"

    run(scenario)


def test_token_never_appears_in_logs_during_a_run_with_faults(
    seed_service: Any, fake: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario() -> None:
        async with running_bot(seed_service, fake):
            caplog.set_level(logging.DEBUG, logger="httpx")  # the bot quiets it; we want every URL
            caplog.set_level(logging.DEBUG, logger="httpcore")
            fake.fail_next("429", 1, retry_after=1)
            fake.fail_next("500", 1, methods=None)
            fake.fail_next("drop", 1)
            fake.fail_next("malformed", 1)
            fake.fail_next("500", 1, methods=["getUpdates"])
            fake.push_message(VI_QUESTION, chat_id=150)
            await answer_to(fake, 150)

    run(scenario)
    assert [r for r in caplog.records if r.name == "httpx"], "httpx should have logged request URLs"
    assert "[REDACTED]" in caplog.text
    assert TOKEN not in caplog.text
    assert not [r.name for r in caplog.records if TOKEN in r.getMessage() or TOKEN in (r.exc_text or "")]


class FlakyService:
    """The seed service, except that its first `ask` fails the way a bug would."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self.failures = 1

    def ask(self, question: str, top_k: int | None = None, context: Any = None) -> Any:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("boom")
        return self.service.ask(question, top_k, context=context)

    def articles(self) -> list[Any]:
        return self.service.articles()


def test_an_unexpected_error_is_reported_and_the_next_question_answered(
    seed_service: Any, fake: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with running_bot(FlakyService(seed_service), fake):
            fake.push_message(VI_QUESTION, chat_id=143)
            [sorry] = await answer_to(fake, 143)
            fake.push_message(VI_QUESTION, chat_id=143)
            second = (await answer_to(fake, 143, 2))[1]
        assert "Sorry, something went wrong" in sorry["text"]
        assert "Nguồn" in second["text"]

    run(scenario)
    assert "unexpected error while handling an update" in caplog.text and "RuntimeError: boom" in caplog.text


# -- start-up -------------------------------------------------------------------------------------------------


def test_rejected_or_unreachable_token_is_one_sentence_without_the_token(
    seed_service: Any, fake: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    other = "1111111111:BBThisTokenIsWrongForTheFakeServer000"

    started: list[str] = []

    async def start(settings: Settings) -> str:
        application = build_application(seed_service, settings, retry=FAST, timeout_s=2)
        with pytest.raises(TelegramConfigError) as raised:
            await poll(application, settings, asyncio.Event(), poll_timeout=1, on_started=started.append)
        return str(raised.value)

    async def scenario() -> None:
        rejected = await start(make_settings(fake, token=other))
        assert rejected.startswith("Telegram rejected TELEGRAM_BOT_TOKEN")
        unreachable = make_settings(fake, token=other)
        unreachable.telegram_base_url = "http://127.0.0.1:9/bot"  # nothing listens on the discard port
        message = await start(unreachable)
        assert message.startswith("Could not reach the Telegram Bot API at http://127.0.0.1:9")
        for text in (rejected, message):
            assert other not in text and text.count(". ") == 0

    run(scenario)
    assert other not in caplog.text
    assert not started, "a bot that never reached Telegram must not say it started"


@pytest.mark.parametrize(
    ("token", "expected"),
    [(None, "TELEGRAM_BOT_TOKEN is not set"), ("12345:short", "does not look like a bot token")],
)
def test_cli_refuses_a_missing_or_malformed_token_in_one_sentence(token: str | None, expected: str) -> None:
    from newsqa.bot.cli import cli

    env = {"TELEGRAM_BOT_TOKEN": token, "NEWSQA_TELEGRAM_BOT_TOKEN": None}
    result = CliRunner().invoke(cli, ["bot"], env=env)
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in result.output
    if token:
        assert token not in result.output


def test_newsqa_bot_process_answers_and_stops_on_sigterm(
    seed_index: Path, model_path: str, fake: FakeBotApi, tmp_path: Path
) -> None:
    """The real `newsqa bot` entry point: model, index, long polling, signals, exit status."""
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "NEWSQA_TELEGRAM_BASE_URL": fake.root_url,
        "NEWSQA_INDEX_DIR": str(seed_index),
        "NEWSQA_EMBEDDING_MODEL": model_path,
        "HF_HUB_OFFLINE": "1",
    }
    log_file = tmp_path / "bot.log"
    with log_file.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "newsqa.bot.cli", "-vv", "bot"], cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            wait_until(lambda: fake.calls_to("getUpdates") or process.poll() is not None, timeout=120)
            assert process.poll() is None, log_file.read_text()
            fake.push_message(VI_QUESTION, chat_id=170)
            [reply] = wait_until(lambda: fake.sent(170), timeout=30)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    assert "Nguồn" in reply["text"]
    assert fake.calls_to("deleteWebhook"), "polling must drop any webhook first"
    logged = log_file.read_text()
    # "answering" only once Telegram (here the fake) has answered getMe and polling runs
    assert f"Telegram bot @{BOT_USER['username']} is answering" in logged
    assert logged.index("Connecting to Telegram") < logged.index("getMe") < logged.index("is answering")
    assert TOKEN not in logged and "[REDACTED]" in logged  # -vv logs the API URL


# -- webhook -----------------------------------------------------------------------------------------------------

SECRET = "webhook-Secret_0123456789"
PATH = "/telegram/webhook"


def webhook_settings(fake: FakeBotApi, **overrides: Any) -> Settings:
    return make_settings(
        fake,
        telegram_webhook_path=PATH,
        telegram_webhook_secret=SECRET,
        telegram_webhook_url="https://bot.example.test/telegram/webhook",
        **overrides,
    )


def check_webhook(client: TestClient, fake: FakeBotApi) -> None:
    assert fake.webhook == {"url": "https://bot.example.test/telegram/webhook", "secret_token": SECRET}
    update = {"update_id": 9001, "message": fake.message(VI_QUESTION, chat_id=160)}
    refused = client.post(PATH, json=update)
    assert refused.status_code == 403
    assert refused.json() == {"error": "Wrong or missing secret token.", "code": "forbidden", "detail": None}
    assert client.post(PATH, json=update, headers={SECRET_HEADER: "wrong"}).status_code == 403
    assert client.post(PATH, json=update, headers={SECRET_HEADER: SECRET + "x"}).status_code == 403
    assert not fake.sent(160)
    bad = client.post(PATH, content=b"{not json", headers={SECRET_HEADER: SECRET})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_request"
    assert client.post(PATH, json=update, headers={SECRET_HEADER: SECRET}).status_code == 200
    [reply] = wait_until(lambda: fake.sent(160), timeout=20)
    assert "Nguồn" in parse_telegram_html(reply["text"]) and buttons(reply)
    # Telegram resends an update it thinks was lost: it is answered once.
    assert client.post(PATH, json=update, headers={SECRET_HEADER: SECRET}).status_code == 200
    time.sleep(1.0)
    assert len(fake.sent(160)) == 1
    assert not fake.calls_to("getUpdates")  # webhook mode never polls


def test_webhook_router_checks_the_secret_and_answers(seed_service: Any, fake: FakeBotApi) -> None:
    hook = TelegramWebhook.from_settings(seed_service, webhook_settings(fake))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await hook.start()
        try:
            yield
        finally:
            await hook.stop()

    app = FastAPI(lifespan=lifespan)
    app.include_router(webhook_router(hook))
    with TestClient(app) as client:
        check_webhook(client, fake)
    assert not hook.application.running


def test_webhook_mounted_by_the_http_app(seed_service: Any, fake: FakeBotApi) -> None:
    http = pytest.importorskip("newsqa.bot.http")
    app = http.create_app(webhook_settings(fake, reload_interval=0), seed_service)
    with TestClient(app) as client:
        check_webhook(client, fake)


def test_webhook_mode_needs_a_secret_and_a_path(seed_service: Any, fake: FakeBotApi) -> None:
    with pytest.raises(TelegramConfigError, match="NEWSQA_TELEGRAM_WEBHOOK_SECRET must be set"):
        TelegramWebhook.from_settings(seed_service, make_settings(fake, telegram_webhook_path=PATH))
    with pytest.raises(TelegramConfigError, match="letters, digits"):
        TelegramWebhook.from_settings(
            seed_service, make_settings(fake, telegram_webhook_path=PATH, telegram_webhook_secret="has space")
        )
    with pytest.raises(TelegramConfigError, match="starting with '/'"):
        TelegramWebhook.from_settings(
            seed_service, make_settings(fake, telegram_webhook_path="hook", telegram_webhook_secret=SECRET)
        )


# -- small pieces ----------------------------------------------------------------------------------------------------


def test_the_context_line_is_short_escaped_and_in_the_answer_s_language() -> None:
    from newsqa.bot.telegram.format import CONTEXT_QUOTE_CHARS, format_answer
    from newsqa.retrieval.models import Answer

    earlier = "<b>Nga</b> & NATO " + "rất " * 40 + "gì?"
    followed = Answer(
        question="Ông ấy nói gì?", answer=NOT_FOUND_VI, found=False, citations=[], took_ms=1.0, mode="hybrid",
        context_used=True, context_question=earlier, language="vi",
    )
    first, _, rest = format_answer(followed).partition("\n")
    assert first.startswith(f"<i>{VI.read_with}: «&lt;b&gt;Nga&lt;/b&gt; &amp; NATO rất") and first.endswith("…»</i>")
    assert len(parse_telegram_html(first)) <= len(VI.read_with) + CONTEXT_QUOTE_CHARS + 5
    assert rest.startswith(NOT_FOUND_VI)
    alone = followed.model_copy(update={"question": "Why?", "answer": NOT_FOUND_EN, "context_used": False, "language": "en"})
    assert not format_answer(alone).startswith("<i>")
    english = alone.model_copy(update={"context_used": True})
    assert format_answer(english).startswith(f"<i>{EN.read_with}: «")


def test_rate_limit_window_slides() -> None:
    now = [0.0]
    limit = QuestionRateLimit(2, clock=lambda: now[0])
    assert [limit.check(1) for _ in range(4)] == ["ok", "ok", "warn", "drop"]
    assert limit.check(2) == "ok"
    now[0] = 61.0
    assert [limit.check(1) for _ in range(4)] == ["ok", "ok", "warn", "drop"]
    assert QuestionRateLimit(0).check(1) == "ok"


def test_allow_list_by_chat_or_user_and_one_refusal_per_chat() -> None:
    allowed = AllowList(frozenset({5, -100}))
    assert allowed.allows(5, 1) and allowed.allows(9, 5) and allowed.allows(-100, None)
    assert not allowed.allows(9, 9)
    assert allowed.should_refuse(9) and not allowed.should_refuse(9)
    assert AllowList(frozenset()).allows(1, 1)
    assert Settings(NEWSQA_ALLOWED_CHATS="").allowed_chat_ids() == frozenset()


def test_allowed_chats_setting_parses_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSQA_ALLOWED_CHATS", "12, -100345,7")
    assert Settings().allowed_chat_ids() == frozenset({12, -100345, 7})
    monkeypatch.setenv("NEWSQA_ALLOWED_CHATS", "12,abc")
    with pytest.raises(ValueError):
        Settings()


def test_token_format_is_checked() -> None:
    assert bot_token(Settings(TELEGRAM_BOT_TOKEN=f" {TOKEN} ")) == TOKEN
    for bad in ("", "abc", "123:short", "abc:" + "x" * 35):
        with pytest.raises(TelegramConfigError):
            bot_token(Settings(TELEGRAM_BOT_TOKEN=bad))


def test_bot_api_urls_accept_a_root_or_a_bot_url() -> None:
    assert bot_api_urls("http://localhost:8081") == ("http://localhost:8081/bot", "http://localhost:8081/file/bot")
    assert bot_api_urls("http://localhost:8081/bot/") == ("http://localhost:8081/bot", "http://localhost:8081/file/bot")
    with pytest.raises(TelegramConfigError):
        bot_api_urls("localhost:8081")


def test_transient_faults_are_told_apart() -> None:
    from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut

    assert is_transient(RetryAfter(3)) and is_transient(TimedOut()) and is_transient(NetworkError("x"))
    assert is_transient(TelegramError("Invalid server response"))
    assert not is_transient(BadRequest("Bad Request: can't parse entities"))
    assert not is_transient(Forbidden("bot was blocked by the user"))
