"""The Telegram front end: python-telegram-bot (async) over a `QAService`, by long polling
(`newsqa bot`: app.run_polling) or by a webhook the HTTP app mounts (webhook.TelegramWebhook).

Rooms: config (token, secret, URLs) · access (allow list, per-user rate) · retry (Bot API retries)
· memory (conversations and button answers in the state store, update ids) · format (answers as Telegram HTML, split under the size
limit; pure functions) · handlers (the conversation) · app (building and running) · webhook.
Redaction of the token and secret from logs is bot/redaction.py's.
"""

from newsqa.bot.telegram.app import run_polling
from newsqa.bot.telegram.config import TelegramConfigError, bot_token
from newsqa.bot.telegram.webhook import TelegramWebhook

__all__ = ["TelegramConfigError", "TelegramWebhook", "bot_token", "run_polling"]
