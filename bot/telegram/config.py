"""The bot's configuration checked before anything starts: the token, the webhook secret, a
self-hosted Bot API server's URLs. Each problem is one sentence for the operator."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from newsqa.bot.settings import Settings

TOKEN_PATTERN = re.compile(r"\d+:[A-Za-z0-9_-]{30,}")
WEBHOOK_SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what setWebhook accepts


class TelegramConfigError(ValueError):
    """The bot cannot start as configured; the message is one sentence for the operator."""


def bot_token(settings: Settings) -> str:
    secret = settings.telegram_bot_token
    token = secret.get_secret_value().strip() if secret is not None else ""
    if not token:
        raise TelegramConfigError(
            "TELEGRAM_BOT_TOKEN is not set: create a bot with @BotFather in Telegram and put its token there."
        )
    if not TOKEN_PATTERN.fullmatch(token):
        raise TelegramConfigError(
            "TELEGRAM_BOT_TOKEN does not look like a bot token (digits, a colon, then at least 30 letters, "
            "digits, '_' or '-'); copy it again from @BotFather."
        )
    return token


def webhook_secret(settings: Settings) -> str:
    secret = settings.telegram_webhook_secret
    value = secret.get_secret_value() if secret is not None else ""
    if not value:
        raise TelegramConfigError(
            "NEWSQA_TELEGRAM_WEBHOOK_SECRET must be set in webhook mode, so that only Telegram can post updates."
        )
    if not WEBHOOK_SECRET_PATTERN.fullmatch(value):
        raise TelegramConfigError(
            "NEWSQA_TELEGRAM_WEBHOOK_SECRET must be 1 to 256 letters, digits, '_' or '-' (Telegram's rule)."
        )
    return value


def bot_api_urls(base_url: str) -> tuple[str, str]:
    """(base_url, base_file_url) for a self-hosted Bot API server given as its root or as '<root>/bot'."""
    root = base_url.strip().rstrip("/")
    if root.endswith("/bot"):
        root = root[: -len("/bot")]
    parts = urlsplit(root)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TelegramConfigError(
            f"NEWSQA_TELEGRAM_BASE_URL must be an http(s) URL such as http://localhost:8081, not '{base_url}'."
        )
    return f"{root}/bot", f"{root}/file/bot"


def where(settings: Settings) -> str:
    return settings.telegram_base_url or "https://api.telegram.org"
