"""Building and running the bot: the PTB Application with our handlers, retries and redaction, over
the state store (conversations, button answers); start-up checks; long polling for `newsqa bot`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from telegram import Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application, ApplicationBuilder

from newsqa.bot.redaction import REDACTOR, install_redaction
from newsqa.bot.settings import Settings
from newsqa.bot.state import StateStore
from newsqa.bot.telegram.access import AllowList, QuestionRateLimit
from newsqa.bot.telegram.config import TelegramConfigError, bot_api_urls, bot_token, where
from newsqa.bot.telegram.handlers import COMMANDS, NewsBot
from newsqa.bot.telegram.retry import RetryingRateLimiter, RetryPolicy
from newsqa.retrieval.service import QAService

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
CONCURRENT_UPDATES = 16
POLL_TIMEOUT_S = 30
OWNED_STORE = "newsqa.state_store"  # bot_data key of a store build_application opened (close_state closes it)


def build_application(
    service: QAService,
    settings: Settings,
    *,
    polling: bool = True,
    retry: RetryPolicy = RetryPolicy(),
    timeout_s: float = 10.0,
    store: StateStore | None = None,
) -> Application:
    """The PTB Application with our handlers; checks the token first and keeps it out of the logs.
    Conversations and button answers go to `store`, by default the one `settings` describe (opened
    here, closed by `close_state` when the application is done)."""
    token = bot_token(settings)
    install_redaction(token)
    builder = (
        ApplicationBuilder()
        .token(token)
        .rate_limiter(RetryingRateLimiter(retry))
        .concurrent_updates(CONCURRENT_UPDATES)
        .connect_timeout(timeout_s)
        .read_timeout(timeout_s)
        .write_timeout(timeout_s)
        .get_updates_connect_timeout(timeout_s)
        .get_updates_read_timeout(timeout_s)
    )
    if settings.telegram_base_url:
        base_url, base_file_url = bot_api_urls(settings.telegram_base_url)
        builder = builder.base_url(base_url).base_file_url(base_file_url)
    if not polling:
        builder = builder.updater(None)
    application = builder.build()
    if store is None:
        store = settings.state_store()
        application.bot_data[OWNED_STORE] = store
    bot = NewsBot(
        service,
        AllowList(settings.allowed_chat_ids()),
        QuestionRateLimit(settings.telegram_rate_limit),
        store,
    )
    bot.install(application)
    return application


def close_state(application: Application) -> None:
    """Closes the state store build_application opened for `application` (after it has stopped)."""
    store = application.bot_data.pop(OWNED_STORE, None)
    if store is not None:
        store.close()


async def initialize(application: Application, settings: Settings) -> None:
    """getMe and friends, with start-up failures turned into one sentence without the token."""
    try:
        await application.initialize()
    except InvalidToken:
        await application.bot.shutdown()  # Application.shutdown skips an app that never initialized
        raise TelegramConfigError(
            "Telegram rejected TELEGRAM_BOT_TOKEN; check it with @BotFather (/mybots → API Token)."
        ) from None
    except TelegramError as exc:
        await application.bot.shutdown()
        raise TelegramConfigError(
            f"Could not reach the Telegram Bot API at {where(settings)}: {REDACTOR.redact(str(exc))}"
        ) from None
    try:
        await application.bot.set_my_commands(COMMANDS)
    except TelegramError as exc:  # only the command menu is missing
        log.warning("could not set the bot's command menu: %s", exc)


async def poll(
    application: Application,
    settings: Settings,
    stop: asyncio.Event,
    *,
    poll_timeout: float = POLL_TIMEOUT_S,
    poll_interval: float = 0.0,
    on_started: Callable[[str], None] | None = None,
) -> None:
    """Long polling until `stop` is set; drops any webhook first (Telegram allows one or the other).
    `on_started(username)` once Telegram has answered and updates are being fetched."""
    try:
        await initialize(application, settings)
        await application.updater.start_polling(  # type: ignore[union-attr]
            poll_interval=poll_interval,
            timeout=int(poll_timeout),
            bootstrap_retries=3,
            allowed_updates=ALLOWED_UPDATES,
            error_callback=lambda exc: log.warning("getUpdates failed (%s); polling again", exc),
        )
        await application.start()
        log.info("polling for updates as @%s", application.bot.username)
        if on_started is not None:
            on_started(application.bot.username)
        await stop.wait()
    finally:
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await application.shutdown()
        close_state(application)


def run_polling(service: QAService, settings: Settings, on_started: Callable[[str], None] | None = None) -> None:
    """`newsqa bot`: answer until SIGINT/SIGTERM. Raises TelegramConfigError with one sentence."""
    application = build_application(service, settings, polling=True)
    if settings.telegram_webhook_path:
        log.warning(
            "NEWSQA_TELEGRAM_WEBHOOK_PATH is set, but `newsqa bot` polls: it removes the bot's webhook, "
            "so the HTTP app's webhook gets no updates until one is registered again."
        )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await poll(application, settings, stop, on_started=on_started)

    asyncio.run(main())
