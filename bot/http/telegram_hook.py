"""The Telegram webhook in the HTTP app (NEWSQA_TELEGRAM_WEBHOOK_PATH): the POST route Telegram calls,
answered in the API's error shape, in front of the bot's `TelegramWebhook`.

The Telegram side is imported only when a webhook path is set, so the HTTP API runs without
python-telegram-bot installed; and it knows nothing of HTTP responses, so bot/telegram/ never
imports bot/http/.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from fastapi import APIRouter, Request
from fastapi.responses import Response

from newsqa.bot.http.errors import error_response
from newsqa.bot.settings import Settings
from newsqa.retrieval.service import QAService


class Webhook(Protocol):
    """What the HTTP app needs of the bot's webhook (bot/telegram/webhook.py)."""

    path: str

    @property
    def running(self) -> bool: ...

    def authentic(self, headers: Mapping[str, str]) -> bool: ...

    async def accept(self, body: bytes) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def load_webhook(service: QAService, settings: Settings) -> Webhook:
    try:
        from newsqa.bot.telegram.webhook import TelegramWebhook
    except ImportError as exc:
        raise RuntimeError(
            f"NEWSQA_TELEGRAM_WEBHOOK_PATH is set but the Telegram integration (bot.telegram) cannot be imported: {exc}"
        ) from exc
    return TelegramWebhook.from_settings(service, settings)


def webhook_router(hook: Webhook) -> APIRouter:
    async def receive(request: Request) -> Response:
        if not hook.authentic(request.headers):
            return error_response(403, "forbidden", "Wrong or missing secret token.")
        if not hook.running:
            # Telegram retries later, which is what we want while starting or stopping.
            return error_response(503, "not_ready", "The bot is not running.")
        if not await hook.accept(await request.body()):
            return error_response(400, "invalid_request", "Not a Telegram update.")
        return Response(status_code=200)

    router = APIRouter()
    router.add_api_route(hook.path, receive, methods=["POST"], include_in_schema=False)
    return router
