"""The web chat page in a real browser: Debian's Chromium, driven by Playwright, against real uvicorn."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from newsqa.bot.http import create_app
from newsqa.bot.http.page import render_page
from newsqa.bot.settings import Settings
from newsqa.bot.state import StateStore
from tests.conftest import REPO

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = REPO / "docs" / "web-chat.png"  # the README's picture, at 1280 px
PHONE_SCREENSHOT = REPO / "docs" / "web-chat-phone.png"  # the same at 390 px
API_KEY = "page-key-0123456789"
TIMEOUT_MS = 30_000


class LiveServer:
    """uvicorn serving `app` on a free 127.0.0.1 port from a background thread."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not (self.server.started and self.thread.is_alive()):
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


def app_for(service: Any, state: StateStore, api_key: str | None = None) -> Any:
    settings = Settings(api_key=api_key, reload_interval=0, telegram_webhook_path=None, http_max_concurrency=2)
    return create_app(settings, service, state=state)


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Iterator[StateStore]:
    """The pages' conversations, kept outside the shared seed index."""
    store = StateStore(tmp_path_factory.mktemp("state") / "state.sqlite")
    yield store
    store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            "The browser tests need Chromium at /usr/bin/chromium: run `apt-get update && apt-get install -y chromium`."
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("The browser tests need the playwright package: run `.venv/bin/pip install -e '.[test]'`.")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def url(seed_service, state) -> Iterator[str]:
    with LiveServer(app_for(seed_service, state)) as base:
        yield base


@contextmanager
def opened(browser: Any, url: str, width: int = 900, height: int = 1000, locale: str = "vi-VN", **options: Any) -> Iterator[Any]:
    """A fresh context's page at `url`, ready; on the way out, no script error or CSP violation."""
    context = browser.new_context(viewport={"width": width, "height": height}, locale=locale, **options)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    # A CSP violation or a failed script shows up as a console error.
    page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
    try:
        page.goto(url)
        wait_until_ready(page)
        yield page
    finally:
        context.close()
    assert not [p for p in problems if "Failed to load resource" not in p], problems


@pytest.fixture
def page(browser, url) -> Iterator[Any]:
    """A Vietnamese browser: the page speaks Vietnamese until an answer says otherwise."""
    with opened(browser, url) as page:
        yield page


@pytest.fixture
def english_page(browser, url) -> Iterator[Any]:
    with opened(browser, url, locale="en-US") as page:
        yield page


def wait_until_ready(page: Any) -> None:
    # A locator wait, not wait_for_function: string predicates are eval'd, which the page's CSP forbids.
    page.locator("#status.ready").wait_for()


def ask(page: Any, question: str) -> Any:
    """Type a question, press Enter, return the locator of the finished reply."""
    before = page.locator("#log .msg.answer").count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    reply = page.locator("#log .msg.answer").nth(before)
    reply.locator(":scope:not(.pending)").wait_for()
    return reply


def requests_to(page: Any, path: str) -> list[Any]:
    """The requests the page makes to `path` from now on (a list that fills as they go)."""
    seen: list[Any] = []
    page.on("request", lambda request: seen.append(request) if request.url.endswith(path) else None)
    return seen


def settled_box(page: Any, locator: Any) -> dict[str, float]:
    """`locator`'s box once the page has stopped (smooth-)scrolling."""
    deadline, last = time.monotonic() + 5, None
    while True:
        box = locator.bounding_box()
        if box == last or time.monotonic() > deadline:
            return box
        last = box
        page.wait_for_timeout(150)


def fake_answer(**fields: Any) -> dict[str, Any]:
    """An answer as POST /ask gives it (the contract of issue 31), for routes that stand in for the server."""
    passage = {"passage_id": "p", "paragraph": 1, "start": 0, "end": 10, "score": 0.5}
    answer = {
        "question": "q", "answer": "An answer [1].", "found": True, "citations": [
            {**passage, "n": 1, "article_id": "a", "title": "T", "text": "Some text.", "quote": "Some text.", "highlights": [[0, 10]]}
        ],
        "also_retrieved": [], "language": "en", "answer_id": "0" * 32, "build_id": "b1", "took_ms": 3.0,
        "mode": "hybrid", "notice": None, "context_used": False, "context_question": None, "conversation_id": "c-1",
    }
    return {**answer, **fields}


def fulfil_json(page: Any, path: str, body: Any, status: int = 200) -> None:
    page.route(path, lambda route: route.fulfill(status=status, content_type="application/json", body=json.dumps(body)))


def cited_numbers(reply: Any) -> list[int]:
    return [int(n.strip("[]")) for n in reply.locator(".sources .source .n").all_inner_texts()]


# -- answers and their sources -------------------------------------------------------------------


def test_a_question_gets_an_answer_with_the_sources_it_cites(page):
    assert page.locator("meta[name=viewport]").count() == 1
    reply = ask(page, "Nga yêu cầu NATO những gì?")

    text = reply.locator(".answer-text")
    assert "NATO chấm dứt mở rộng về phía đông" in text.inner_text()
    assert text.get_attribute("lang") == "vi"
    # Only what the answer cites, numbered as cited: 1..n, each mark in the text listed and no other.
    numbers = cited_numbers(reply)
    assert numbers == list(range(1, len(numbers) + 1)) and numbers
    assert set(numbers) == {int(n) for n in re.findall(r"\[(\d+)\]", text.inner_text())}
    # Grouped by article: each title once, its paragraphs under it.
    titles = reply.locator(".sources .article-title").all_inner_texts()
    assert len(titles) == len(set(titles)) >= 1
    first = reply.locator(".sources .source").first
    assert "đoạn" in first.locator(".source-head").inner_text()
    quote = first.locator(".quote")
    assert quote.is_visible() and "Nga yêu cầu NATO chấm dứt mở rộng" in quote.inner_text()
    assert quote.locator("mark").count() >= 1  # the cited sentence stands out from its context
    assert not first.locator(".passage").is_visible()  # the whole passage is a detail
    # Whatever else the search found waits, folded, below the sources.
    also = reply.locator("details.also")
    if also.count():
        assert also.get_attribute("open") is None
        assert also.locator("summary").inner_text().startswith("Cũng tìm thấy")
        assert reply.locator(".sources details.also").count() == 0

    # The [1] mark takes the reader to source 1.
    reply.locator(".answer-text .mark", has_text="[1]").click()
    assert page.evaluate("document.activeElement.id") == first.get_attribute("id")


def test_sources_are_grouped_by_article_and_the_rest_set_apart(english_page):
    page = english_page

    def passage(article: str, paragraph: int, text: str, **more: Any) -> dict[str, Any]:
        return {"article_id": article, "title": f"Title {article}", "passage_id": f"{article}{paragraph}",
                "paragraph": paragraph, "start": 100 * paragraph, "end": 100 * paragraph + len(text),
                "text": text, "score": 1 / paragraph, **more}

    cited = [
        passage("A", 2, "Before. Russia demanded X. After.", n=1, quote="…Before. Russia demanded X. After.", highlights=[[8, 27]]),
        passage("B", 5, "Britain proposed Y.", n=2, quote="Britain proposed Y.", highlights=[[0, 19]]),
        passage("A", 7, "Then Z happened.", n=3, quote="Then Z happened.", highlights=[[0, 16]]),
    ]
    others = [passage("C", 1, "Unrelated C."), passage("A", 9, "Unrelated A.")]
    fulfil_json(page, "**/ask", fake_answer(answer="Russia demanded X [1], Britain Y [2], then Z [3].",
                                            citations=cited, also_retrieved=others))
    reply = ask(page, "What happened?")

    articles = reply.locator(".sources .article")
    assert articles.count() == 2
    assert articles.nth(0).locator(".article-title").inner_text() == "Title A"
    assert articles.nth(0).locator(".n").all_inner_texts() == ["[1]", "[3]"]
    assert articles.nth(0).locator(".where").all_inner_texts() == ["paragraph 2", "paragraph 7"]
    assert articles.nth(1).locator(".article-title").inner_text() == "Title B"
    assert articles.nth(1).locator(".n").all_inner_texts() == ["[2]"]
    assert reply.locator(".sources-label").inner_text() == "Sources"
    assert reply.locator(".sources .quote mark").first.inner_text() == "Russia demanded X."
    assert "Unrelated" not in reply.locator(".sources").inner_text()

    also = reply.locator("details.also")
    assert also.get_attribute("open") is None and also.locator("summary").inner_text() == "Also retrieved (2)"
    assert not also.locator(".retrieved").first.is_visible()
    also.locator("summary").click()
    assert also.locator(".article-title").all_inner_texts() == ["Title C", "Title A"]
    assert also.locator(".retrieved .passage").all_inner_texts() == ["Unrelated C.", "Unrelated A."]
    assert also.locator(".n").count() == 0  # not cited: no number

    reply.locator(".answer-text .mark", has_text="[3]").click()
    assert page.evaluate("document.activeElement.id") == articles.nth(0).locator(".source").nth(1).get_attribute("id")


def test_a_source_from_the_web_links_to_the_story_and_names_the_sites_that_ran_it(english_page):
    page = english_page
    meta = {"source": "tin-b.vn", "url": "https://tin-b.vn/putin?id=1&x=<y>", "published": "2024-03-02T08:40:00+07:00"}
    copies = [
        {"article_id": "tin-a--putin", "source": "tin-a.vn", "url": "https://tin-a.vn/putin", "published": None},
        {"article_id": "tin-c--putin", "source": None, "url": "https://www.tin-c.vn/putin", "published": None},
        {"article_id": "evil", "source": "<b>evil</b>", "url": "javascript:window.__owned=1", "published": None},
    ]
    cited = fake_answer()["citations"][0] | meta | {"also_published": copies}
    # A plain file (no URL) and a story whose URL is not on the web: titles, not links.
    plain = {"article_id": "f", "title": "From a file", "passage_id": "f1", "paragraph": 1, "start": 0, "end": 5,
             "text": "File.", "score": 0.2}
    hostile = plain | {"article_id": "h", "title": "Hostile", "url": "javascript:window.__owned=2", "source": "h.vn"}
    fulfil_json(page, "**/ask", fake_answer(citations=[cited], also_retrieved=[plain, hostile]))
    reply = ask(page, "What did Putin ask?")

    article = reply.locator(".sources .article").first
    link = article.locator(".article-title a")
    assert link.inner_text() == "T"
    assert link.get_attribute("href") == "https://tin-b.vn/putin?id=1&x=%3Cy%3E"
    assert link.get_attribute("target") == "_blank" and link.get_attribute("rel") == "noopener noreferrer"
    assert article.locator(".byline").inner_text() == "tin-b.vn · 2024-03-02"
    also = article.locator(".also-published")
    assert also.inner_text() == "Also published by: tin-a.vn, www.tin-c.vn, <b>evil</b>"
    links = also.locator("a")
    assert [links.nth(i).get_attribute("href") for i in range(links.count())] == ["https://tin-a.vn/putin", "https://www.tin-c.vn/putin"]
    assert all(links.nth(i).get_attribute("rel") == "noopener noreferrer" for i in range(links.count()))

    reply.locator("details.also summary").click()
    others = reply.locator("details.also .article")
    assert others.nth(0).locator(".article-title").inner_text() == "From a file"
    assert others.nth(0).locator(".article-title a").count() == 0 and others.nth(0).locator(".byline").count() == 0
    assert others.nth(1).locator(".article-title a").count() == 0 and others.nth(1).locator(".byline").inner_text() == "h.vn"
    assert page.locator("#log a[href^='javascript']").count() == 0 and page.locator("#log b").count() == 0
    assert page.evaluate("window.__owned") is None


def test_the_page_script_never_writes_markup():
    """Every text from the server goes in as text: no HTML parsing sinks in the page's script."""
    script = (REPO / "bot" / "web" / "app.js").read_text(encoding="utf-8")
    sinks = re.findall(r"\.(?:inner|outer)HTML\b|insertAdjacentHTML|document\.write|DOMParser|createContextualFragment", script)
    assert not sinks, sinks


def test_details_show_offsets_and_scores_on_demand(page):
    reply = ask(page, "nga yeu cau nato gi")
    toggle = reply.locator("button.details-toggle")
    assert toggle.inner_text() == "Chi tiết" and toggle.get_attribute("aria-expanded") == "false"
    meta = reply.locator(".source .meta").first
    assert not meta.is_visible() and not reply.locator(".source .passage").first.is_visible()
    assert "điểm" not in reply.inner_text()

    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    assert meta.is_visible() and re.search(r"ký tự \d+–\d+ · điểm \d\.\d{3}", meta.inner_text())
    assert reply.locator(".source .passage").first.is_visible()
    assert "ms" in reply.locator(":scope > .meta").inner_text()

    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "false" and not meta.is_visible()


def test_the_copy_button_copies_the_answer_with_its_sources(browser, url):
    with opened(browser, url, permissions=["clipboard-read", "clipboard-write"]) as page:
        reply = ask(page, "Nga yêu cầu NATO những gì?")
        button = reply.locator("button.copy")
        assert button.inner_text() == "Sao chép"
        button.click()
        button.locator(":scope", has_text="Đã sao chép").wait_for()
        copied = page.evaluate("navigator.clipboard.readText()")
        answer = reply.locator(".answer-text").inner_text()
        assert copied.startswith(answer + "\n\nNguồn:\n[1] ")
        assert "đoạn" in copied and "“" in copied

        # Without the Clipboard API (plain http to another machine) the selection copy stands in.
        page.evaluate("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
        reply = ask(page, "nga yeu cau nato gi")
        reply.locator("button.copy").click()
        reply.locator("button.copy", has_text="Đã sao chép").wait_for()
        assert page.evaluate("document.activeElement.classList.contains('copy')")  # focus back on the button
        reader = page.context.new_page()
        reader.goto(url)
        assert reader.evaluate("navigator.clipboard.readText()").startswith(reply.locator(".answer-text").inner_text())


def test_nothing_found_says_so(english_page):
    reply = ask(english_page, "What is the boiling point of mercury on Jupiter?")
    assert "not-found" in (reply.get_attribute("class") or "")
    assert "could not find an answer" in reply.locator(".answer-text").inner_text()
    assert "try other words" in reply.inner_text()
    assert reply.locator(".sources, details.also").count() == 0


# -- the page's language -------------------------------------------------------------------------


def labels_of(page: Any) -> dict[str, str]:
    return {
        "lang": page.get_attribute("html", "lang"),
        "placeholder": page.get_attribute("#question", "placeholder"),
        "ask": page.locator("#send").inner_text(),
        "new": page.locator("#new-conversation").inner_text(),
    }


def test_the_page_speaks_the_language_of_the_question(english_page, browser, url):
    page = english_page
    assert labels_of(page) == {"lang": "en", "placeholder": "Ask about the articles…", "ask": "Ask", "new": "New conversation"}
    assert "articles" in page.locator("#status").inner_text()

    vi = ask(page, "nga yeu cau nato gi")
    assert vi.get_attribute("lang") == "vi"
    assert vi.locator(".sources-label").inner_text() == "Nguồn"
    assert vi.locator(".source .where").first.inner_text().startswith("đoạn ")
    assert vi.locator("button.details-toggle").inner_text() == "Chi tiết"
    assert vi.locator("button.copy").inner_text() == "Sao chép"
    assert vi.locator("button.vote[data-vote=up]").get_attribute("aria-label") == "Hữu ích"
    if vi.locator("details.also").count():
        assert vi.locator("details.also summary").inner_text().startswith("Cũng tìm thấy")
    # The page around it follows the latest answer.
    assert labels_of(page) == {"lang": "vi", "placeholder": "Hỏi về các bài báo…", "ask": "Hỏi", "new": "Cuộc trò chuyện mới"}
    assert "bài báo" in page.locator("#status").inner_text()
    assert "Enter để gửi" in page.locator("#hint").inner_text()

    en = ask(page, "What did Russia demand from NATO?")
    assert en.get_attribute("lang") == "en"
    assert en.locator(".sources-label").inner_text() == "Sources"
    assert en.locator("button.copy").inner_text() == "Copy"
    assert en.locator("button.details-toggle").inner_text() == "Details"
    assert labels_of(page)["ask"] == "Ask" and "Enter sends" in page.locator("#hint").inner_text()
    # Each answer keeps the labels of its own question.
    assert vi.locator(".sources-label").inner_text() == "Nguồn"

    # Before any question: the browser's language.
    with opened(browser, url, locale="vi-VN") as vietnamese:
        assert labels_of(vietnamese) == {"lang": "vi", "placeholder": "Hỏi về các bài báo…", "ask": "Hỏi", "new": "Cuộc trò chuyện mới"}


# -- the question box ----------------------------------------------------------------------------


def test_enter_sends_and_shift_enter_adds_a_line(page):
    asks = requests_to(page, "/ask")
    box = page.locator("#question")
    box.click()
    page.keyboard.type("Nga yêu cầu")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("NATO những gì?")
    assert box.input_value() == "Nga yêu cầu\nNATO những gì?"
    assert not asks

    with page.expect_request("**/ask") as sent:
        page.keyboard.press("Enter")
    assert sent.value.post_data_json["question"] == "Nga yêu cầu\nNATO những gì?"
    assert box.input_value() == ""
    assert page.evaluate("document.activeElement.id") == "question"  # ready for the next question
    page.locator("#log .msg.answer:not(.pending)").wait_for()
    assert page.evaluate("document.activeElement.id") == "question"


def test_the_counter_shows_the_servers_limit_and_an_over_long_question_is_refused(page, seed_service):
    limit = seed_service.config.max_question_chars
    assert limit == 1000
    assert f'data-max-question-chars="{limit}"' in page.content()
    assert 'data-max-question-chars="40"' in render_page(40)
    counter = page.locator("#counter")
    assert counter.inner_text().startswith(f"0 / {limit}")
    assert page.get_attribute("#question", "aria-describedby").split() == ["hint", "counter", "composer-message"]

    page.fill("#question", "ệ" * (limit - 50))  # a code point each, as the server counts
    assert counter.inner_text().startswith(f"{limit - 50} / {limit}")
    assert "near" in (counter.get_attribute("class") or "")
    page.fill("#question", "  " + "a" * limit + "\n")  # the spaces around are not sent, so not counted
    assert counter.inner_text().startswith(f"{limit} / {limit}")
    assert "over" not in (counter.get_attribute("class") or "")

    asks = requests_to(page, "/ask")
    page.fill("#question", "NATO " * 250)
    assert counter.inner_text().startswith(f"1249 / {limit}")
    assert "over" in (counter.get_attribute("class") or "")
    assert page.get_attribute("#question", "aria-invalid") == "true"
    page.press("#question", "Enter")
    message = page.locator("#composer-message")
    message.wait_for(state="visible")
    assert message.inner_text() == "Câu hỏi dài 1249 ký tự; máy chủ chỉ nhận tối đa 1000 ký tự. Hãy rút gọn để gửi."
    page.click("#send")
    assert not asks and page.locator("#log .msg").count() == 0
    assert page.locator("#question").input_value() == "NATO " * 250  # kept, to shorten
    assert page.evaluate("document.activeElement.id") == "question"

    page.fill("#question", "NATO")
    assert not message.is_visible()


def test_a_4xx_message_from_the_server_is_shown(page):
    error = {"error": "The question is empty; type a question about the articles.", "code": "bad_question", "detail": None}
    fulfil_json(page, "**/ask", error, status=400)
    reply = ask(page, "NATO")
    assert "error" in (reply.get_attribute("class") or "")
    assert reply.inner_text() == error["error"]


# -- feedback ------------------------------------------------------------------------------------


def test_thumbs_up_then_down_sends_two_votes_and_shows_the_last(page):
    reply = ask(page, "Nga yêu cầu NATO những gì?")
    up, down = reply.locator("button.vote[data-vote=up]"), reply.locator("button.vote[data-vote=down]")
    assert up.get_attribute("aria-pressed") == down.get_attribute("aria-pressed") == "false"
    with page.expect_response("**/feedback") as first:
        up.click()
    body = first.value.request.post_data_json
    answer_id = body["answer_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", answer_id) and body == {"answer_id": answer_id, "vote": "up"}
    assert first.value.status == 200 and first.value.json()["replaced"] is False
    reply.locator("button.vote[data-vote=up][aria-pressed=true]").wait_for()
    assert down.get_attribute("aria-pressed") == "false"
    assert "Cảm ơn" in reply.locator(".tool-message").inner_text()

    with page.expect_response("**/feedback") as second:
        down.click()
    assert second.value.request.post_data_json == {"answer_id": answer_id, "vote": "down"}
    assert second.value.status == 200 and second.value.json()["replaced"] is True
    reply.locator("button.vote[data-vote=down][aria-pressed=true]").wait_for()
    assert up.get_attribute("aria-pressed") == "false"


def test_a_vote_that_fails_says_so_and_changes_nothing(page):
    reply = ask(page, "nga yeu cau nato gi")
    forgotten = {"error": "No answer with this answer_id is remembered …", "code": "unknown_answer", "detail": None}
    fulfil_json(page, "**/feedback", forgotten, status=404)
    reply.locator("button.vote[data-vote=down]").click()
    message = reply.locator(".tool-message.bad")
    message.wait_for()
    assert "không còn nhớ" in message.inner_text()
    assert reply.locator("button.vote[aria-pressed=true]").count() == 0

    page.unroute("**/feedback")
    page.route("**/feedback", lambda route: route.abort("connectionrefused"))
    reply.locator("button.vote[data-vote=up]").click()
    reply.locator(".tool-message.bad", has_text="Chưa gửi được góp ý. Hãy thử lại").wait_for()
    assert reply.locator("button.vote[aria-pressed=true]").count() == 0


# -- conversations -------------------------------------------------------------------------------


FIRST, FOLLOW_UP = "Nga yêu cầu NATO những gì?", "Còn Mỹ thì sao?"
CONVERSATION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def conversation_of(page: Any) -> str:
    return page.evaluate("sessionStorage.getItem('newsqa.conversation')")


def test_a_follow_up_is_read_with_the_earlier_question_until_a_new_conversation(page):
    conversation = conversation_of(page)
    assert CONVERSATION_ID.match(conversation)
    with page.expect_request("**/ask") as sent:
        first = ask(page, FIRST)
    assert sent.value.post_data_json == {"question": FIRST, "conversation_id": conversation}
    assert first.locator(".context").count() == 0
    second = ask(page, FOLLOW_UP)
    line = second.locator(".context")
    assert line.inner_text() == f"Đọc cùng câu hỏi trước của bạn: «{FIRST}»"
    assert line.locator("span").get_attribute("lang") == "vi"
    # Above the answer; both measured at once, as the page may still be scrolling the answer into view.
    above = second.evaluate(
        "item => item.querySelector('.context').getBoundingClientRect().top"
        " < item.querySelector('.answer-text').getBoundingClientRect().top"
    )
    assert above
    # The earlier turns stay on the page.
    assert page.locator("#log .msg.question").all_inner_texts() == [FIRST, FOLLOW_UP]
    assert page.locator("#log .msg.answer").count() == 2

    page.click("#new-conversation")
    assert page.locator("#log .msg").count() == 0
    assert page.locator("#examples").is_visible()
    assert page.evaluate("document.activeElement.id") == "question"
    fresh = conversation_of(page)
    assert CONVERSATION_ID.match(fresh) and fresh != conversation
    with page.expect_request("**/ask") as sent:
        alone = ask(page, FOLLOW_UP)
    assert sent.value.post_data_json["conversation_id"] == fresh
    assert alone.locator(".context").count() == 0  # read on its own
    assert page.locator("#log .msg.question").all_inner_texts() == [FOLLOW_UP]


def test_an_english_follow_up_says_so_in_english(english_page):
    fulfil_json(english_page, "**/ask", fake_answer(context_used=True, context_question="What did Russia demand?"))
    line = ask(english_page, "And Britain?").locator(".context")
    assert line.inner_text() == "Read with your earlier question: «What did Russia demand?»"


def test_the_conversation_lasts_the_tab_and_another_tab_has_its_own(page, url):
    ask(page, FIRST)
    conversation = conversation_of(page)
    page.reload()
    wait_until_ready(page)
    assert conversation_of(page) == conversation
    assert "«" + FIRST + "»" in ask(page, FOLLOW_UP).locator(".context").inner_text()

    other = page.context.new_page()
    try:
        other.set_default_timeout(TIMEOUT_MS)
        other.goto(url)
        wait_until_ready(other)
        assert CONVERSATION_ID.match(conversation_of(other)) and conversation_of(other) != conversation
        assert ask(other, FOLLOW_UP).locator(".context").count() == 0
    finally:
        other.close()


def test_example_questions_work_without_diacritics(page):
    examples = page.locator(".example")
    assert examples.count() >= 3
    page.locator(".example", has_text="nga yeu cau nato gi").click()
    reply = page.locator("#log .msg.answer").first
    reply.locator(":scope:not(.pending)").wait_for()
    assert "Nga yêu cầu NATO" in reply.locator(".answer-text").inner_text()
    assert page.locator("#log .msg.question").first.inner_text() == "nga yeu cau nato gi"
    assert not page.locator("#examples").is_visible()
    assert page.evaluate("document.activeElement.id") == "question"


# -- errors and hostile text ---------------------------------------------------------------------


def test_server_and_network_errors_are_explained(english_page):
    page = english_page
    page.route("**/ask", lambda route: route.fulfill(status=500, body="<h1>Internal Server Error</h1>"))
    reply = ask(page, "NATO")
    assert "The server had a problem (HTTP 500)" in reply.inner_text()
    page.unroute("**/ask")
    page.route("**/ask", lambda route: route.abort("connectionrefused"))
    reply = ask(page, "NATO")
    assert "Could not reach the server" in reply.inner_text()
    page.unroute("**/ask")
    fulfil_json(page, "**/ask", {"error": "The index is still loading; try again in a few seconds.", "code": "not_ready", "detail": None}, status=503)
    reply = ask(page, "NATO")
    assert "The index is still loading" in reply.inner_text()


def test_text_from_the_person_or_the_server_is_never_markup(page):
    reply = ask(page, '<img src=x onerror="window.__owned=1"> NATO')
    assert page.locator("#log img").count() == 0
    assert '<img src=x onerror="window.__owned=1"> NATO' in page.locator("#log .msg.question").last.inner_text()
    hostile = fake_answer(
        answer="<b>bold</b> [1] <script>window.__owned=2</script>",
        citations=[{"n": 1, "article_id": "<i>a</i>", "title": "<img src=x onerror=window.__owned=3>",
                    "passage_id": "p", "paragraph": 1, "start": 0, "end": 5, "text": "<u>text</u> <b>more</b>",
                    "score": 1.0, "quote": "<u>text</u> <b>more</b>", "highlights": [[0, 11]]}],
        also_retrieved=[{"article_id": "<i>b</i>", "title": "<em>t</em>", "passage_id": "q", "paragraph": 2,
                         "start": 0, "end": 5, "text": "<s>other</s>", "score": 0.5}],
        notice="<em>note</em>", context_used=True, context_question="<s>earlier</s>",
    )
    fulfil_json(page, "**/ask", hostile)
    reply = ask(page, "anything")
    reply.locator("details.also summary").click()
    reply.locator("button.details-toggle").click()
    assert page.locator("#log b, #log i, #log u, #log em, #log s, #log img, #log script").count() == 0
    assert "«<s>earlier</s>»" in reply.locator(".context").inner_text()
    assert reply.locator(".quote mark").inner_text() == "<u>text</u>"
    for text in ("<b>bold</b>", "<img src=x onerror=window.__owned=3>", "<em>t</em>", "<s>other</s>", "<i>a</i>"):
        assert text in reply.inner_text()
    assert page.evaluate("window.__owned") is None


# -- the page at 1280 and 390 px -----------------------------------------------------------------


THREE_QUESTIONS = ["Nga yêu cầu NATO những gì?", "What did Russia demand from NATO?", "nga yeu cau nato gi"]


@pytest.mark.parametrize(
    "width,height,options,picture",
    [
        (1280, 800, {}, SCREENSHOT),
        (390, 844, {"is_mobile": True, "has_touch": True, "device_scale_factor": 2}, PHONE_SCREENSHOT),
    ],
    ids=["1280px", "390px"],
)
def test_the_latest_answer_is_in_view_after_three_questions(browser, url, width, height, options, picture):
    with opened(browser, url, width, height, locale="en-US", **options) as page:
        for question in THREE_QUESTIONS:
            reply = ask(page, question)
            box = settled_box(page, reply)
            composer = page.locator("#ask-form").bounding_box()
            assert composer["y"] + composer["height"] <= height + 1  # the box stays on screen
            # Wholly visible: below the top, above the composer that sits over the page's bottom.
            assert box["y"] >= 0 and box["y"] + box["height"] <= composer["y"], (question, box, composer)
            assert 0 <= box["x"] and box["x"] + box["width"] <= width
        assert reply.locator(".sources-label").inner_text() == "Nguồn"  # the last question was Vietnamese
        assert page.evaluate("document.scrollingElement.scrollWidth") <= width  # nothing to scroll sideways
        assert page.locator("#send").is_visible() and page.locator("#question").is_visible()
        assert page.locator("#send").bounding_box()["height"] >= 36  # a tappable button
        assert page.get_attribute("#api-docs", "href") == "docs" and page.locator("#api-docs").is_visible()
        picture.parent.mkdir(exist_ok=True)
        if not picture.exists() or os.environ.get("NEWSQA_UPDATE_SCREENSHOT"):
            page.screenshot(path=str(picture))

        # Opened up, the last answer still fits the width.
        reply.locator("button.details-toggle").click()
        if reply.locator("details.also").count():
            reply.locator("details.also summary").click()
        assert page.evaluate("document.scrollingElement.scrollWidth") <= width


def test_an_answer_taller_than_the_screen_shows_from_its_top(browser, url):
    cited = [
        {"n": n, "article_id": f"a{n}", "title": f"Article {n}", "passage_id": f"p{n}", "paragraph": n, "start": 0,
         "end": 60, "text": "A sentence the answer quotes, long enough to wrap a line. " * 2, "score": 0.5,
         "quote": "A sentence the answer quotes, long enough to wrap a line.", "highlights": [[0, 58]]}
        for n in range(1, 13)
    ]
    tall = fake_answer(answer=" ".join(f"Point {n} [{n}]." for n in range(1, 13)), citations=cited)
    with opened(browser, url, 390, 844, locale="en-US", is_mobile=True, has_touch=True) as page:
        ask(page, "nga yeu cau nato gi")
        fulfil_json(page, "**/ask", tall)
        reply = ask(page, "Tell me everything")
        box = settled_box(page, reply)
        assert box["height"] > 844
        assert 0 <= box["y"] <= 16  # its start, not its end, where the reader begins


def test_the_api_docs_link_leads_to_the_docs(english_page):
    english_page.click("#api-docs")
    english_page.locator(".swagger-ui .info .title", has_text="newsqa").wait_for()


# -- the API key ---------------------------------------------------------------------------------


def test_the_page_asks_for_the_api_key_and_sends_it(browser, seed_service, state):
    with LiveServer(app_for(seed_service, state, api_key=API_KEY)) as base:
        context = browser.new_context(viewport={"width": 900, "height": 900}, locale="en-US")
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        try:
            page.goto(base)
            page.locator("#key-panel").wait_for(state="visible")
            assert "needs an API key" in page.locator("#status").inner_text()

            page.fill("#key-input", "wrong-key")
            page.click("#key-form button[type=submit]")
            reply = ask(page, "NATO")
            assert "The API key is not correct." in reply.inner_text()

            page.locator("#key-panel").wait_for(state="visible")
            page.fill("#key-input", API_KEY)
            with page.expect_request("**/readyz") as sent:
                page.click("#key-form button[type=submit]")
            assert sent.value.headers["authorization"] == f"Bearer {API_KEY}"
            wait_until_ready(page)
            assert page.evaluate("localStorage.getItem('newsqa.apiKey')") == API_KEY
            reply = ask(page, "nga yeu cau nato gi")
            assert "Nga yêu cầu NATO" in reply.locator(".answer-text").inner_text()
            with page.expect_response("**/feedback") as voted:
                reply.locator("button.vote[data-vote=up]").click()
            assert voted.value.request.headers["authorization"] == f"Bearer {API_KEY}"
            assert voted.value.status == 200

            page.reload()  # the key survives a reload
            wait_until_ready(page)
            assert page.locator("#key-panel").is_hidden()
        finally:
            context.close()


@pytest.mark.parametrize("path,ready", [("/docs", ".swagger-ui .info .title"), ("/redoc", "h1")])
def test_the_api_docs_render_with_no_internet(browser, url, path, ready):
    """Swagger UI and ReDoc come from the server itself: with every other host cut off, the pages
    still render the API's title and its /ask operation."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    elsewhere: list[str] = []

    def only_this_server(route: Any) -> None:
        if route.request.url.startswith(url):
            route.continue_()
        else:
            # ReDoc's footer shows its maker's logo from their site: decoration, not the page.
            if route.request.resource_type != "image":
                elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_this_server)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url.rstrip("/") + path)
    page.locator(ready, has_text="newsqa").first.wait_for()
    assert "newsqa" in page.content()
    page.get_by_text("/ask").first.wait_for()
    context.close()
    assert not elsewhere, elsewhere
