"""Webhook mode: Telegram POSTs updates to the HTTP app (bot/http/telegram_hook.py holds the route),
and `TelegramWebhook` checks, de-duplicates and queues them for the same Application polling uses.

Updates are queued and answered in the background, so Telegram gets its 200 at once and does not
resend while an answer is being computed. Nothing here speaks HTTP: the route turns `authentic`,
`running` and `accept` into responses.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Mapping

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application

from newsqa.bot.redaction import install_redaction
from newsqa.bot.settings import Settings
from newsqa.bot.state import StateStore
from newsqa.bot.telegram.app import ALLOWED_UPDATES, build_application, close_state, initialize
from newsqa.bot.telegram.config import TelegramConfigError, webhook_secret
from newsqa.bot.telegram.memory import RECENT_UPDATES, RecentIds
from newsqa.retrieval.service import QAService

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class TelegramWebhook:
    """The bot in webhook mode: `start`/`stop` run it, `accept` takes one POSTed update."""

    def __init__(self, application: Application, settings: Settings, path: str, secret: str) -> None:
        self.application = application
        self.settings = settings
        self.path = path
        self._secret = secret.encode()
        self._seen = RecentIds(RECENT_UPDATES)

    @classmethod
    def from_settings(cls, service: QAService, settings: Settings, store: StateStore | None = None) -> TelegramWebhook:
        """The webhook bot; conversations go to `store` (e.g. the HTTP app's), else to one it opens."""
        path = (settings.telegram_webhook_path or "").strip()
        if not path.startswith("/"):
            raise TelegramConfigError(
                "NEWSQA_TELEGRAM_WEBHOOK_PATH must be a URL path starting with '/', such as /telegram/webhook."
            )
        secret = webhook_secret(settings)
        application = build_application(service, settings, polling=False, store=store)
        install_redaction(secret)
        return cls(application, settings, path, secret)

    @property
    def running(self) -> bool:
        return self.application.running

    async def start(self) -> None:
        await initialize(self.application, self.settings)
        await self.application.start()
        url = self.settings.telegram_webhook_url
        if url:
            await self._register(url)

    async def _register(self, url: str) -> None:
        try:
            await self.application.bot.set_webhook(
                url=url, secret_token=self._secret.decode(), allowed_updates=ALLOWED_UPDATES
            )
            log.info("Telegram webhook registered at %s", url)
        except TelegramError as exc:
            # The HTTP API keeps serving; a webhook registered earlier may still be in place.
            log.error("could not register the Telegram webhook at %s: %s", url, exc)

    async def stop(self) -> None:
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()
        close_state(self.application)

    def authentic(self, headers: Mapping[str, str]) -> bool:
        """Whether a POST carries the secret Telegram was given with setWebhook (compared in constant time)."""
        return hmac.compare_digest(headers.get(SECRET_HEADER, "").encode(), self._secret)

    async def accept(self, body: bytes) -> bool:
        """Queues the update in `body`; False when it is not one (nothing for Telegram to retry)."""
        try:
            data = json.loads(body)
            if not isinstance(data, dict) or "update_id" not in data:
                raise ValueError("not an update")
            update = Update.de_json(data, self.application.bot)
        except Exception as exc:  # bad JSON or a shape PTB cannot read
            log.warning("ignoring an unreadable webhook update: %s", exc)
            return False
        if not self._seen.first_time(update.update_id):
            # Telegram resends an update it thinks was lost; answering it again would send the
            # person a second copy of the answer.
            log.info("ignoring update %s: already received", update.update_id)
            return True
        await self.application.update_queue.put(update)
        return True
