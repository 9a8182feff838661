"""Per-client rate limit of the HTTP API (bot/http/ratelimit.py): token buckets, who counts as a client,
the 429 a client gets, and the wiring into create_app."""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from newsqa.bot.http import create_app
from newsqa.bot.http.ratelimit import MAX_CLIENTS, RateLimit, TokenBuckets, client_key
from newsqa.bot.settings import Settings
from tests.bot.test_http import LiveServer, assert_error
from tests.conftest import http_settings

API_KEY = "rate-limit-test-key-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def app_settings(**overrides: Any) -> Settings:
    return http_settings(**({"http_rate_limit": 5} | overrides))



# -- token buckets ---------------------------------------------------------------------------------


def test_a_client_may_burst_to_the_limit_then_one_request_per_refill():
    clock = Clock()
    buckets = TokenBuckets(60, clock)  # one token a second
    assert [buckets.take("a") for _ in range(60)] == [0.0] * 60
    wait = buckets.take("a")
    assert wait == pytest.approx(1.0)
    clock.now += 0.5
    assert buckets.take("a") == pytest.approx(0.5)  # a refused request costs nothing
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("b") == 0.0  # another client has its own bucket


def test_an_idle_client_gets_at_most_one_minute_of_allowance_back():
    clock = Clock()
    buckets = TokenBuckets(10, clock)
    for _ in range(10):
        buckets.take("a")
    clock.now += 3600
    assert [buckets.take("a") for _ in range(11)].count(0.0) == 10


def test_the_table_of_clients_is_bounded():
    buckets = TokenBuckets(5, Clock(), max_clients=100)
    for i in range(1000):
        buckets.take(f"ip:{i}")
    assert len(buckets) == 100


def test_the_default_bound_is_generous():
    assert MAX_CLIENTS >= 1000


@settings(max_examples=200, deadline=None)
@given(
    per_minute=st.integers(1, 300),
    gaps=st.lists(st.floats(0, 30, allow_nan=False), min_size=1, max_size=400),
)
def test_no_window_lets_through_more_than_a_burst_plus_the_refill(per_minute, gaps):
    clock = Clock()
    buckets = TokenBuckets(per_minute, clock)
    allowed: list[float] = []
    for gap in gaps:
        clock.now += gap
        wait = buckets.take("k")
        if wait == 0.0:
            allowed.append(clock.now)
        else:
            assert wait > 0 and wait <= 60 / per_minute + 1e-9  # never told to wait longer than one token takes
    # In any 60 s window: at most the full bucket plus what refills during it.
    for i, start in enumerate(allowed):
        in_window = sum(1 for t in allowed[i:] if t - start <= 60.0)
        assert in_window <= 2 * per_minute + 1


@settings(max_examples=200, deadline=None)
@given(per_minute=st.integers(1, 300), burst=st.integers(1, 400))
def test_retry_after_is_honest(per_minute, burst):
    # A refused client that waits what it was told is let in.
    clock = Clock()
    buckets = TokenBuckets(per_minute, clock)
    waits = [buckets.take("k") for _ in range(burst)]
    refused = [w for w in waits if w]
    assert len(refused) == max(0, burst - per_minute)
    if refused:
        clock.now += refused[-1]
        assert buckets.take("k") == 0.0


# -- who is a client -------------------------------------------------------------------------------


def scope(ip: str | None, authorization: str | None = None) -> dict[str, Any]:
    headers = [(b"authorization", authorization.encode())] if authorization else []
    return {"type": "http", "path": "/ask", "headers": headers, "client": (ip, 5000) if ip else None}


def test_the_servers_key_names_the_client_and_anything_else_falls_back_to_the_ip():
    key = API_KEY.encode()
    by_key = client_key(scope("10.0.0.1", f"Bearer {API_KEY}"), key)
    assert by_key.startswith("key:") and API_KEY not in by_key
    assert client_key(scope("10.0.0.2", f"bearer {API_KEY}"), key) == by_key  # same key, another address
    assert client_key(scope("10.0.0.1", f"Bearer {API_KEY}x"), key) == "ip:10.0.0.1"  # a guess counts as the IP
    assert client_key(scope("10.0.0.1", "Bearer"), key) == "ip:10.0.0.1"
    assert client_key(scope("10.0.0.1", f"Basic {API_KEY}"), key) == "ip:10.0.0.1"
    assert client_key(scope("10.0.0.1", f"Bearer {API_KEY}"), b"") == "ip:10.0.0.1"  # no key configured
    assert client_key(scope(None), key) == "ip:unknown"


def echo_app(limit: int, clock: Clock, **kwargs: Any) -> RateLimit:
    async def ok(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    inner = Starlette(routes=[Route("/{path:path}", ok, methods=["GET", "POST"])])
    return RateLimit(inner, per_minute=limit, clock=clock, **kwargs)


async def statuses(app: Any, ip: str, n: int, path: str = "/ask", headers: dict[str, str] | None = None) -> list[int]:
    transport = httpx.ASGITransport(app=app, client=(ip, 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return [(await client.get(path, headers=headers)).status_code for _ in range(n)]


def test_one_key_is_one_client_and_wrong_keys_count_against_the_address():
    clock = Clock()
    app = echo_app(3, clock, api_key=API_KEY.encode())
    good = {"Authorization": f"Bearer {API_KEY}"}

    async def scenario() -> None:
        assert await statuses(app, "10.0.0.1", 4, headers=good) == [200, 200, 200, 429]
        assert await statuses(app, "10.0.0.2", 1, headers=good) == [429]  # the key's bucket is empty
        assert await statuses(app, "10.0.0.1", 3) == [200, 200, 200]  # the address's own bucket
        for i in range(3):
            guesses = await statuses(app, "10.0.0.3", 1, headers={"Authorization": f"Bearer guess-{i}"})
            assert guesses == [200]
        assert await statuses(app, "10.0.0.3", 1, headers={"Authorization": "Bearer guess-new"}) == [429]
        clock.now += 20  # one token back per 20 s at 3 a minute
        assert await statuses(app, "10.0.0.2", 2, headers=good) == [200, 429]

    asyncio.run(scenario())


def test_exempt_paths_and_zero_are_never_limited():
    async def scenario() -> None:
        limited = echo_app(1, Clock(), exempt=("/healthz", "/tg/hook"))
        assert await statuses(limited, "10.0.0.1", 50, "/healthz") == [200] * 50
        assert await statuses(limited, "10.0.0.1", 50, "/tg/hook") == [200] * 50
        assert await statuses(limited, "10.0.0.1", 2, "/healthz/x") == [200, 429]
        assert await statuses(echo_app(0, Clock()), "10.0.0.1", 300) == [200] * 300

    asyncio.run(scenario())


# -- the real app --------------------------------------------------------------------------------------


@pytest.fixture
def limited_url(seed_service: Any) -> Iterator[str]:
    server = LiveServer(create_app(app_settings(http_rate_limit=5), seed_service))
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


def test_the_api_answers_429_with_retry_after_in_its_error_shape(limited_url):
    with httpx.Client(base_url=limited_url, timeout=60) as c:
        assert c.get("/readyz").status_code == 200
        assert c.post("/ask", json={"question": "nga yeu cau nato gi"}).status_code == 200
        assert c.get("/search", params={"q": "NATO"}).status_code == 200
        assert c.get("/nothing-here").status_code == 404  # every request counts, not only good ones
        assert c.get("/articles").status_code == 200
        refused = c.post("/ask", json={"question": "nga yeu cau nato gi"})
        body = assert_error(refused, 429, "rate_limited", "limit is 5 a minute per client")
        assert body["detail"] is None
        retry_after = int(refused.headers["retry-after"])
        assert 1 <= retry_after <= 12  # one token takes 12 s at 5 a minute
        assert f"try again in {retry_after} second" in body["error"]
        # Refused before the body is read: a body over the size limit is 429, not 413.
        assert c.post("/ask", content=b"x" * 200_000, headers={"Content-Type": "application/json"}).status_code == 429
        assert c.get("/healthz").status_code == 200  # probes are never refused


def test_429_is_documented_when_the_limit_is_on(seed_service):
    on = create_app(app_settings(http_rate_limit=7), seed_service).openapi()
    assert "429" in on["paths"]["/ask"]["post"]["responses"]
    assert on["paths"]["/ask"]["post"]["responses"]["429"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ErrorBody"
    )
    assert "429" not in on["paths"]["/healthz"]["get"]["responses"]
    off = create_app(app_settings(http_rate_limit=0), seed_service).openapi()
    assert "429" not in off["paths"]["/ask"]["post"]["responses"]


def test_the_telegram_webhook_path_is_exempt(seed_service, monkeypatch):
    class FakeWebhook:
        """What bot/http/telegram_hook.py needs of the bot's TelegramWebhook, without Telegram."""

        running = True

        def __init__(self, settings: Settings) -> None:
            self.path = (settings.telegram_webhook_path or "").strip()  # as TelegramWebhook does

        @classmethod
        def from_settings(cls, service: Any, settings: Settings) -> FakeWebhook:
            return cls(settings)

        async def start(self) -> None:
            pass

        async def stop(self) -> None:
            pass

        def authentic(self, headers: Any) -> bool:
            return True

        async def accept(self, body: bytes) -> bool:
            return True

    module = types.ModuleType("newsqa.bot.telegram.webhook")
    module.TelegramWebhook = FakeWebhook  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "newsqa.bot.telegram.webhook", module)
    app = create_app(app_settings(http_rate_limit=2, telegram_webhook_path=" /tg/hook "), seed_service)

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app, client=("149.154.167.1", 443))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            hooks = [(await client.post("/tg/hook", json={})).status_code for _ in range(10)]
            others = [(await client.get("/articles")).status_code for _ in range(3)]
        assert hooks == [200] * 10 and others == [200, 200, 429]

    asyncio.run(scenario())


def test_the_setting_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("NEWSQA_HTTP_RATE_LIMIT", "30")
    assert Settings().http_rate_limit == 30
    monkeypatch.setenv("NEWSQA_HTTP_RATE_LIMIT", "0")
    assert Settings().http_rate_limit == 0
    monkeypatch.delenv("NEWSQA_HTTP_RATE_LIMIT")
    assert Settings().http_rate_limit == Settings.model_fields["http_rate_limit"].default
    monkeypatch.setenv("NEWSQA_HTTP_RATE_LIMIT", "-1")
    with pytest.raises(ValueError):
        Settings()
