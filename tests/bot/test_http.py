"""The HTTP API as a client sees it: the real app under real uvicorn on 127.0.0.1, over real HTTP."""

from __future__ import annotations

import json
import re
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from newsqa.bot.http import create_app
from newsqa.bot.http.schemas import CONVERSATION_ID_RULE, AskResponse
from newsqa.bot.settings import Settings
from newsqa.bot.state import StateOptions, StateStore
from newsqa.index.build import build_index
from newsqa.index.format import resolve_build
from newsqa.index.writer import swap_current
from newsqa.index.text import nfc
from newsqa.retrieval.conversation import next_turn
from newsqa.retrieval.models import Answer, SearchResult
from newsqa.retrieval.service import QAService, ServiceConfig
from tests.conftest import REPO, SEEDS, http_settings

API_KEY = "test-key-0123456789"
JSON = {"Content-Type": "application/json"}
ENDPOINTS = {"/healthz", "/readyz", "/ask", "/feedback", "/search", "/articles", "/articles/{article_id}", "/admin/reload"}

NEW_ARTICLE = """Lễ hội bánh Quokka lần đầu tiên được tổ chức tại Đà Lạt

Lễ hội bánh Quokka lần đầu tiên được tổ chức tại quảng trường Lâm Viên ở thành phố Đà Lạt vào cuối tuần qua, thu hút hàng nghìn du khách trong và ngoài nước đến thưởng thức các loại bánh truyền thống.

Ban tổ chức cho biết lễ hội bánh Quokka sẽ kéo dài ba ngày với hơn năm mươi gian hàng của các nghệ nhân làm bánh đến từ nhiều tỉnh thành, cùng các cuộc thi làm bánh dành cho thiếu nhi.

Theo đại diện ban tổ chức, toàn bộ số tiền bán vé của lễ hội bánh Quokka sẽ được dùng để xây dựng thư viện cho các trường học vùng cao ở tỉnh Lâm Đồng trong năm tới.
"""


# -- a real server -------------------------------------------------------------------------------


class LiveServer:
    """uvicorn serving `app` on a free 127.0.0.1 port from a background thread."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        # log_config=None: leave logging alone, so caplog sees what the server logs.
        config = uvicorn.Config(app, log_config=None, log_level="debug", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    servers: list[LiveServer] = []

    def start(app: Any) -> str:
        server = LiveServer(app)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


def make_settings(**overrides: Any) -> Settings:
    return http_settings(**overrides)



def wait_for(check: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def ready(url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
        wait_for(lambda: client.get("/readyz").status_code == 200, what="/readyz 200")
        return client.get("/readyz").json()


def assert_error(response: httpx.Response, status: int, code: str | None = None, says: str = "") -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"], str) and body["error"].strip(), body
    assert set(body) == {"error", "code", "detail"}
    if code:
        assert body["code"] == code
    assert says.lower() in body["error"].lower(), body["error"]
    return body


@pytest.fixture(scope="module")
def seed_url(seed_service, tmp_path_factory) -> Iterator[str]:
    """One server over the shared seed index for the read-only tests of this module (its
    conversations, should a test send an id, kept outside the shared index)."""
    state = StateStore(tmp_path_factory.mktemp("state") / "state.sqlite")
    server = LiveServer(create_app(make_settings(), seed_service, state=state))
    url = server.start()
    ready(url)
    yield url
    server.stop()
    state.close()


@pytest.fixture
def client(seed_url) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=seed_url, timeout=60) as c:
        yield c


# -- endpoints -------------------------------------------------------------------------------


def test_healthz_and_readyz_report_the_served_index(client, seed_index):
    assert client.get("/healthz").json() == {"status": "ok"}
    info = client.get("/readyz").json()
    manifest = json.loads((resolve_build(seed_index) / "manifest.json").read_text(encoding="utf-8"))
    assert info["status"] == "ready"
    assert info["build_id"] == manifest["build_id"] and info["built_at"] == manifest["built_at"]
    assert info["model"] == manifest["model"]["id"] and info["dimension"] == manifest["model"]["dimension"]
    assert info["article_count"] == 2 and info["passage_count"] == manifest["passage_count"]
    assert info["mode"] == "hybrid" and info["notice"] is None and info["reload_error"] is None
    assert info["dense_memory"] == "memory"  # a small exact index is read in whole


def test_ask_returns_the_same_object_as_the_cli(client, seed_service):
    response = client.post("/ask", json={"question": "Nga yêu cầu NATO những gì?", "top_k": 3})
    assert response.status_code == 200
    data = response.json()
    assert set(data) == set(Answer.model_fields) | {"conversation_id"} == set(AskResponse.model_fields)
    assert data["conversation_id"] is None and data["context_used"] is False and data["context_question"] is None
    answer = Answer.model_validate({k: v for k, v in data.items() if k != "conversation_id"})
    direct = seed_service.ask("Nga yêu cầu NATO những gì?", 3)
    assert answer.model_dump(exclude={"took_ms", "answer_id"}) == direct.model_dump(exclude={"took_ms", "answer_id"})
    assert answer.found and 1 <= len(answer.citations) <= 3
    assert len(answer.citations) + len(answer.also_retrieved) == 3  # what top_k retrieved, cited or not
    assert "Nga yêu cầu NATO chấm dứt mở rộng" in answer.answer
    passage = {"article_id", "title", "source", "url", "published", "passage_id", "paragraph", "start", "end", "text", "score"}
    assert set(data["citations"][0]) == passage | {"n", "quote", "highlights", "also_published"}
    assert all(set(p) == passage for p in data["also_retrieved"])
    # Plain files say nothing of a publisher, a URL or a date; no other site ran them.
    for p in [*data["citations"], *data["also_retrieved"]]:
        assert p["source"] is p["url"] is p["published"] is None and p.get("also_published", []) == []
    assert data["language"] == "vi" and re.fullmatch("[0-9a-f]{32}", data["answer_id"]) and data["build_id"]
    first = data["citations"][0]
    start, end = first["highlights"][0]
    assert first["text"][start:end] in first["quote"] and first["text"][start:end] in data["answer"]


def test_ask_without_top_k_uses_the_default_and_says_when_nothing_is_found(client):
    data = client.post("/ask", json={"question": "What is the boiling point of mercury on Jupiter?"}).json()
    assert data["found"] is False and "could not find" in data["answer"]
    data = client.post("/ask", json={"question": "nga yeu cau nato gi", "top_k": None}).json()
    assert data["found"] is True and len(data["citations"]) <= 5


def test_search_returns_ranked_passages(client):
    response = client.get("/search", params={"q": "NATO mở rộng về phía đông", "k": 3})
    assert response.status_code == 200
    result = SearchResult.model_validate(response.json())
    assert [h.rank for h in result.hits] == [1, 2, 3]
    assert result.hits[0].score >= result.hits[-1].score
    # Both articles say NATO expands "về phía đông/Đông"; either is a right first hit.
    assert "mở rộng về phía đông" in result.hits[0].text.lower()


def test_articles_list_and_detail(client):
    listing = client.get("/articles").json()
    assert listing["count"] == 2 == len(listing["articles"])
    first = listing["articles"][0]
    assert set(first) == {"article_id", "title", "source", "url", "published", "passage_count"} and first["passage_count"] > 0
    assert first["source"] is first["url"] is first["published"] is None  # plain files
    detail = client.get(f"/articles/{first['article_id']}").json()
    assert detail["article_id"] == first["article_id"] and detail["title"] == first["title"]
    assert detail["source"] is detail["url"] is detail["published"] is None
    assert len(detail["passages"]) == first["passage_count"]
    for passage in detail["passages"]:
        assert detail["text"][passage["start"] : passage["end"]] == passage["text"]


def test_articles_from_the_web_carry_their_source_url_and_date(two_sites_index, service_factory, serve):
    """Stories `newsqa index add` stored (tests/wire_story.py): /articles and /articles/{id} say who
    published each, where and when, and /ask's citations too, a story two sites ran cited once."""
    url = serve(create_app(make_settings(), service_factory(two_sites_index)))
    ready(url)
    with httpx.Client(base_url=url, timeout=60) as c:
        listing = {a["article_id"]: a for a in c.get("/articles").json()["articles"]}
        assert {k: (a["source"], a["url"], a["published"]) for k, a in listing.items()} == {
            "tin-a--johnson": ("tin-a.vn", "https://tin-a.vn/tin-a--johnson", "2024-03-01"),
            "tin-a--putin": ("tin-a.vn", "https://tin-a.vn/tin-a--putin", "2024-03-02T09:15:00+07:00"),
            "tin-b--putin": ("tin-b.vn", "https://tin-b.vn/tin-b--putin", "2024-03-02T08:40:00+07:00"),
        }
        detail = c.get("/articles/tin-b--putin").json()
        assert (detail["source"], detail["url"], detail["published"]) == (
            "tin-b.vn", "https://tin-b.vn/tin-b--putin", "2024-03-02T08:40:00+07:00"
        )
        answer = c.post("/ask", json={"question": "Nga yêu cầu NATO những gì?", "top_k": 10}).json()
    assert answer["found"]
    first = answer["citations"][0]
    assert first["source"] in ("tin-a.vn", "tin-b.vn") and first["url"].startswith(f"https://{first['source']}/")
    assert first["published"].startswith("2024-03-02")
    [other] = first["also_published"]
    assert {other["article_id"], first["article_id"]} == {"tin-a--putin", "tin-b--putin"}
    assert set(other) == {"article_id", "source", "url", "published"} and other["source"] != first["source"]
    shown = {p["article_id"] for p in [*answer["citations"], *answer["also_retrieved"]]}
    assert other["article_id"] not in shown


def test_articles_are_listed_a_page_at_a_time(client):
    everything = client.get("/articles").json()
    assert everything["offset"] == 0
    first = client.get("/articles", params={"limit": 1}).json()
    second = client.get("/articles", params={"offset": 1, "limit": 1}).json()
    assert first["count"] == second["count"] == everything["count"] == 2
    assert first["articles"] + second["articles"] == everything["articles"]
    assert second["offset"] == 1
    past = client.get("/articles", params={"offset": 10**30}).json()  # an offset past the end lists nothing
    assert past["articles"] == [] and past["count"] == 2
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "many"}):
        assert_error(client.get("/articles", params=bad), 422)


@pytest.mark.parametrize(
    "path",
    [
        "/articles/no-such-article",
        "/articles/%00",
        "/articles/..%2F..%2Fetc%2Fpasswd",
        "/articles/%F0%9F%98%80",
        "/articles/a/b",
    ],
)
def test_unknown_articles_are_404(client, path):
    assert_error(client.get(path), 404, "not_found")


def test_unknown_paths_and_methods_get_the_error_shape(client):
    assert_error(client.get("/nothing-here"), 404, "not_found")
    assert_error(client.delete("/ask"), 405, "method_not_allowed")


def test_the_schema_documents_every_endpoint_and_its_errors(client):
    schema = client.get("/openapi.json").json()
    assert ENDPOINTS <= set(schema["paths"])
    for path in ENDPOINTS:
        for method, operation in schema["paths"][path].items():
            ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
            assert ok, (method, path)
            for status, response in operation["responses"].items():
                if status != "200":
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorBody"), (method, path, status)
    assert "HTTPValidationError" not in json.dumps(schema)
    ask = schema["components"]["schemas"]["AskRequest"]
    assert ask["properties"]["question"]["maxLength"] == 1000
    assert ask["additionalProperties"] is False
    assert client.get("/docs").status_code == 200


def test_the_page_and_its_assets_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "charset=utf-8" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<html lang="en">' in page.text and 'name="viewport"' in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200
    head = client.head("/")  # uptime checks and link previews
    assert head.status_code == 200 and head.headers["content-type"].startswith("text/html") and head.content == b""


def test_the_api_docs_are_served_without_a_cdn(client):
    for path in ("/docs", "/redoc"):
        page = client.get(path)
        assert page.status_code == 200 and "/openapi.json" in page.text
        assert "cdn.jsdelivr.net" not in page.text and "fonts.googleapis.com" not in page.text
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs-assets/redoc.standalone.js").status_code == 200


# -- input rules ---------------------------------------------------------------------------------

TOO_LONG = "NATO " * 201  # 1005 characters; the limit is 1000


@pytest.mark.parametrize(
    ("content", "headers", "status", "code", "says"),
    [
        (b'{"question": ""}', JSON, 422, "invalid_request", "empty"),
        (b'{"question": "   \\n\\t  "}', JSON, 422, "invalid_request", "empty"),
        (b'{"question": "\\u200b\\u00ad"}', JSON, 422, "invalid_request", "empty"),
        (json.dumps({"question": TOO_LONG}).encode(), JSON, 422, "invalid_request", "limit is 1,000"),
        (b'{"question": "NATO", "top_k": 0}', JSON, 422, "invalid_request", "from 1 to 50"),
        (b'{"question": "NATO", "top_k": 51}', JSON, 422, "invalid_request", "from 1 to 50"),
        (b'{"question": "NATO", "top_k": -3}', JSON, 422, "invalid_request", "from 1 to 50"),
        (b'{"question": "NATO", "top_k": 2.5}', JSON, 422, "invalid_request", "whole number"),
        (b'{"question": "NATO", "top_k": "5"}', JSON, 422, "invalid_request", "whole number"),
        (b'{"question": "NATO", "top_k": true}', JSON, 422, "invalid_request", "whole number"),
        (b'{"question": "NATO", "top_k": 1e400}', JSON, 422, "invalid_request", "whole number"),
        (b'{"question": 42}', JSON, 422, "invalid_request", "must be text"),
        (b'{"question": null}', JSON, 422, "invalid_request", "must be text"),
        (b'{"question": ["NATO"]}', JSON, 422, "invalid_request", "must be text"),
        (b'{"question": {"text": "NATO"}}', JSON, 422, "invalid_request", "must be text"),
        (b"{}", JSON, 422, "invalid_request", "needs a question"),
        (b'{"question": "NATO", "topk": 3}', JSON, 422, "invalid_request", '"topk" is not a field'),
        (b'["NATO"]', JSON, 422, "invalid_request", "JSON object"),
        (b'"NATO"', JSON, 422, "invalid_request", "JSON object"),
        (b"null", JSON, 422, "invalid_request", "JSON object"),
        (b"", JSON, 422, "invalid_request", "JSON object"),
        (b'{"question": "NATO"', JSON, 400, "invalid_json", "not valid JSON"),
        (b"question=NATO", JSON, 400, "invalid_json", "not valid JSON"),
        (
            b'{"question": "NATO"}',
            {"Content-Type": "text/plain"},
            422,
            "invalid_request",
            "Content-Type: application/json",
        ),
        (b'{"question": "NATO"}', {}, 422, "invalid_request", "Content-Type: application/json"),
        (
            b"question=NATO",
            {"Content-Type": "application/x-www-form-urlencoded"},
            422,
            "invalid_request",
            "JSON object",
        ),
        (b'{"question": "\xff\xfe NATO"}', JSON, 400, "bad_request", "UTF-8 JSON"),
        (b"\x00\x01\x02", JSON, 400, None, ""),
    ],
)
def test_bad_ask_requests_get_a_readable_4xx(client, content, headers, status, code, says):
    assert_error(client.post("/ask", content=content, headers=headers), status, code, says)


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({}, "needs a question"),
        ({"q": ""}, "empty"),
        ({"q": "   "}, "empty"),
        ({"q": TOO_LONG}, "limit is 1,000"),
        ({"q": "NATO", "k": "0"}, "from 1 to 50"),
        ({"q": "NATO", "k": "51"}, "from 1 to 50"),
        ({"q": "NATO", "k": "three"}, "from 1 to 50"),
        ({"q": "NATO", "k": "1e999"}, "from 1 to 50"),
        ({"q": "NATO", "k": ""}, "from 1 to 50"),
    ],
)
def test_bad_search_requests_get_a_readable_422(client, params, says):
    assert_error(client.get("/search", params=params), 422, "invalid_request", says)


def test_a_body_over_the_limit_is_413_whether_announced_or_streamed(client):
    big = b'{"question": "' + b"a" * 70_000 + b'"}'
    assert_error(client.post("/ask", content=big, headers=JSON), 413, "too_large", "65,536 bytes")

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        yield b'{"question": "'
        for _ in range(40):
            yield b"a" * 2048
        yield b'"}'

    assert_error(client.post("/ask", content=chunks(), headers=JSON), 413, "too_large")
    # Under the byte limit, the question's own limit speaks.
    assert_error(client.post("/ask", json={"question": "a" * 5000}), 422, "invalid_request", "too long")


@pytest.mark.parametrize(
    "question",
    [
        "Nga yêu cầu NATO những gì?",
        "Nga yêu cầu NATO những gì?",  # decomposed (NFD) accents
        "nga yeu cau nato gi",
        "Russia 🇷🇺 NATO 🤝 demands? 👩‍👩‍👧",
        "ماذا طلبت روسيا من الناتو؟",
        'מה רוסיה דרשה מנאט"ו?',
        "NATO \u202egì\u202c yêu cầu",
        "\x07\x1b[31mNATO\x1b[0m\x08 yêu cầu",
        "NATO\x00Nga\x00",
        "N\u200bA\u200dTO yêu\ufeff cầu",
        "俄罗斯对北约有什么要求？",
        "<script>alert(1)</script> NATO",
        "'; DROP TABLE articles; -- NATO",
        "\U0001d4dd\U0001d4d0\U0001d4e3\U0001d4de",
    ],
)
def test_any_unicode_question_is_answered(client, question):
    response = client.post("/ask", json={"question": question})
    assert response.status_code == 200, response.text
    assert response.json()["question"] == question


def test_lone_surrogates_in_json_do_not_break_the_reply(client):
    response = client.post("/ask", content=b'{"question": "NATO \\ud800 Nga \\udfff"}', headers=JSON)
    assert response.status_code == 200
    assert response.json()["question"] == "NATO \ufffd Nga \ufffd"
    paired = client.post("/ask", content=b'{"question": "NATO \\ud83d\\ude00"}', headers=JSON)
    assert paired.json()["question"] == "NATO \U0001f600"
    # Broken UTF-8 in the query string is replaced, not a 500.
    assert client.get("/search?q=%ED%A0%80NATO%FF").status_code == 200
    assert client.get("/search?q=%00NATO%00").status_code == 200


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    question=st.text(max_size=300),
    top_k=st.one_of(
        st.none(),
        st.integers(-5, 60),
        st.booleans(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=3),
    ),
)
def test_any_text_and_any_top_k_get_an_answer_or_a_readable_4xx(client, question, top_k):
    response = client.post("/ask", json={"question": question, "top_k": top_k})
    # JSON Schema counts 3.0 as an integer, so the API accepts whole-number floats too.
    whole = type(top_k) is int or (type(top_k) is float and top_k.is_integer())
    valid_k = top_k is None or (whole and 1 <= top_k <= 50)
    if response.status_code == 200:
        assert valid_k and response.json()["question"] == question
    else:
        assert_error(response, 422, "invalid_request")
        # Refused with a good top_k only when nothing is left of the question once cleaned.
        assert not valid_k or not nfc(question).split()


# -- conversations ---------------------------------------------------------------------------------

FIRST, FOLLOW_UP = "Nga yêu cầu NATO những gì?", "Còn Mỹ thì sao?"


class Clock:
    """A clock the test moves: StateStore's idea of now."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def converse(seed_service, serve, tmp_path) -> Iterator[Callable[..., tuple[httpx.Client, StateStore]]]:
    """A server over the seed index with a conversation store whose options and clock the test sets;
    a client for it, and the store."""
    stores: list[StateStore] = []
    clients: list[httpx.Client] = []

    def start(options: StateOptions | None = None, clock: Callable[[], float] = time.time) -> tuple[httpx.Client, StateStore]:
        store = StateStore(tmp_path / f"state-{len(stores)}" / "state.sqlite", options, clock)
        stores.append(store)
        url = serve(create_app(make_settings(), seed_service, state=store))
        ready(url)
        clients.append(httpx.Client(base_url=url, timeout=60))
        return clients[-1], store

    yield start
    for c in clients:
        c.close()
    for store in stores:
        store.close()


def said(client: httpx.Client, question: str, conversation: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {"question": question, **({"conversation_id": conversation} if conversation is not None else {}), **extra}
    response = client.post("/ask", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_follow_up_in_a_conversation_is_read_with_its_previous_question(converse, seed_service):
    client, store = converse()
    first = said(client, FIRST, "tab-1")
    assert first["conversation_id"] == "tab-1"
    assert first["context_used"] is False and first["context_question"] is None  # nothing before it
    follow_up = said(client, FOLLOW_UP, "tab-1")
    assert follow_up["conversation_id"] == "tab-1"
    assert follow_up["context_used"] is True and follow_up["context_question"] == FIRST
    # Exactly what the service answers given the turn the first answer left.
    turn = next_turn(seed_service.ask(FIRST), None)
    direct = seed_service.ask(FOLLOW_UP, context=turn)
    assert {k: v for k, v in follow_up.items() if k not in ("conversation_id", "took_ms", "answer_id")} == direct.model_dump(
        mode="json", exclude={"took_ms", "answer_id"}
    )
    assert [t.question for t in store.turns("tab-1")] == [FIRST, FOLLOW_UP]
    # Another conversation is its own: the same follow-up there has nothing to lean on.
    alone = said(client, FOLLOW_UP, "tab-2")
    assert alone["conversation_id"] == "tab-2" and alone["context_used"] is False
    assert store.conversation_count() == 2


def test_without_a_conversation_id_the_answer_is_as_before_and_nothing_is_kept(converse, seed_service):
    client, store = converse()
    said(client, FIRST)
    for data in (said(client, FOLLOW_UP), said(client, FOLLOW_UP, conversation_id=None)):
        assert data["conversation_id"] is None and data["context_used"] is False and data["context_question"] is None
        rest = {k: v for k, v in data.items() if k not in ("conversation_id", "took_ms", "answer_id")}
        assert rest == seed_service.ask(FOLLOW_UP).model_dump(mode="json", exclude={"took_ms", "answer_id"})
    assert store.conversation_count() == 0


@pytest.mark.parametrize(
    "conversation_id",
    ["", "a" * 65, "tab 1", "tab/1", "../state", "tab-1\n", "ñandú", "tab\u0000", "😀", "a.b", "id=1;"],
)
def test_a_malformed_conversation_id_is_a_422_naming_the_field(client, conversation_id):
    response = client.post("/ask", json={"question": FIRST, "conversation_id": conversation_id})
    body = assert_error(response, 422, "invalid_request", "conversation_id")
    assert body["detail"] == [{"field": "conversation_id", "problem": CONVERSATION_ID_RULE}]


@pytest.mark.parametrize("conversation_id", [5, True, ["tab-1"], {"id": "tab-1"}])
def test_a_conversation_id_that_is_not_text_is_a_422(client, conversation_id):
    response = client.post("/ask", json={"question": FIRST, "conversation_id": conversation_id})
    body = assert_error(response, 422, "invalid_request", "must be text")
    assert body["detail"][0]["field"] == "conversation_id"


def test_conversation_ids_of_any_allowed_character_up_to_64_are_taken(client):
    for conversation_id in ("a", "A-z_0-9", "x" * 64, "_", "-"):
        assert said(client, FIRST, conversation_id)["conversation_id"] == conversation_id


def test_a_conversation_idle_past_its_time_to_live_starts_afresh(converse):
    clock = Clock()
    client, _ = converse(StateOptions(ttl_s=600), clock)
    said(client, FIRST, "tab-1")
    clock.now += 599
    assert said(client, FOLLOW_UP, "tab-1")["context_used"] is True
    clock.now += 601
    expired = said(client, FOLLOW_UP, "tab-1")
    assert expired["context_used"] is False and expired["context_question"] is None
    clock.now += 1  # the question read alone starts the conversation again
    again = said(client, "Còn Anh thì sao?", "tab-1")
    assert again["context_used"] is True and again["context_question"] == FOLLOW_UP


def test_past_the_cap_the_least_recently_used_conversation_is_forgotten(converse):
    clock = Clock()
    client, store = converse(StateOptions(conversations=2), clock)
    for conversation in ("a", "b"):
        clock.now += 1
        said(client, FIRST, conversation)
    clock.now += 1
    assert said(client, FOLLOW_UP, "a")["context_used"] is True  # "a" used last: "b" is now the oldest
    clock.now += 1
    said(client, FIRST, "c")  # a third: "b" goes
    assert store.conversation_count() == 2
    clock.now += 1
    assert said(client, "Còn Anh thì sao?", "a")["context_used"] is True
    clock.now += 1
    assert said(client, FOLLOW_UP, "b")["context_used"] is False


class SlowStore(StateStore):
    """A store whose reads take a second, as a busy disk might."""

    def turns(self, conversation: str) -> list[Any]:
        time.sleep(1.0)
        return super().turns(conversation)


def test_the_conversation_store_is_read_off_the_event_loop(seed_service, serve, tmp_path):
    store = SlowStore(tmp_path / "state.sqlite")
    url = serve(create_app(make_settings(), seed_service, state=store))
    ready(url)
    done: list[dict[str, Any]] = []

    def one() -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            done.append(said(c, FIRST, "slow"))

    thread = threading.Thread(target=one)
    thread.start()
    time.sleep(0.3)  # the question is in its store read now
    with httpx.Client(base_url=url, timeout=5) as c:
        started = time.monotonic()
        assert c.get("/healthz").status_code == 200
        assert time.monotonic() - started < 0.5  # the loop is free while the store is read
    thread.join(60)
    assert done and done[0]["conversation_id"] == "slow"
    store.close()


def test_the_default_store_is_opened_beside_the_served_index_on_the_first_answer(index_copy, service_factory, serve):
    url = serve(create_app(make_settings(state_dir=None), service_factory(index_copy)))
    ready(url)
    with httpx.Client(base_url=url, timeout=60) as c:
        assert not (index_copy / "state").exists()  # nothing is written before a question
        said(c, FIRST)  # every answer is kept there, for the votes on it (POST /feedback)
        assert (index_copy / "state" / "state.sqlite").is_file()
        said(c, FIRST, "tab-1")
        assert said(c, FOLLOW_UP, "tab-1")["context_used"] is True


def test_an_unusable_store_answers_the_question_alone(seed_service, serve, tmp_path, caplog):
    not_a_folder = tmp_path / "state"
    not_a_folder.write_text("a file where the state folder should be", encoding="utf-8")
    url = serve(create_app(make_settings(state_dir=not_a_folder), seed_service))
    ready(url)
    with httpx.Client(base_url=url, timeout=60) as c:
        said(c, FIRST, "tab-1")
        follow_up = said(c, FOLLOW_UP, "tab-1")
    assert follow_up["conversation_id"] == "tab-1" and follow_up["context_used"] is False
    assert any("conversation store unavailable" in r.getMessage() for r in caplog.records)


# -- readiness and loading ------------------------------------------------------------------------


def test_readyz_is_503_while_loading_then_200(seed_index, model_path, embedder, serve):
    gate = threading.Event()

    def slow_model(name: str):
        gate.wait(30)  # the model "loads" until the test lets it
        return embedder

    service = QAService(ServiceConfig(index_dir=seed_index, model=model_path), embedder_factory=slow_model)
    url = serve(create_app(make_settings(), service))
    try:
        with httpx.Client(base_url=url, timeout=30) as c:
            assert c.get("/healthz").status_code == 200
            response = c.get("/readyz")
            assert_error(response, 503, "not_ready", "still loading")
            assert response.headers["retry-after"] == "5"
            assert_error(c.post("/ask", json={"question": "NATO"}), 503, "not_ready", "still loading")
            assert_error(c.get("/articles"), 503, "not_ready")
            gate.set()
            assert ready(url)["status"] == "ready"
            assert c.post("/ask", json={"question": "NATO"}).status_code == 200
    finally:
        gate.set()


def test_a_missing_index_is_503_with_the_reason_until_one_is_built(tmp_path, service_factory, embedder, serve, caplog):
    root = tmp_path / "empty-index"
    url = serve(create_app(make_settings(reload_interval=0.1), service_factory(root)))
    with httpx.Client(base_url=url, timeout=30) as c:
        wait_for(lambda: "No index" in c.get("/readyz").text, what="the load to fail")
        assert_error(c.get("/readyz"), 503, "not_ready", "run `newsqa index build`")
        assert_error(c.post("/ask", json={"question": "NATO"}), 503, "not_ready", f"No index found at {root}")
        assert_error(c.get("/search", params={"q": "NATO"}), 503, "not_ready")
        assert c.get("/healthz").status_code == 200
        build_index(SEEDS, root, embedder)  # the watcher notices `current` appear
        assert ready(url)["article_count"] == 2
        assert c.post("/ask", json={"question": "NATO"}).status_code == 200


def test_a_corrupt_index_is_503_with_the_reason(index_copy, service_factory, serve):
    passages = resolve_build(index_copy) / "passages.jsonl"
    passages.write_text(passages.read_text(encoding="utf-8") + '{"broken": true}\n', encoding="utf-8")
    url = serve(create_app(make_settings(), service_factory(index_copy)))
    with httpx.Client(base_url=url, timeout=30) as c:
        wait_for(lambda: "damaged" in c.get("/readyz").text, what="the load to fail")
        assert_error(c.get("/readyz"), 503, "not_ready", "is damaged")


# -- reload ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_reload_under_concurrent_requests_fails_no_request(index_copy, service_factory, embedder, tmp_path, serve):
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    (seeds / "zz_quokka.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    url = serve(create_app(make_settings(reload_interval=0.1, http_max_concurrency=4), service_factory(index_copy)))
    old_build = ready(url)["build_id"]

    stop = threading.Event()
    outcomes: list[tuple[float, int | str]] = []
    questions = ["Nga yêu cầu NATO những gì?", "What did Russia demand from NATO?", "thu tuong anh de xuat gi"]

    def hammer(question: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            while not stop.is_set():
                try:
                    outcomes.append((time.monotonic(), c.post("/ask", json={"question": question}).status_code))
                except httpx.HTTPError as exc:
                    outcomes.append((time.monotonic(), repr(exc)))

    threads = [threading.Thread(target=hammer, args=(q,)) for q in questions * 2]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        build_index(seeds, index_copy, embedder)
        with httpx.Client(base_url=url, timeout=30) as c:
            wait_for(lambda: c.get("/readyz").json()["build_id"] != old_build, what="the new build to be served")
        swapped = time.monotonic()
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(60)

    failures = [o for o in outcomes if o[1] != 200]
    assert not failures, failures[:5]
    assert len(outcomes) >= 20
    assert any(at > swapped for at, _ in outcomes), "no request ran after the swap"

    with httpx.Client(base_url=url, timeout=30) as c:
        listing = c.get("/articles").json()
        assert "zz_quokka" in {a["article_id"] for a in listing["articles"]} and listing["count"] == 3
        answer = c.post("/ask", json={"question": "Lễ hội bánh Quokka được tổ chức ở đâu?"}).json()
        assert answer["found"] and answer["citations"][0]["article_id"] == "zz_quokka"
        assert "Đà Lạt" in answer["answer"]


def test_a_bad_new_build_is_refused_and_the_old_one_keeps_serving(index_copy, service_factory, serve, caplog):
    caplog.set_level(logging.INFO, logger="newsqa.bot.http")
    url = serve(create_app(make_settings(reload_interval=0.1), service_factory(index_copy)))
    old_build = ready(url)["build_id"]

    # A build whose files do not match their checksums, swapped in the way a build swaps.
    bad = index_copy / "builds" / "29991231T235959.999999-bad0"
    shutil.copytree(resolve_build(index_copy), bad)
    with open(bad / "passages.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"garbage": 1}\n')
    swap_current(index_copy, bad)

    with httpx.Client(base_url=url, timeout=30) as c:
        wait_for(lambda: c.get("/readyz").json()["reload_error"] is not None, what="the watcher to refuse the build")
        info = c.get("/readyz").json()
        assert info["build_id"] == old_build and "damaged" in info["reload_error"]
        assert c.post("/ask", json={"question": "nga yeu cau nato gi"}).status_code == 200
        assert_error(c.post("/admin/reload"), 503, "reload_failed", "previous index is still serving")
    assert any("new index refused" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


def test_admin_reload_switches_to_a_new_build(index_copy, service_factory, embedder, serve):
    url = serve(create_app(make_settings(reload_interval=0), service_factory(index_copy)))
    old_build = ready(url)["build_id"]
    report = build_index(SEEDS, index_copy, embedder)
    with httpx.Client(base_url=url, timeout=30) as c:
        assert c.get("/readyz").json()["build_id"] == old_build  # no watcher: nothing changes by itself
        first = c.post("/admin/reload").json()
        assert first == {"changed": True, "build_id": report.folder.name, "built_at": first["built_at"]}
        assert c.get("/readyz").json()["build_id"] == report.folder.name
        assert c.post("/admin/reload").json()["changed"] is False


# -- the API key ---------------------------------------------------------------------------------


@pytest.fixture
def keyed_url(seed_service, serve) -> str:
    url = serve(create_app(make_settings(api_key=API_KEY), seed_service))
    ready(url, {"Authorization": f"Bearer {API_KEY}"})
    return url


GUARDED = [
    ("GET", "/readyz", None),
    ("POST", "/ask", {"question": "NATO"}),
    ("GET", "/search?q=NATO", None),
    ("GET", "/articles", None),
    ("GET", "/articles/000_a04ea2cbfe5e1bb5", None),
    ("POST", "/admin/reload", None),
]


@pytest.mark.parametrize(("method", "path", "body"), GUARDED)
def test_the_api_key_guards_every_data_endpoint(keyed_url, method, path, body):
    with httpx.Client(base_url=keyed_url, timeout=60) as c:
        missing = c.request(method, path, json=body)
        assert_error(missing, 401, "unauthorized", "needs an API key")
        assert missing.headers["www-authenticate"].startswith("Bearer")
        for wrong in (
            f"Bearer {API_KEY}x",
            f"Bearer {API_KEY[:-1]}",
            "Bearer",
            f"Basic {API_KEY}",
            API_KEY,
            "Bearer ключ",
        ):
            response = c.request(method, path, json=body, headers={"Authorization": wrong.encode("utf-8")})
            assert_error(response, 401, "unauthorized")
            assert response.headers["www-authenticate"].startswith("Bearer")
        right = c.request(method, path, json=body, headers={"Authorization": f"Bearer {API_KEY}"})
        assert right.status_code == 200, right.text
        assert c.request(method, path, json=body, headers={"Authorization": f"bearer {API_KEY}"}).status_code == 200


def test_health_the_page_and_the_docs_need_no_key(keyed_url):
    with httpx.Client(base_url=keyed_url, timeout=30) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/").status_code == 200 and c.get("/static/app.js").status_code == 200
        assert c.get("/docs").status_code == 200 and c.get("/docs-assets/swagger-ui.css").status_code == 200
        schema = c.get("/openapi.json").json()
        assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        assert "401" in schema["paths"]["/ask"]["post"]["responses"]
        assert "HTTPValidationError" not in json.dumps(schema)  # every error documented as ErrorBody


def test_the_key_is_compared_in_constant_time(keyed_url, monkeypatch):
    import hmac

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    with httpx.Client(base_url=keyed_url, timeout=30) as c:
        assert c.get("/articles", headers={"Authorization": "Bearer guess"}).status_code == 401
        assert c.get("/articles", headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200
    assert (b"guess", API_KEY.encode()) in calls and (API_KEY.encode(), API_KEY.encode()) in calls


def test_the_key_is_never_logged(keyed_url, caplog):
    caplog.set_level(logging.DEBUG)
    with httpx.Client(base_url=keyed_url, timeout=60) as c:
        c.post("/ask", json={"question": "NATO"}, headers={"Authorization": f"Bearer {API_KEY}"})
        c.get("/articles", headers={"Authorization": f"Bearer {API_KEY}-wrong"})
        c.get("/nothing", headers={"Authorization": f"Bearer {API_KEY}"})
    assert caplog.records  # the server did log (access lines at least)
    assert API_KEY not in caplog.text


# -- concurrency -----------------------------------------------------------------------------------


class CountingService:
    """Wraps the real service and records how many questions run at once."""

    def __init__(self, inner: QAService) -> None:
        self.inner = inner
        self.active = self.peak = 0
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def ask(self, question: str, top_k: int | None = None) -> Answer:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            time.sleep(1.0)  # long enough that a blocked event loop would show in /healthz
            return self.inner.ask(question, top_k)
        finally:
            with self.lock:
                self.active -= 1


@pytest.mark.slow
def test_questions_run_off_the_event_loop_at_most_n_at_a_time(seed_service, serve):
    counting = CountingService(seed_service)
    url = serve(create_app(make_settings(http_max_concurrency=2), counting))  # type: ignore[arg-type]
    ready(url)
    statuses: list[int] = []

    def one() -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            statuses.append(c.post("/ask", json={"question": "NATO"}).status_code)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    wait_for(lambda: counting.active > 0, what="questions to start")
    with httpx.Client(base_url=url, timeout=5) as c:
        started = time.monotonic()
        assert c.get("/healthz").status_code == 200
        assert time.monotonic() - started < 0.5  # the loop is free while questions run
    for t in threads:
        t.join(60)
    assert statuses == [200] * 8
    assert counting.peak == 2


# -- the Telegram webhook contract -------------------------------------------------------------------


def test_the_telegram_webhook_is_mounted_and_started_with_the_app(seed_service, serve, monkeypatch):
    events: list[str] = []

    class FakeWebhook:
        """What bot/http/telegram_hook.py needs of the bot's TelegramWebhook, without Telegram."""

        running = True

        def __init__(self, settings: Settings) -> None:
            self.path = settings.telegram_webhook_path or ""

        @classmethod
        def from_settings(cls, service: Any, settings: Settings) -> FakeWebhook:
            events.append("created")
            return cls(settings)

        async def start(self) -> None:
            events.append("started")

        async def stop(self) -> None:
            events.append("stopped")

        def authentic(self, headers: Any) -> bool:
            return headers.get("X-Secret") == "right"

        async def accept(self, body: bytes) -> bool:
            events.append(f"update {json.loads(body)['update_id']}")
            return True

    module = types.ModuleType("newsqa.bot.telegram.webhook")
    module.TelegramWebhook = FakeWebhook  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "newsqa.bot.telegram.webhook", module)

    server = LiveServer(create_app(make_settings(telegram_webhook_path="/tg/hook"), seed_service))
    url = server.start()
    try:
        assert events == ["created", "started"]
        assert_error(httpx.post(f"{url}/tg/hook", json={"update_id": 1}), 403, "forbidden")
        assert httpx.post(f"{url}/tg/hook", json={"update_id": 2}, headers={"X-Secret": "right"}).status_code == 200
    finally:
        server.stop()
    assert events == ["created", "started", "update 2", "stopped"]


def test_without_python_telegram_bot_the_webhook_is_a_clear_error_and_the_api_runs(seed_service, monkeypatch):
    # As if python-telegram-bot were not installed: `import telegram` fails, and no module of the
    # bot's Telegram package is already imported.
    for name in [n for n in sys.modules if n == "telegram" or n.startswith(("telegram.", "newsqa.bot.telegram"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "telegram", None)
    with pytest.raises(RuntimeError, match="NEWSQA_TELEGRAM_WEBHOOK_PATH is set but"):
        create_app(make_settings(telegram_webhook_path="/tg/hook"), seed_service)
    create_app(make_settings(), seed_service)  # the API itself never needs it


# -- `newsqa serve` -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def interrupt(process: subprocess.Popen[str], timeout: float) -> str:
    """Ctrl+C a server process (killed if it does not stop within `timeout`); its output."""
    process.send_signal(signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output


@pytest.mark.slow
def test_newsqa_serve_runs_the_api(seed_index, model_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSQA_")}
    env |= {"NEWSQA_INDEX_DIR": str(seed_index), "NEWSQA_EMBEDDING_MODEL": model_path, "HF_HUB_OFFLINE": "1"}
    newsqa = Path(sys.executable).parent / "newsqa"
    process = subprocess.Popen(
        [str(newsqa), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=120, what="newsqa serve to be ready")
        answer = httpx.post(f"{url}/ask", json={"question": "nga yeu cau nato gi"}, timeout=60).json()
        assert answer["found"] is True
    finally:
        output = interrupt(process, timeout=30)
    assert "Serving on http://127.0.0.1:" in output and "serving index build" in output
    assert process.returncode == 0, output


@pytest.mark.slow
def test_newsqa_serve_with_two_worker_processes_over_one_index(seed_index, model_path, tmp_path):
    """Replicas: two server processes on one port, each with its own model, reading the same files
    and sharing one conversation store."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSQA_")}
    env |= {"NEWSQA_INDEX_DIR": str(seed_index), "NEWSQA_EMBEDDING_MODEL": model_path, "HF_HUB_OFFLINE": "1",
            "NEWSQA_HTTP_RATE_LIMIT": "0", "NEWSQA_STATE_DIR": str(tmp_path / "state")}
    before = sorted(p.name for p in seed_index.rglob("*"))
    newsqa = Path(sys.executable).parent / "newsqa"
    process = subprocess.Popen(
        [str(newsqa), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def workers_ready() -> bool:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
            servers = [c for c in children if "newsqa" in Path(f"/proc/{c}/cmdline").read_bytes().decode(errors="replace")
                       or "multiprocessing" in Path(f"/proc/{c}/cmdline").read_bytes().decode(errors="replace")]
            try:
                # Every worker loads on its own: wait until a run of new connections all find one ready.
                ready = all(httpx.get(f"{url}/readyz", timeout=5).status_code == 200 for _ in range(12))
            except httpx.HTTPError:
                return False
            return ready and len(servers) >= 2

        wait_for(workers_ready, timeout=180, what="two newsqa serve workers to be ready")
        # A new connection per request, so the kernel spreads them over both workers.
        responses = [httpx.post(f"{url}/ask", json={"question": "nga yeu cau nato gi"}, timeout=60) for _ in range(8)]
        assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses]
        answers = [r.json() for r in responses]
        ready = [httpx.get(f"{url}/readyz", timeout=10).status_code for _ in range(8)]
        assert all(a["found"] is True for a in answers)
        assert {tuple(c["passage_id"] for c in a["citations"]) for a in answers} == {tuple(c["passage_id"] for c in answers[0]["citations"])}
        assert set(ready) == {200}
        # One conversation, each question on a new connection: whichever worker takes it reads the
        # turn the other may have written.
        asked = [FIRST]
        assert httpx.post(f"{url}/ask", json={"question": FIRST, "conversation_id": "shared"}, timeout=60).status_code == 200
        for question in ["Còn Mỹ thì sao?", "Còn Anh thì sao?"] * 3:
            data = httpx.post(f"{url}/ask", json={"question": question, "conversation_id": "shared"}, timeout=60).json()
            assert data["context_used"] is True and data["context_question"] == asked[-1], (asked, data)
            asked.append(question)
        assert (tmp_path / "state" / "state.sqlite").is_file()
    finally:
        output = interrupt(process, timeout=60)
    assert "with 2 worker processes" in output, output
    assert sorted(p.name for p in seed_index.rglob("*")) == before  # serving wrote nothing into the index
