"""The bot's conversation: commands (/help, /articles, /sources, /new), questions, the Sources button,
the 👍/👎 buttons under an answer, and what a chat sees when something fails. Answering runs the
(blocking) retrieval in a worker thread, and so do the (short) reads and writes of the state store.

Conversations: a private chat is one; in a group each person has their own. A question is read with
its conversation's last turn (a follow-up), or, when it replies to one of the bot's answers, with the
turn that answer produced, continuing that answer's conversation. /new forgets the asker's."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

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
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from newsqa.bot.labels import EN, VI, Labels, labels_for, labels_in
from newsqa.bot.state import StateStore
from newsqa.bot.telegram.access import AllowList, QuestionRateLimit
from newsqa.bot.telegram.format import (
    ARTICLE_TITLES,
    format_answer,
    format_articles,
    format_help,
    format_sources,
    html_to_plain,
    split_html,
)
from newsqa.bot.telegram.memory import BotMemory, conversation_key
from newsqa.index.format import IndexUnavailable
from newsqa.retrieval.conversation import Turn
from newsqa.retrieval.models import Answer
from newsqa.retrieval.service import BadQuestion, QAService

log = logging.getLogger(__name__)

TYPING_EVERY_S = 4.5  # Telegram shows "typing…" for about 5 s per chat action
SOURCES_PREFIX = "src:"
# A vote button's callback data: "vote:up:<answer_id>" (40 bytes; Telegram allows 64). The answer_id
# is the answer's own (POST /feedback's), so a vote lands on the same row whichever front end gave it.
VOTE_DATA = re.compile(r"^vote:(up|down):([0-9a-f]{32})$")
VOTE_BUTTONS = {"up": "👍", "down": "👎"}
CHOSEN = " ✓"  # after the button of the vote given
# The command menu (set at start-up); each has its handler in NewsBot.install.
COMMANDS = [
    BotCommand("help", "Cách hỏi / how to ask"),
    BotCommand("articles", "Các bài báo / indexed articles"),
    BotCommand("sources", "Đoạn trích đầy đủ / full passages of the last answer"),
    BotCommand("new", "Cuộc trò chuyện mới / start a new conversation"),
]


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


def replied_to_bot(message: Message, bot_id: int | None) -> int | None:
    """The id of the bot's message that `message` replies to, if it replies to one."""
    replied = message.reply_to_message
    if replied is None or replied.from_user is None or replied.from_user.id != bot_id:
        return None
    return replied.message_id


def own_conversation(update: Update) -> str:
    chat, user = update.effective_chat, update.effective_user
    return conversation_key(chat.id, user.id if user else None, chat.type == ChatType.PRIVATE)


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


def vote_buttons(answer_id: str, chosen: str | None = None) -> list[InlineKeyboardButton]:
    """👍 and 👎 for the answer, the one `chosen` ticked. A row of their own: three buttons in one
    row would cut the Sources label short on a phone."""
    return [
        InlineKeyboardButton(glyph + (CHOSEN if vote == chosen else ""), callback_data=f"vote:{vote}:{answer_id}")
        for vote, glyph in VOTE_BUTTONS.items()
    ]


def ticked(markup: InlineKeyboardMarkup, vote: str) -> InlineKeyboardMarkup:
    """The message's buttons with its vote buttons showing `vote` as given; the others as they were."""
    rows = []
    for row in markup.inline_keyboard:
        found = [VOTE_DATA.match(b.callback_data) for b in row if isinstance(b.callback_data, str)]
        answer_id = next((m.group(2) for m in found if m is not None), None)
        rows.append(vote_buttons(answer_id, vote) if answer_id else list(row))
    return InlineKeyboardMarkup(rows)


Context = ContextTypes.DEFAULT_TYPE


class NewsBot:
    """Handlers for commands, questions and the Sources button; conversations and answers are kept in
    `store` (shared with other processes, surviving a restart)."""

    def __init__(self, service: QAService, allowed: AllowList, rate: QuestionRateLimit, store: StateStore) -> None:
        self.service = service
        self.allowed = allowed
        self.rate = rate
        self.memory = BotMemory(store)

    def install(self, application: Application) -> None:
        application.add_handler(CommandHandler(["start", "help"], self.on_help))
        application.add_handler(CommandHandler("articles", self.on_articles))
        application.add_handler(CommandHandler("sources", self.on_sources))
        application.add_handler(CommandHandler("new", self.on_new))
        application.add_handler(CallbackQueryHandler(self.on_sources_button, pattern=f"^{SOURCES_PREFIX}"))
        application.add_handler(CallbackQueryHandler(self.on_vote_button, pattern=VOTE_DATA))
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
        message = update.effective_message
        replied = replied_to_bot(message, context.bot.id) if message is not None else None
        answer = await asyncio.to_thread(self.memory.sources_for, own_conversation(update), chat_id, replied)
        if answer is None:  # a bare command says nothing about the language: say it in both
            await self._send(context.bot, chat_id, [f"{VI.no_answer_yet}\n{EN.no_answer_yet}"])
            return
        await self._send(context.bot, chat_id, split_html(format_sources(answer)))

    async def on_sources_button(self, update: Update, context: Context) -> None:
        query = update.callback_query
        if query is None or not await self._admitted(update, context):
            return
        key = (query.data or "")[len(SOURCES_PREFIX) :]
        chat_id = update.effective_chat.id
        answer = await asyncio.to_thread(self.memory.sources, key, chat_id)
        if answer is None:
            await self._answer_query(query, f"{VI.expired} / {EN.expired}")
            return
        await self._answer_query(query, None)
        reply_to = query.message.message_id if query.message is not None else None
        await self._send(context.bot, chat_id, split_html(format_sources(answer)), reply_to=reply_to)

    async def on_vote_button(self, update: Update, context: Context) -> None:
        """👍/👎 under an answer: stores the vote (a later press replaces it), thanks the person in
        the answer's language, and ticks the button pressed."""
        query = update.callback_query
        if query is None or not await self._admitted(update, context):
            return
        match = VOTE_DATA.match(query.data or "")
        if match is None:  # the handler's pattern lets only vote data through
            return
        vote, answer_id = match.group(1), match.group(2)
        stored = await asyncio.to_thread(self.memory.vote, answer_id, vote)  # type: ignore[arg-type]
        if stored is None:
            await self._answer_query(query, f"{VI.expired} / {EN.expired}")
            return
        await self._answer_query(query, labels_in(stored.language).thanks)
        message = query.message
        markup = getattr(message, "reply_markup", None)
        if markup is None:  # the message is too old for Telegram to show us; the vote is kept anyway
            return
        try:
            await query.edit_message_reply_markup(reply_markup=ticked(markup, vote))
        except BadRequest as exc:  # "message is not modified": the same button pressed again
            log.debug("vote buttons not updated: %s", exc)
        except TelegramError as exc:
            log.info("could not tick the vote button: %s", exc)

    async def on_new(self, update: Update, context: Context) -> None:
        """/new: the asker's next question is read on its own."""
        if not await self._admitted(update, context):
            return
        last = await asyncio.to_thread(self.memory.forget, own_conversation(update))
        if last is not None:
            labels = labels_for(last.question)
        else:  # nothing asked yet: the language Telegram says the person uses
            user = update.effective_user
            labels = labels_in(user.language_code if user is not None else None)
        chat = update.effective_chat
        message = update.effective_message
        reply_to = message.message_id if message is not None and chat.type != ChatType.PRIVATE else None
        await self._send(context.bot, chat.id, [labels.new_conversation], reply_to=reply_to)

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
        own = own_conversation(update)
        conversation, previous = await asyncio.to_thread(
            self.memory.previous, own, chat.id, replied_to_bot(message, context.bot.id)
        )
        answer = await self._ask(context.bot, chat.id, question, labels, reply_to, previous)
        if answer is None:
            return
        key = await asyncio.to_thread(self.memory.answered, own, chat.id, conversation, previous, answer)
        markup = None
        if answer.found and answer.citations:
            rows = [[InlineKeyboardButton(labels.button, callback_data=f"{SOURCES_PREFIX}{key}")]]
            if answer.answer_id:
                rows.append(vote_buttons(answer.answer_id))
            markup = InlineKeyboardMarkup(rows)
        sent = await self._send(context.bot, chat.id, split_html(format_answer(answer)), reply_to=reply_to, markup=markup)
        if sent:
            await asyncio.to_thread(self.memory.sent, chat.id, [m.message_id for m in sent], key)

    async def _ask(
        self, bot: Any, chat_id: int, question: str, labels: Labels, reply_to: int | None, previous: Turn | None
    ) -> Answer | None:
        try:
            async with typing(bot, chat_id):
                return await asyncio.to_thread(self.service.ask, question, context=previous)
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
    ) -> list[Message]:
        """Sends the parts in order; the first replies to `reply_to`, the last carries `markup`.
        Returns the messages sent."""
        sent: list[Message] = []
        for index, part in enumerate(parts):
            message = await self._send_one(
                bot,
                chat_id,
                part,
                reply_to=reply_to if index == 0 else None,
                markup=markup if index == len(parts) - 1 else None,
                plain=plain,
            )
            if message is None:
                break  # later parts make no sense without the earlier ones
            sent.append(message)
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
