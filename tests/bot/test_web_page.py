"""The web chat page in a real browser: Debian's Chromium, driven by Playwright, against real uvicorn."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from newsqa.bot.http import create_app
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
SCREENSHOT = REPO / "docs" / "web-chat.png"
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


@pytest.fixture
def page(browser, url) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 900, "height": 1000}, locale="vi-VN")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    # A CSP violation or a failed script shows up as a console error.
    page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.goto(url)
    wait_until_ready(page)
    yield page
    context.close()
    assert not [p for p in problems if "Failed to load resource" not in p], problems


def wait_until_ready(page: Any) -> None:
    # A locator wait, not wait_for_function: string predicates are eval'd, which the page's CSP forbids.
    page.locator("#status", has_text="articles").wait_for()


def ask(page: Any, question: str) -> Any:
    """Type a question, press Enter, return the locator of the finished reply."""
    before = page.locator("#log .msg.answer").count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    reply = page.locator("#log .msg.answer").nth(before)
    reply.locator(":scope:not(.pending)").wait_for()
    return reply


def test_a_question_gets_an_answer_with_expandable_citations(page):
    assert page.get_attribute("html", "lang") == "en"
    assert page.locator("meta[name=viewport]").count() == 1
    reply = ask(page, "Nga yêu cầu NATO những gì?")

    text = reply.locator(".answer-text")
    assert "NATO chấm dứt mở rộng về phía đông" in text.inner_text()
    assert text.get_attribute("lang") == "vi"
    citations = reply.locator(".citations details")
    assert citations.count() >= 1
    first = citations.first
    assert first.get_attribute("open") is None
    assert "[1]" in first.locator("summary").inner_text() and "paragraph" in first.locator("summary").inner_text()
    assert not first.locator(".passage").is_visible()

    first.locator("summary").click()
    assert first.get_attribute("open") is not None
    passage = first.locator(".passage")
    passage.wait_for(state="visible")
    assert "Nga yêu cầu NATO chấm dứt mở rộng" in passage.inner_text()

    # The [1] mark in the answer opens its citation too.
    first.locator("summary").click()
    assert first.get_attribute("open") is None
    reply.locator(".answer-text .mark", has_text="[1]").click()
    assert first.get_attribute("open") is not None
    SCREENSHOT.parent.mkdir(exist_ok=True)
    if not SCREENSHOT.exists() or os.environ.get("NEWSQA_UPDATE_SCREENSHOT"):
        page.screenshot(path=str(SCREENSHOT))


def test_example_questions_work_without_diacritics(page):
    examples = page.locator(".example")
    assert examples.count() >= 3
    page.locator(".example", has_text="nga yeu cau nato gi").click()
    reply = page.locator("#log .msg.answer").first
    reply.locator(":scope:not(.pending)").wait_for()
    assert "Nga yêu cầu NATO" in reply.locator(".answer-text").inner_text()
    assert page.locator("#log .msg.question").first.inner_text() == "nga yeu cau nato gi"
    assert not page.locator("#examples").is_visible()


def test_nothing_found_says_so(page):
    reply = ask(page, "What is the boiling point of mercury on Jupiter?")
    assert "not-found" in (reply.get_attribute("class") or "")
    assert "could not find an answer" in reply.locator(".answer-text").inner_text()
    assert "try other words" in reply.inner_text()


def test_a_4xx_message_from_the_server_is_shown(page):
    reply = ask(page, "NATO " * 250)
    assert "error" in (reply.get_attribute("class") or "")
    assert "The question is too long; the limit is 1,000 characters." in reply.inner_text()


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
    assert line.inner_text() == f"Read with your earlier question: «{FIRST}»"
    assert line.locator("span").get_attribute("lang") == "vi"
    assert line.bounding_box()["y"] < second.locator(".answer-text").bounding_box()["y"]  # above the answer
    # The earlier turns stay on the page.
    assert page.locator("#log .msg.question").all_inner_texts() == [FIRST, FOLLOW_UP]
    assert page.locator("#log .msg.answer").count() == 2

    page.click("#new-conversation")
    assert page.locator("#log .msg").count() == 0
    assert page.locator("#examples").is_visible()
    fresh = conversation_of(page)
    assert CONVERSATION_ID.match(fresh) and fresh != conversation
    with page.expect_request("**/ask") as sent:
        alone = ask(page, FOLLOW_UP)
    assert sent.value.post_data_json["conversation_id"] == fresh
    assert alone.locator(".context").count() == 0  # read on its own
    assert page.locator("#log .msg.question").all_inner_texts() == [FOLLOW_UP]


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


def test_server_and_network_errors_are_explained(page):
    page.route("**/ask", lambda route: route.fulfill(status=500, body="<h1>Internal Server Error</h1>"))
    reply = ask(page, "NATO")
    assert "The server had a problem (HTTP 500)" in reply.inner_text()
    page.unroute("**/ask")
    page.route("**/ask", lambda route: route.abort("connectionrefused"))
    reply = ask(page, "NATO")
    assert "Could not reach the server" in reply.inner_text()
    page.unroute("**/ask")
    page.route(
        "**/ask",
        lambda route: route.fulfill(
            status=503,
            content_type="application/json",
            body='{"error": "The index is still loading; try again in a few seconds.", "code": "not_ready", "detail": null}',
        ),
    )
    reply = ask(page, "NATO")
    assert "The index is still loading" in reply.inner_text()


def test_text_from_the_person_or_the_server_is_never_markup(page):
    reply = ask(page, '<img src=x onerror="window.__owned=1"> NATO')
    assert page.locator("#log img").count() == 0
    assert '<img src=x onerror="window.__owned=1"> NATO' in page.locator("#log .msg.question").last.inner_text()
    hostile = (
        '{"question": "q", "answer": "<b>bold</b> [1] <script>window.__owned=2</script>", "found": true,'
        ' "citations": [{"n": 1, "article_id": "<i>a</i>", "title": "<img src=x onerror=window.__owned=3>",'
        ' "passage_id": "p", "paragraph": 1, "start": 0, "end": 5, "text": "<u>text</u>", "score": 1.0}],'
        ' "took_ms": 1.0, "mode": "hybrid", "notice": "<em>note</em>",'
        ' "context_used": true, "context_question": "<s>earlier</s>", "conversation_id": "c-1"}'
    )
    page.route("**/ask", lambda route: route.fulfill(status=200, content_type="application/json", body=hostile))
    reply = ask(page, "anything")
    reply.locator("summary").click()
    assert page.locator("#log b, #log i, #log u, #log em, #log s, #log img, #log script").count() == 0
    assert "«<s>earlier</s>»" in reply.locator(".context").inner_text()
    assert "<b>bold</b>" in reply.inner_text() and "<img src=x onerror=window.__owned=3>" in reply.inner_text()
    assert page.evaluate("window.__owned") is None


def test_the_page_fits_a_phone(browser, url):
    context = browser.new_context(
        viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(url)
        reply = ask(page, "Thủ tướng Anh muốn đưa ra đề xuất gì với Nga?")
        reply.locator("summary").first.click()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        assert page.locator("#send").is_visible() and page.locator("#question").is_visible()
        box = page.locator("#send").bounding_box()
        assert box and box["height"] >= 36  # a tappable button
    finally:
        context.close()


def test_the_page_asks_for_the_api_key_and_sends_it(browser, seed_service, state):
    with LiveServer(app_for(seed_service, state, api_key=API_KEY)) as base:
        context = browser.new_context(viewport={"width": 900, "height": 900})
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
