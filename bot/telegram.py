"""The Telegram front end: python-telegram-bot (async) over a `QAService`, by long polling or webhook.

Polling: `newsqa bot` runs `run_polling`. Webhook: bot/http.py mounts `TelegramWebhook.router` and
calls `start()`/`stop()` in its lifespan. Both build the same Application with `build_application`.

Answering runs the (blocking) retrieval in a worker thread and the Application processes updates
concurrently, so one slow question never holds up other chats.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import secrets
import signal
import time
import warnings
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseRateLimiter,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from newsqa.bot.settings import Settings
from newsqa.bot.telegram_format import (
    ARTICLE_TITLES,
    EN,
    VI,
    Labels,
    format_answer,
    format_articles,
    format_help,
    format_sources,
    html_to_plain,
    labels_for,
    split_html,
)
from newsqa.index.store import IndexUnavailable
from newsqa.retrieval.models import Answer
from newsqa.retrieval.service import BadQuestion, QAService

log = logging.getLogger(__name__)

TOKEN_PATTERN = re.compile(r"\d+:[A-Za-z0-9_-]{30,}")
WEBHOOK_SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what setWebhook accepts
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
CONCURRENT_UPDATES = 16
TYPING_EVERY_S = 4.5  # Telegram shows "typing…" for about 5 s per chat action
POLL_TIMEOUT_S = 30
REMEMBERED_ANSWERS = 2000
SOURCES_PREFIX = "src:"
COMMANDS = [
    BotCommand("help", "Cách hỏi / how to ask"),
    BotCommand("articles", "Các bài báo / indexed articles"),
    BotCommand("sources", "Đoạn trích đầy đủ / full passages of the last answer"),
]


class TelegramConfigError(ValueError):
    """The bot cannot start as configured; the message is one sentence for the operator."""


# -- settings checks -----------------------------------------------------------------------------


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


# -- keeping the token out of logs ---------------------------------------------------------------


class RedactSecrets(logging.Filter):
    """Replaces secrets (the bot token, the webhook secret) in a record's message and traceback.

    httpx logs every request URL, and Bot API URLs contain the token; PTB also puts the token in
    some exception messages. Installed as a log-record factory, it sees every record of every
    logger before any handler (including ones added later, like pytest's) formats it.
    """

    MASK = "[REDACTED]"

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def add(self, secret: str) -> None:
        if len(secret) >= 8:  # a short "secret" would blank out ordinary words
            self._secrets.add(secret)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, self.MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the logger's problem, not ours
            message = str(record.msg)
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


REDACTOR = RedactSecrets()
_factory_installed = False


def install_redaction(*secrets_: str) -> None:
    global _factory_installed
    for secret in secrets_:
        REDACTOR.add(secret)
    if not _factory_installed:
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            REDACTOR.filter(record)
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True
    # One INFO line per request, each with the token in its URL: not worth having even redacted.
    for name in ("httpx", "httpcore"):
        if logging.getLogger(name).getEffectiveLevel() < logging.WARNING:
            logging.getLogger(name).setLevel(logging.WARNING)


# -- retrying Bot API calls ------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # tries per Bot API call, the first included
    backoff_s: float = 1.0  # wait after the first network error; doubles each time
    max_retry_after_s: float = 60.0  # a longer flood-control wait fails the call instead


def retry_after_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB warns that retry_after will become a timedelta
        value = exc.retry_after
    return value.total_seconds() if hasattr(value, "total_seconds") else float(value)  # type: ignore[union-attr]


def is_transient(exc: TelegramError) -> bool:
    """Worth trying again: flood control, timeouts, 5xx, dropped connections, garbled responses."""
    if isinstance(exc, (BadRequest, Forbidden, InvalidToken, Conflict, ChatMigrated)):
        return False
    if isinstance(exc, (RetryAfter, NetworkError)):
        return True
    return "Invalid server response" in exc.message


class RetryingRateLimiter(BaseRateLimiter[None]):
    """Retries every Bot API call (PTB's hook for this is the rate limiter) on transient faults.

    getUpdates is not routed here: PTB's updater has its own retry loop for it.
    """

    BEST_EFFORT = frozenset({"sendChatAction"})  # stale by the time a retry would land

    def __init__(self, policy: RetryPolicy = RetryPolicy()) -> None:
        self.policy = policy

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        attempt = 1
        while True:
            try:
                return await callback(*args, **kwargs)
            except TelegramError as exc:
                delay = self._delay(exc, endpoint, attempt)
                if delay is None:
                    raise
                log.warning(
                    "Bot API %s failed (%s); retry %d of %d in %.1f s",
                    endpoint, exc, attempt, self.policy.attempts - 1, delay,
                )
                await asyncio.sleep(delay)
                attempt += 1

    def _delay(self, exc: TelegramError, endpoint: str, attempt: int) -> float | None:
        if attempt >= self.policy.attempts or endpoint in self.BEST_EFFORT or not is_transient(exc):
            return None
        if isinstance(exc, RetryAfter):
            wait = retry_after_seconds(exc)
            return wait if wait <= self.policy.max_retry_after_s else None
        return self.policy.backoff_s * 2 ** (attempt - 1)


# -- who may ask, and how often ----------------------------------------------------------------------


class AllowList:
    """Chat or user ids allowed to use the bot (empty: everyone); others get one refusal per chat."""

    def __init__(self, ids: frozenset[int]) -> None:
        self.ids = ids
        self._refused: set[int] = set()

    def allows(self, chat_id: int | None, user_id: int | None) -> bool:
        return not self.ids or chat_id in self.ids or user_id in self.ids

    def should_refuse(self, chat_id: int) -> bool:
        if chat_id in self._refused:
            return False
        self._refused.add(chat_id)
        return True


class QuestionRateLimit:
    """At most `per_minute` questions per user in any 60 s; one "slow down" per burst beyond it."""

    OK, WARN, DROP = "ok", "warn", "drop"
    WINDOW_S = 60.0

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._asked: dict[int, deque[float]] = {}
        self._warned: set[int] = set()

    def check(self, user_id: int) -> str:
        if self.per_minute <= 0:
            return self.OK
        now = self.clock()
        asked = self._asked.setdefault(user_id, deque())
        while asked and now - asked[0] >= self.WINDOW_S:
            asked.popleft()
        if len(asked) < self.per_minute:
            asked.append(now)
            self._warned.discard(user_id)
            return self.OK
        if user_id in self._warned:
            return self.DROP
        self._warned.add(user_id)
        return self.WARN


class AnswerMemory:
    """Recent answers, so /sources and the Sources button can show their full passages."""

    def __init__(self, capacity: int = REMEMBERED_ANSWERS) -> None:
        self.capacity = capacity
        self._answers: OrderedDict[str, Answer] = OrderedDict()
        self._last: dict[int, str] = {}

    def remember(self, chat_id: int, answer: Answer) -> str:
        # Random keys: a button from before a restart must not open some other answer.
        key = secrets.token_urlsafe(9)
        self._answers[key] = answer
        self._last[chat_id] = key
        while len(self._answers) > self.capacity:
            old, _ = self._answers.popitem(last=False)
            self._last = {chat: k for chat, k in self._last.items() if k != old}
        return key

    def get(self, key: str) -> Answer | None:
        return self._answers.get(key)

    def last(self, chat_id: int) -> Answer | None:
        key = self._last.get(chat_id)
        return None if key is None else self._answers.get(key)


# -- reading questions -------------------------------------------------------------------------------


def question_in(message: Message, bot_username: str | None, bot_id: int | None) -> str | None:
    """The question a message asks the bot, or None when it is not addressed to the bot.

    Private chat: every text message. Group: only messages that mention the bot or reply to it.
    """
    text = message.text or ""
    if message.chat.type == ChatType.PRIVATE:
        return text
    replied = message.reply_to_message
    to_bot = replied is not None and replied.from_user is not None and replied.from_user.id == bot_id
    mentioned = False
    for entity, value in message.parse_entities([MessageEntity.MENTION, MessageEntity.TEXT_MENTION]).items():
        if entity.type == MessageEntity.MENTION and bot_username and value[1:].lower() == bot_username.lower():
            mentioned = True
        elif entity.type == MessageEntity.TEXT_MENTION and entity.user is not None and entity.user.id == bot_id:
            mentioned = True
    if not (mentioned or to_bot):
        return None
    if bot_username:
        text = re.sub(rf"@{re.escape(bot_username)}\b", " ", text, flags=re.IGNORECASE)
    return " ".join(text.split())


@contextlib.asynccontextmanager
async def typing(bot: Any, chat_id: int, every: float = TYPING_EVERY_S, grace: float = 1.0) -> AsyncIterator[None]:
    """Shows "typing…" in the chat until the block ends; a failed chat action only costs the hint.

    A chat action already on its way gets up to `grace` seconds to land when the block ends, so
    "typing…" never arrives after (and lingers over) the answer it announced.
    """
    done = asyncio.Event()

    async def keep_typing() -> None:
        while not done.is_set():
            try:
                await bot.send_chat_action(chat_id=chat_id, action=ChatAction.TYPING)
            except TelegramError as exc:
                log.debug("chat action for %s failed: %s", chat_id, exc)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(done.wait(), every)

    task = asyncio.create_task(keep_typing())
    try:
        yield
    finally:
        done.set()
        try:
            await asyncio.wait_for(task, grace)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            pass


# -- the bot ---------------------------------------------------------------------------------------


Context = ContextTypes.DEFAULT_TYPE


class NewsBot:
    """Handlers for commands, questions and the Sources button, with their per-chat state."""

    def __init__(self, service: QAService, allowed: AllowList, rate: QuestionRateLimit) -> None:
        self.service = service
        self.allowed = allowed
        self.rate = rate
        self.memory = AnswerMemory()

    def install(self, application: Application) -> None:
        application.add_handler(CommandHandler(["start", "help"], self.on_help))
        application.add_handler(CommandHandler("articles", self.on_articles))
        application.add_handler(CommandHandler("sources", self.on_sources))
        application.add_handler(CallbackQueryHandler(self.on_sources_button, pattern=f"^{SOURCES_PREFIX}"))
        application.add_handler(
            MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND, self.on_text)
        )
        application.add_error_handler(self.on_error)

    # -- gatekeeping

    async def _admitted(self, update: Update, context: Context) -> bool:
        chat, user = update.effective_chat, update.effective_user
        if chat is None:
            return False
        if self.allowed.allows(chat.id, user.id if user else None):
            return True
        log.info("refusing chat %s (user %s): not in NEWSQA_ALLOWED_CHATS", chat.id, user.id if user else None)
        if self.allowed.should_refuse(chat.id):
            labels = labels_for(update.effective_message.text or "") if update.effective_message else EN
            await self._send(context.bot, chat.id, [labels.refused])
        return False

    # -- commands

    async def on_help(self, update: Update, context: Context) -> None:
        if not await self._admitted(update, context):
            return
        articles, total = await self._articles()
        await self._send(
            context.bot, update.effective_chat.id, split_html(format_help(articles, context.bot.username, total))
        )

    async def on_articles(self, update: Update, context: Context) -> None:
        if not await self._admitted(update, context):
            return
        articles, total = await self._articles()
        await self._send(context.bot, update.effective_chat.id, split_html(format_articles(articles, total)))

    async def on_sources(self, update: Update, context: Context) -> None:
        if not await self._admitted(update, context):
            return
        chat_id = update.effective_chat.id
        answer = self.memory.last(chat_id)
        if answer is None:  # a bare command says nothing about the language: say it in both
            await self._send(context.bot, chat_id, [f"{VI.no_answer_yet}\n{EN.no_answer_yet}"])
            return
        await self._send(context.bot, chat_id, split_html(format_sources(answer)))

    async def on_sources_button(self, update: Update, context: Context) -> None:
        query = update.callback_query
        if query is None or not await self._admitted(update, context):
            return
        key = (query.data or "")[len(SOURCES_PREFIX) :]
        answer = self.memory.get(key)
        if answer is None:
            await self._answer_query(query, f"{VI.expired} / {EN.expired}")
            return
        await self._answer_query(query, None)
        chat_id = update.effective_chat.id
        reply_to = query.message.message_id if query.message is not None else None
        await self._send(context.bot, chat_id, split_html(format_sources(answer)), reply_to=reply_to)

    async def _answer_query(self, query: Any, text: str | None) -> None:
        try:
            await query.answer(text=text)
        except TelegramError as exc:  # too late or already answered: the spinner times out by itself
            log.info("answerCallbackQuery failed: %s", exc)

    # -- questions

    async def on_text(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None:
            return
        question = question_in(message, context.bot.username, context.bot.id)
        if question is None or not await self._admitted(update, context):
            return
        chat = message.chat
        labels = labels_for(question)
        reply_to = message.message_id if chat.type != ChatType.PRIVATE else None
        verdict = self.rate.check(update.effective_user.id if update.effective_user else chat.id)
        if verdict == QuestionRateLimit.DROP:
            return
        if verdict == QuestionRateLimit.WARN:
            await self._send(context.bot, chat.id, [labels.slow_down], reply_to=reply_to)
            return
        if not question.strip():
            await self._send(context.bot, chat.id, [labels.empty_question], reply_to=reply_to)
            return
        answer = await self._ask(context.bot, chat.id, question, labels, reply_to)
        if answer is None:
            return
        markup = None
        if answer.found and answer.citations:
            key = self.memory.remember(chat.id, answer)
            markup = InlineKeyboardMarkup(
                [[InlineKeyboardButton(labels.button, callback_data=f"{SOURCES_PREFIX}{key}")]]
            )
        await self._send(context.bot, chat.id, split_html(format_answer(answer)), reply_to=reply_to, markup=markup)

    async def _ask(self, bot: Any, chat_id: int, question: str, labels: Labels, reply_to: int | None) -> Answer | None:
        try:
            async with typing(bot, chat_id):
                return await asyncio.to_thread(self.service.ask, question)
        except BadQuestion as exc:
            await self._send(bot, chat_id, [str(exc)], reply_to=reply_to, plain=True)
        except IndexUnavailable as exc:
            log.error("cannot answer: %s", exc)
            await self._send(bot, chat_id, [labels.unavailable], reply_to=reply_to)
        return None

    async def _articles(self) -> tuple[list, int]:
        """The first articles a chat is shown, and how many there are (without reading them all)."""

        def first() -> tuple[list, int]:
            view = self.service.view()
            return view.articles_page(0, ARTICLE_TITLES), view.article_count

        try:
            return await asyncio.to_thread(first)
        except IndexUnavailable as exc:
            log.error("cannot list articles: %s", exc)
            return [], 0

    # -- sending

    async def _send(
        self,
        bot: Any,
        chat_id: int,
        parts: Sequence[str],
        *,
        reply_to: int | None = None,
        markup: InlineKeyboardMarkup | None = None,
        plain: bool = False,
    ) -> Message | None:
        """Sends the parts in order; the first replies to `reply_to`, the last carries `markup`."""
        sent: Message | None = None
        for index, part in enumerate(parts):
            sent = await self._send_one(
                bot,
                chat_id,
                part,
                reply_to=reply_to if index == 0 else None,
                markup=markup if index == len(parts) - 1 else None,
                plain=plain,
            )
            if sent is None:
                break  # later parts make no sense without the earlier ones
        return sent

    async def _send_one(
        self, bot: Any, chat_id: int, text: str, *, reply_to: int | None, markup: Any, plain: bool
    ) -> Message | None:
        extra: dict[str, Any] = {"reply_markup": markup}
        if reply_to is not None:
            extra["reply_parameters"] = ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
        try:
            if plain:
                return await bot.send_message(chat_id=chat_id, text=text, **extra)
            return await bot.send_message(chat_id=chat_id, text=text, parse_mode=ParseMode.HTML, **extra)
        except BadRequest as exc:
            if plain or "parse" not in exc.message.lower():
                log.warning("Telegram refused a message to chat %s: %s", chat_id, exc)
                return None
            log.warning("Telegram could not parse a reply's HTML (%s); resending it as plain text", exc)
            return await self._send_one(bot, chat_id, html_to_plain(text), reply_to=reply_to, markup=markup, plain=True)
        except Forbidden as exc:
            log.info("chat %s does not accept messages from the bot: %s", chat_id, exc)
        except TelegramError as exc:
            log.error("could not send a reply to chat %s, even after retrying: %s", chat_id, exc)
        return None

    # -- errors

    async def on_error(self, update: object, context: Context) -> None:
        """Last resort for anything a handler did not handle: log it and keep serving."""
        error = context.error
        chat = update.effective_chat if isinstance(update, Update) else None
        if isinstance(error, TelegramError):
            log.warning("Telegram error while handling an update for chat %s: %s", chat.id if chat else None, error)
            return
        log.error("unexpected error while handling an update", exc_info=error)
        if chat is not None:
            with contextlib.suppress(TelegramError):
                await context.bot.send_message(
                    chat_id=chat.id, text="Xin lỗi, đã có lỗi xảy ra. / Sorry, something went wrong."
                )


# -- building and running ------------------------------------------------------------------------------


def build_application(
    service: QAService,
    settings: Settings,
    *,
    polling: bool = True,
    retry: RetryPolicy = RetryPolicy(),
    timeout_s: float = 10.0,
) -> Application:
    """The PTB Application with our handlers; checks the token first and keeps it out of the logs."""
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
    bot = NewsBot(
        service,
        AllowList(settings.allowed_chat_ids()),
        QuestionRateLimit(settings.telegram_rate_limit),
    )
    bot.install(application)
    return application


def where(settings: Settings) -> str:
    return settings.telegram_base_url or "https://api.telegram.org"


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
) -> None:
    """Long polling until `stop` is set; drops any webhook first (Telegram allows one or the other)."""
    await initialize(application, settings)
    try:
        await application.updater.start_polling(  # type: ignore[union-attr]
            poll_interval=poll_interval,
            timeout=int(poll_timeout),
            bootstrap_retries=3,
            allowed_updates=ALLOWED_UPDATES,
            error_callback=lambda exc: log.warning("getUpdates failed (%s); polling again", exc),
        )
        await application.start()
        log.info("polling for updates as @%s", application.bot.username)
        await stop.wait()
    finally:
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await application.shutdown()


def run_polling(service: QAService, settings: Settings) -> None:
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
        await poll(application, settings, stop)

    asyncio.run(main())


RECENT_UPDATES = 10_000  # update ids remembered for de-duplication (Telegram resends within minutes)


class RecentIds:
    """The last `size` ids seen, to tell a resent update from a new one."""

    def __init__(self, size: int) -> None:
        self._order: deque[int] = deque(maxlen=size)
        self._ids: set[int] = set()

    def first_time(self, value: int) -> bool:
        if value in self._ids:
            return False
        if len(self._order) == self._order.maxlen:
            self._ids.discard(self._order[0])
        self._order.append(value)
        self._ids.add(value)
        return True


class TelegramWebhook:
    """Webhook mode for the HTTP app: `router` takes Telegram's POSTs, `start`/`stop` run the bot.

    Updates are queued and answered in the background, so Telegram gets its 200 at once and does
    not resend while an answer is being computed.
    """

    def __init__(self, application: Application, settings: Settings, path: str, secret: str) -> None:
        self.application = application
        self.settings = settings
        self.path = path
        self._secret = secret.encode()
        self._seen = RecentIds(RECENT_UPDATES)
        self.router = APIRouter()
        self.router.add_api_route(path, self.receive, methods=["POST"], include_in_schema=False)

    @classmethod
    def from_settings(cls, service: QAService, settings: Settings) -> TelegramWebhook:
        path = (settings.telegram_webhook_path or "").strip()
        if not path.startswith("/"):
            raise TelegramConfigError(
                "NEWSQA_TELEGRAM_WEBHOOK_PATH must be a URL path starting with '/', such as /telegram/webhook."
            )
        secret = webhook_secret(settings)
        application = build_application(service, settings, polling=False)
        install_redaction(secret)
        return cls(application, settings, path, secret)

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

    async def receive(self, request: Request) -> Response:
        from newsqa.bot.http import error_response  # the API's one error body, on this path too

        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            return error_response(403, "forbidden", "Wrong or missing secret token.")
        if not self.application.running:
            # Telegram retries later, which is what we want while starting or stopping.
            return error_response(503, "not_ready", "The bot is not running.")
        try:
            data = await request.json()
            if not isinstance(data, dict) or "update_id" not in data:
                raise ValueError("not an update")
            update = Update.de_json(data, self.application.bot)
        except Exception as exc:  # bad JSON or a shape PTB cannot read: nothing to retry
            log.warning("ignoring an unreadable webhook update: %s", exc)
            return error_response(400, "invalid_request", "Not a Telegram update.")
        if not self._seen.first_time(update.update_id):
            # Telegram resends an update it thinks was lost; answering it again would send the
            # person a second copy of the answer.
            log.info("ignoring update %s: already received", update.update_id)
            return Response(status_code=200)
        await self.application.update_queue.put(update)
        return Response(status_code=200)
