"""What `newsqa serve` adds to uvicorn at the socket: limits on a request's head, and access logs
without secrets (bot/redaction.py's filter on uvicorn's access log).

uvicorn's httptools protocol reads a request's line and headers without a size limit or a deadline:
four connections each sending an unfinished 50 MiB header grew a server from 201 to 407 MB, and 50
sockets sending a byte a second stayed open for as long as they liked. `GuardedHttpToolsProtocol`
refuses a head larger than `max_head_bytes` or with more than `max_headers` headers (431, the API's
error body) and closes a connection whose head has not arrived `head_timeout` seconds after the
connection opened or the previous response went out.
"""

from __future__ import annotations

import json
from asyncio import TimerHandle, Transport
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from newsqa.bot.http.errors import error_json
from newsqa.bot.redaction import shared_filter

MAX_HEAD_BYTES = 64 * 1024  # request line and headers; browsers send 1-8 KB
MAX_HEADERS = 100
HEAD_TIMEOUT = 10.0  # seconds for a request's line and headers to arrive


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    # uvicorn makes one protocol object per connection from the class it is given, so the limits
    # are the class's: other limits are a subclass that sets them.
    max_head_bytes: ClassVar[int] = MAX_HEAD_BYTES
    max_headers: ClassVar[int] = MAX_HEADERS
    head_timeout: ClassVar[float] = HEAD_TIMEOUT

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._in_head = True
        self._head_timer: TimerHandle | None = None
        self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        if self._in_head and not self.transport.is_closing():
            self.transport.close()

    def _refuse(self, message: str) -> None:
        body = error_json("headers_too_large", message)
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
        )
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # Still in the head after this chunk: the parser holds at most the limit and one chunk.
        if self._in_head and self._head_bytes > self.max_head_bytes and not self.transport.is_closing():
            self._refuse(f"The request's headers are larger than {self.max_head_bytes // 1024} KiB.")

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        if len(self.headers) > self.max_headers:
            self._refuse(f"The request has more than {self.max_headers} headers.")
            return
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():  # keep-alive: the next request's head starts now
            self._in_head, self._head_bytes = True, 0
            self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with secrets redacted from the access log (a dict, so every
    worker process configures the same)."""
    from uvicorn.config import LOGGING_CONFIG

    config = json.loads(json.dumps(LOGGING_CONFIG))
    config.setdefault("filters", {})["redact_secrets"] = {"()": f"{shared_filter.__module__}.{shared_filter.__name__}"}
    config["loggers"]["uvicorn.access"]["filters"] = ["redact_secrets"]
    return config


def server_options() -> dict[str, Any]:
    """What `newsqa serve` passes to `uvicorn.run` besides the app, host and port."""
    return {"http": GuardedHttpToolsProtocol, "log_config": log_config(), "log_level": "info"}
