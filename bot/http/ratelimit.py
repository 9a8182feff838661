"""Per-client rate limit for the HTTP API: NEWSQA_HTTP_RATE_LIMIT requests a minute per client.

A client is the API key it presents when that is the server's key, otherwise its IP address (as
uvicorn reports it; behind a proxy, run uvicorn with --forwarded-allow-ips so it is the real one).
Wrong keys count against the IP, so guessing keys cannot mint fresh allowances.

Each client has a token bucket that holds a minute's allowance and refills continuously, so a
client may burst up to the limit and then gets one request every 60/limit seconds. Over it, the
reply is 429 with Retry-After and the API's error shape, before the body is read or the request
routed. /healthz is exempt (probes must never be refused), and so is the Telegram webhook path:
Telegram's few servers carry every user's updates, and the bot limits each user itself.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from newsqa.bot.http.errors import error_json

log = logging.getLogger(__name__)

WINDOW_S = 60.0
# Clients remembered at most; the least recently seen are forgotten first (a forgotten client
# starts again with a full bucket, which only matters to someone holding 10,000 addresses).
MAX_CLIENTS = 10_000
RATE_LIMITED = "rate_limited"


@dataclass
class Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """`per_minute` requests a minute per key, with bursts of up to `per_minute`."""

    def __init__(
        self, per_minute: int, clock: Callable[[], float] = time.monotonic, max_clients: int = MAX_CLIENTS
    ) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / WINDOW_S  # tokens a second
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        """Spend one token for `key`: 0.0 when allowed, else the seconds until the next token."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Bucket(float(self.per_minute), now)
            self._forget_oldest()
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        if bucket.tokens >= 1.0 - 1e-9:  # a client that waited what it was told must not miss by a rounding
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _forget_oldest(self) -> None:
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)


def _bearer(headers: dict[bytes, bytes]) -> bytes | None:
    scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
    return token.strip() if scheme.lower() == b"bearer" and token.strip() else None


def client_key(scope: Scope, api_key: bytes) -> str:
    """Who is asking: the server's API key (as a digest, never the key) or the client's address."""
    if api_key:
        token = _bearer(dict(scope.get("headers") or []))
        if token is not None and hmac.compare_digest(token, api_key):
            return "key:" + hashlib.sha256(token).hexdigest()[:16]
    client = scope.get("client")
    return "ip:" + (str(client[0]) if client else "unknown")


def too_many(per_minute: int, retry_after: int) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The 429 body in the API's error shape and its headers."""
    payload = error_json(
        RATE_LIMITED,
        f"Too many requests: the limit is {per_minute:,} a minute per client; "
        f"try again in {retry_after} second{'s' if retry_after != 1 else ''}.",
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"retry-after", str(retry_after).encode()),
    ]
    return payload, headers


class RateLimit:
    """ASGI middleware: 429 for a client over `per_minute` requests a minute; 0 turns it off."""

    def __init__(
        self,
        app: ASGIApp,
        per_minute: int,
        api_key: bytes = b"",
        exempt: Collection[str] = ("/healthz",),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.per_minute = per_minute
        self.api_key = api_key
        self.exempt = frozenset(exempt)
        self.buckets = TokenBuckets(per_minute, clock) if per_minute > 0 else None
        self._reported: set[str] = set()  # clients over the limit, logged once per burst

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.buckets is None or scope["type"] != "http" or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        key = client_key(scope, self.api_key)
        wait = self.buckets.take(key)
        if not wait:
            self._reported.discard(key)
            await self.app(scope, receive, send)
            return
        retry_after = max(1, math.ceil(wait))
        self._report(key)
        payload, headers = too_many(self.per_minute, retry_after)
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _report(self, key: str) -> None:
        # One line per burst, not per refused request: a flood must not flood the log too.
        if key in self._reported:
            return
        if len(self._reported) >= MAX_CLIENTS:
            self._reported.clear()
        self._reported.add(key)
        # Who, but never the key itself: a key client is named by a digest prefix.
        log.warning("rate limit: %s is over %d requests a minute; refusing with 429", key, self.per_minute)


def document_429(openapi: Callable[[], dict[str, Any]], exempt: Collection[str]) -> Callable[[], dict[str, Any]]:
    """Wrap FastAPI's `app.openapi` so every operation not exempt lists the 429 it may now get."""

    def schema() -> dict[str, Any]:
        document = openapi()  # FastAPI caches it: the same dict each call, so add with setdefault
        reply = {
            "description": "Too many requests from this client; see the Retry-After header",
            "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        }
        for path, operations in document.get("paths", {}).items():
            if path in exempt:
                continue
            for operation in operations.values():
                if isinstance(operation, dict) and "responses" in operation:
                    operation["responses"].setdefault("429", reply)
        return document

    return schema
