"""Pure functions that turn answers into Telegram HTML messages and split them under the size limit.

No Telegram imports here: everything is plain strings in, plain strings out, so it is unit-tested
without a bot. Every piece of user or article text passes through `html.escape` exactly once.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from newsqa.bot.labels import VI, Labels, answer_labels
from newsqa.bot.provenance import byline, publishers, web_link
from newsqa.index.models import Article
from newsqa.retrieval.answer import NOT_FOUND_VI
from newsqa.retrieval.models import Answer, Citation, by_article

TELEGRAM_LIMIT = 4096  # Telegram's cap on one message's text
CONTEXT_QUOTE_CHARS = 60  # length of the earlier question a follow-up's answer says it was read with
HELP_TITLES = 20  # more titles than this make /help a wall of text; /articles lists more
# A chat is not a catalogue: 271k titles (a 1M-passage build) would be thousands of messages
ARTICLE_TITLES = 100

_CITATION_MARK = re.compile(r"\[(\d+)\]")


def e(text: str) -> str:
    """Escape user or article text for Telegram HTML (which understands only &lt; &gt; &amp; &quot;)."""
    return html.escape(text, quote=True)


def short_quote(text: str, limit: int) -> str:
    """The start of a passage, cut at a word boundary. Returns plain text (escape it afterwards)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.–-") + "…"


def cited_numbers(answer_text: str) -> list[int]:
    seen: list[int] = []
    for match in _CITATION_MARK.finditer(answer_text):
        n = int(match.group(1))
        if n not in seen:
            seen.append(n)
    return seen


def citation_line(citation: Citation, labels: Labels) -> str:
    """'[n] · paragraph p', under the article's title."""
    return f"<b>[{citation.n}]</b> · {labels.paragraph} {citation.paragraph}"


def context_line(answer: Answer, labels: Labels) -> str | None:
    """One italic line saying a follow-up was read with the earlier question (shortened), if it was."""
    if not answer.context_used or not answer.context_question:
        return None
    return f"<i>{labels.read_with}: «{e(short_quote(answer.context_question, CONTEXT_QUOTE_CHARS))}»</i>"


def format_answer(answer: Answer) -> str:
    """The reply to a question: the answer with [n] marks, then its sources by article (the title
    once), each cited passage as the sentences quoted with a few words around them. A follow-up
    read with the earlier question says so in a first, italic line."""
    labels = answer_labels(answer)
    context = context_line(answer, labels)
    lead = f"{context}\n" if context else ""
    if not answer.found or not answer.citations:
        text = answer.answer.strip() or (NOT_FOUND_VI if labels is VI else "Sorry, I could not find an answer.")
        return f"{lead}{e(text)}\n\n<i>{e(labels.not_found_hint)}</i>"
    blocks = [lead + e(answer.answer.strip())]
    if answer.notice:
        blocks.append(f"<i>{e(answer.notice)}</i>")
    blocks.append(f"<b>{labels.sources}</b>")
    for group in by_article(answer.citations):
        # A blockquote rather than quotation marks: the quote often holds quotation marks of its own.
        quotes = "".join(f"{citation_line(c, labels)}<blockquote>{e(c.quote)}</blockquote>" for c in group)
        also = also_published_line(group[0], labels)
        blocks.append(source_heading(group[0]) + "\n" + quotes + (f"\n{also}" if also else ""))
    return "\n\n".join(blocks)


def source_heading(citation: Citation) -> str:
    """The article's title in bold, a link to the story when it has a URL, and a line saying who
    published it and when ("VnExpress · 2024-03-02"), when that is known."""
    link = web_link(citation.url)
    title = f'<a href="{e(link)}">{e(citation.title)}</a>' if link else e(citation.title)
    said = byline(citation.source, citation.published)  # the URL is behind the title already
    return f"<b>{title}</b>" + (f"\n<i>{e(said)}</i>" if said else "")


def also_published_line(citation: Citation, labels: Labels) -> str | None:
    """'Also published by tin-a.vn, tin-c.vn', each linked to its copy of the story."""
    if not citation.also_published:
        return None
    names = [
        f'<a href="{e(link)}">{e(name)}</a>' if (link := web_link(url)) else e(name)
        for name, url in publishers(citation.also_published)
    ]
    return f"<i>{e(labels.also_published)}:</i> " + ", ".join(names)


def format_sources(answer: Answer) -> str:
    """What /sources and the Sources button show: each cited passage in full, by article, then the
    passages the search also found, set apart with their first words."""
    labels = answer_labels(answer)
    blocks = [f"<b>{labels.full_sources}</b> — <i>{e(answer.question)}</i>"]
    for group in by_article(answer.citations):
        blocks.append(source_heading(group[0]))
        blocks += [f"{citation_line(c, labels)}\n{e(c.text.strip())}" for c in group]
    if answer.also_retrieved:
        lines = [f"<b>{labels.also_retrieved}</b>"]
        for group in by_article(answer.also_retrieved):
            paragraphs = ", ".join(str(p.paragraph) for p in group)
            lines.append(f"• {e(group[0].title)} · {labels.paragraph} {paragraphs}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _title_lines(articles: Sequence[Article], limit: int | None = None) -> list[str]:
    shown = list(articles if limit is None else articles[:limit])
    return [f"• {e(article.title or article.article_id)}" for article in shown]


def format_articles(articles: Sequence[Article], total: int | None = None) -> str:
    """/articles: the titles of `articles`, the first of `total` (default: all of them)."""
    total = len(articles) if total is None else total
    if not total:
        return "Chưa có bài báo nào được lập chỉ mục. / No articles are indexed yet."
    header = f"<b>Các bài báo đã có / Indexed articles ({total:,})</b>"
    lines = _title_lines(articles, ARTICLE_TITLES)
    more = total - len(lines)
    if more > 0:
        lines.append(f"… và {more:,} bài khác / and {more:,} more")
    return header + "\n" + "\n".join(lines)


def format_help(articles: Sequence[Article], bot_username: str | None = None, total: int | None = None) -> str:
    """/start and /help: what the bot knows and how to ask, in Vietnamese then English."""
    mention = f"@{e(bot_username)}" if bot_username else "the bot"
    mention_vi = f"@{e(bot_username)}" if bot_username else "bot"
    titles = _title_lines(articles, HELP_TITLES)
    more = (len(articles) if total is None else total) - len(titles)
    if more > 0:
        titles.append(f"… và {more:,} bài khác / and {more:,} more: /articles")
    known = "\n".join(titles) if titles else "(chưa có bài báo nào / no articles yet)"
    vietnamese = (
        "<b>Xin chào!</b> Tôi trả lời câu hỏi dựa trên các bài báo sau, kèm đoạn trích làm nguồn:\n"
        f"{known}\n\n"
        "Hãy gửi câu hỏi bằng tiếng Việt (có dấu hoặc không dấu) hoặc tiếng Anh, ví dụ: "
        "<i>Nga yêu cầu NATO những gì?</i>\n"
        f"Trong nhóm, hãy nhắc {mention_vi} hoặc trả lời tin nhắn của tôi.\n"
        "Có thể hỏi tiếp, ví dụ: <i>Ông ấy nói gì?</i> – câu hỏi được đọc cùng câu hỏi trước; "
        "trả lời một câu trả lời cũ để hỏi tiếp về nó.\n"
        "/new – bắt đầu cuộc trò chuyện mới\n"
        "/sources – đoạn trích đầy đủ của câu trả lời gần nhất\n"
        "/articles – danh sách bài báo\n"
        "/help – hướng dẫn này"
    )
    english = (
        "<b>Hello!</b> I answer questions from the news articles listed above and show the passages "
        "each answer comes from.\n"
        "Ask in Vietnamese or English, for example: <i>What did Russia demand from NATO?</i>\n"
        f"In a group, mention {mention} or reply to one of my messages.\n"
        "Follow-up questions (<i>What about Britain?</i>) are read with your earlier one; reply to an "
        "older answer to continue from it.\n"
        "/new – start a new conversation\n"
        "/sources – full passages of the last answer\n"
        "/articles – the indexed articles\n"
        "/help – this message"
    )
    return f"{vietnamese}\n\n{english}"


# -- plain text fallback -------------------------------------------------------------------------

_TAG = re.compile(r"<[^>]*>")


def html_to_plain(text: str) -> str:
    """What to send when Telegram rejects our HTML: the same words without markup."""
    return html.unescape(_TAG.sub("", text))


# -- splitting -----------------------------------------------------------------------------------

_TOKENS = re.compile(
    r"(?P<tag><[^<>]*>)"
    r"|(?P<atom>&(?:#\d+|#x[0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);|\[\d+\])"
    r"|(?P<space>\s+)"
    r"|(?P<word>[^\s<&\[]+|[<&\[])"
)
_TAG_NAME = re.compile(r"</?\s*([A-Za-z][A-Za-z0-9-]*)")
_SENTENCE_END = tuple(".!?…:;”\")")
MAX_WORD = 64  # longer runs without spaces (URLs, garbage) are cut between characters

# How good a place to cut, after a unit: higher is better.
PARAGRAPH, LINE, SENTENCE, WORD, ANYWHERE, NEVER = 5, 4, 3, 2, 1, 0


@dataclass(frozen=True)
class _Unit:
    text: str
    kind: str  # tag-open, tag-close, atom, space, word
    name: str = ""  # tag name, for tags
    size: int = 0  # UTF-16 code units, the way Telegram counts


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _unit(text: str, kind: str, name: str = "") -> _Unit:
    return _Unit(text, kind, name, utf16_len(text))


def _units(markup: str) -> list[_Unit]:
    units: list[_Unit] = []
    for match in _TOKENS.finditer(markup):
        kind = match.lastgroup or "word"
        text = match.group()
        if kind == "tag":
            name = _TAG_NAME.match(text)
            tag_name = name.group(1).lower() if name else ""
            units.append(_unit(text, "tag-close" if text.startswith("</") else "tag-open", tag_name))
        elif kind == "word":
            units.extend(_unit(text[i : i + MAX_WORD], "word") for i in range(0, len(text), MAX_WORD))
        else:
            units.append(_unit(text, kind))
    return units


def _break_after(units: Sequence[_Unit], i: int) -> int:
    """How good a cut between units[i] and units[i + 1] is."""
    unit = units[i]
    following = units[i + 1] if i + 1 < len(units) else None
    if unit.kind == "tag-open":
        return NEVER  # a cut here leaves an empty element behind
    if following is not None and following.kind == "atom" and following.text.startswith("["):
        return NEVER  # a citation mark stays with the sentence it supports
    if unit.kind == "space":
        if "\n\n" in unit.text:
            return PARAGRAPH
        if "\n" in unit.text:
            return LINE
        previous = units[i - 1] if i > 0 else None
        if previous is not None and (
            (previous.kind == "word" and previous.text.endswith(_SENTENCE_END))
            or (previous.kind == "atom" and previous.text.startswith("["))
        ):
            return SENTENCE
        return WORD
    if unit.kind == "tag-close" and following is not None and following.kind == "space":
        return NEVER  # better to cut after the whitespace that follows
    return ANYWHERE


def _apply(stack: tuple[_Unit, ...], unit: _Unit) -> tuple[_Unit, ...]:
    if unit.kind == "tag-open":
        return stack + (unit,)
    if unit.kind == "tag-close":
        for depth in range(len(stack) - 1, -1, -1):
            if stack[depth].name == unit.name:
                return stack[:depth]
    return stack


def _closers(stack: Sequence[_Unit]) -> str:
    return "".join(f"</{unit.name}>" for unit in reversed(stack))


def visible_text(markup: str) -> str:
    return html.unescape(_TAG.sub("", markup))


def split_html(markup: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Split Telegram HTML into messages of at most `limit` UTF-16 units each.

    Cuts on paragraph boundaries when it can, then lines, sentences, words; never inside a tag, an
    entity or a [n] citation mark. Tags open at a cut are closed at the end of one part and
    reopened at the start of the next, so every part is valid HTML on its own. Parts with no
    visible text are dropped: Telegram refuses empty messages.
    """
    markup = markup.strip()
    if not markup:
        return []
    if utf16_len(markup) <= limit:
        return [markup] if visible_text(markup).strip() else []
    units = _units(markup)
    breaks = [_break_after(units, i) for i in range(len(units))]
    parts: list[str] = []
    stack: tuple[_Unit, ...] = ()
    i = 0
    while i < len(units):
        while i < len(units) and units[i].kind == "space":
            i += 1  # a part never starts with whitespace
        if i >= len(units):
            break
        # A word too long for what the reopened tags leave of a part is cut between characters,
        # as MAX_WORD cuts any long word: to the room there is.
        room = limit - sum(u.size for u in stack) - utf16_len(_closers(stack))
        if units[i].kind == "word" and units[i].size > room:
            head = _word_head(units[i].text, room)
            if head:
                units[i : i + 1] = [_unit(head, "word"), _unit(units[i].text[len(head) :], "word")]
                breaks[i : i + 1] = [ANYWHERE, breaks[i]]
        end, end_stack = _fit(units, breaks, i, stack, limit)
        body = "".join(u.text for u in stack) + "".join(u.text for u in units[i:end])
        part = body.rstrip() + _closers(end_stack)
        if visible_text(part).strip():
            parts.append(part)
        i, stack = end, end_stack
    return parts


def _word_head(word: str, room: int) -> str:
    """The longest start of `word` that takes at most `room` UTF-16 units (whole characters)."""
    size = 0
    for n, character in enumerate(word):
        size += utf16_len(character)
        if size > room:
            return word[:n]
    return word


def _fit(
    units: Sequence[_Unit], breaks: Sequence[int], start: int, stack: tuple[_Unit, ...], limit: int
) -> tuple[int, tuple[_Unit, ...]]:
    """Where the part that starts at `start` ends: the best cut among those that fit."""
    length = sum(u.size for u in stack)
    current = stack
    best: tuple[int, int, tuple[_Unit, ...]] | None = None  # (quality, end, stack at end)
    j = start
    while j < len(units):
        unit = units[j]
        after = _apply(current, unit)
        # The cost only grows along a part (a closing tag costs what its closer would have),
        # so every earlier cut that fitted still fits.
        if length + unit.size + utf16_len(_closers(after)) > limit:
            break
        length += unit.size
        current = after
        j += 1
        if j < len(units) and (best is None or breaks[j - 1] >= best[0]):
            best = (breaks[j - 1], j, current)
    if j == len(units):
        return j, current
    if j == start:
        raise ValueError(f"a limit of {limit} cannot hold even one piece of this message")
    if best is None or best[0] == NEVER:
        return j, current
    return best[1], best[2]


def split_blocks(blocks: Iterable[str], limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Convenience: paragraphs joined by blank lines, then split."""
    return split_html("\n\n".join(b for b in blocks if b.strip()), limit)
