"""The limit on a request's body (NEWSQA_HTTP_MAX_BODY_BYTES), enforced before any route reads it."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsqa.bot.http.errors import error_response


class BodyLimit:
    """413 for a request body over `max_bytes`, whether announced by Content-Length or streamed.

    A pure ASGI middleware (not Starlette's) so the 413 has our error shape on every route.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        # Read the (small) body up front so an oversized stream is refused before the app sees it.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                chunks = []
                replay = [message]
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]
                break

        async def replaying() -> Message:
            return replay.pop(0) if replay else await receive()

        await self.app(scope, replaying, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            "too_large",
            f"The request body is over the limit of {self.max_bytes:,} bytes.",
            {"Connection": "close"},
        )
        await response(scope, receive, send)
