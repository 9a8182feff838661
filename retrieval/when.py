"""When a question asks about: "hôm nay", "tuần trước", "mới nhất", "in November", "ngày 18/11".

News repeats its subjects (a gold price every day, a match every week), so the same words find
every day's story and only the date tells them apart. `read_when` turns a question's time words
into a window of publication dates, or a wish for the newest story; `by_date` re-ranks the
search's hits with it. Vietnamese is read folded, so a question typed without diacritics reads the
same. Pure functions: "today" is passed in.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

from newsqa.index.text import fold, nfc
from newsqa.retrieval.search import ScoredPassage

MONTHS_EN = {
    name: number
    for number, names in enumerate(
        (("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
         ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"), ("october", "oct"),
         ("november", "nov"), ("december", "dec")),
        start=1,
    )
    for name in names
}


@dataclass(frozen=True)
class When:
    """Publication dates a question asks about: a window (both ends included) and/or the newest."""

    start: date | None = None
    end: date | None = None
    latest: bool = False
    words: str = ""  # the words that said it (folded), for a person reading why
    span: tuple[int, int] | None = None  # where they are in the question as normalised (NFC)

    def without_words(self, question: str) -> str:
        """`question` (NFC) without the time words: what it asks about, for deciding whether the
        articles answer it ("hôm nay" and "18/11" are not in the story that answers "Giá vàng
        hôm nay?"). The question itself when it does not tell where they are."""
        if self.span is None:
            return question
        start, end = self.span
        return " ".join(f"{question[:start]} {question[end:]}".split())


@dataclass(frozen=True)
class WhenOptions:
    """How much a date moves a passage (fused scores run 0-1); chosen on bench/data/time_questions.json."""

    in_window: float = 0.3  # added to passages of articles published inside the asked window
    latest: float = 0.3  # the newest dated article among the hits gets this much, the oldest none
    tie_break: float = 0.005  # newer by this much at most when the question names no time: near-ties only
    pool: int = 50  # hits re-ranked


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _month(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _past(year: int | None, month: int, day: int | None, today: date) -> tuple[int, int, int | None] | None:
    """A date or month the question names without its year: the latest one not after today."""
    if not 1 <= month <= 12:
        return None
    if year is None:
        year = today.year
        if (month, day or 1) > (today.month, today.day):
            year -= 1
    if day is not None:
        try:
            date(year, month, day)
        except ValueError:
            return None
    return year, month, day


def _dated(year: int | None, month: int, day: int | None, today: date, found: re.Match[str]) -> When | None:
    named = _past(year, month, day, today)
    if named is None:
        return None
    year, month, day = named
    if day is not None:
        return When(date(year, month, day), date(year, month, day), words=found.group(0), span=found.span())
    start, end = _month(year, month)
    return When(start, end, words=found.group(0), span=found.span())


# Relative words, folded: (pattern, the window given today).
_RELATIVE: tuple[tuple[re.Pattern[str], Callable[[date], tuple[date, date]]], ...] = tuple(
    (re.compile(pattern), window)
    for pattern, window in (
        (r"\b(hom nay|today|tonight)\b", lambda d: (d, d)),
        (r"\b(hom qua|yesterday)\b", lambda d: (d - timedelta(days=1), d - timedelta(days=1))),
        (r"\b(tuan nay|this week)\b", lambda d: (_monday(d), d)),
        (r"\b(tuan truoc|tuan qua|last week)\b", lambda d: (_monday(d) - timedelta(days=7), _monday(d) - timedelta(days=1))),
        (r"\b(thang nay|this month)\b", lambda d: (d.replace(day=1), d)),
        (r"\b(thang truoc|thang qua|last month)\b",
         lambda d: _month(*((d.year, d.month - 1) if d.month > 1 else (d.year - 1, 12)))),
        (r"\b(nam nay|this year)\b", lambda d: (date(d.year, 1, 1), d)),
        (r"\b(nam ngoai|nam truoc|nam qua|last year)\b", lambda d: (date(d.year - 1, 1, 1), date(d.year - 1, 12, 31))),
    )
)
_LATEST = re.compile(
    r"\b(moi nhat|gan day nhat|gan nhat|gan day|latest|newest|most recent|recent|recently|lately)\b"
)
_VI_DATE = re.compile(r"\b(?:ngay\s+)?(\d{1,2})/(\d{1,2})(?:/(\d{4}))?\b")
_VI_MONTH = re.compile(r"\bthang\s+(\d{1,2})(?:\s*/\s*(\d{4})|\s+nam\s+(\d{4}))?\b")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_YEAR = re.compile(r"\b(?:nam|in)\s+((?:19|20)\d{2})\b")
_EN_MONTHS = "|".join(sorted(MONTHS_EN, key=len, reverse=True))
_EN_DAY_MONTH = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+({_EN_MONTHS})\b(?:\s*,?\s*(\d{{4}}))?")
_EN_MONTH_DAY = re.compile(rf"\b({_EN_MONTHS})\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:\s*,?\s*(\d{{4}}))?")
_EN_MONTH = re.compile(rf"\b(?:in|during|since|of)\s+({_EN_MONTHS})\b(?:\s*,?\s*(\d{{4}}))?")


def read_when(question: str, today: date) -> When | None:
    """The publication dates `question` asks about, or None when it names no time."""
    normalised = nfc(question)
    text = fold(normalised).lower()
    # Folding maps character to character, so a match's place in `text` is its place in the
    # question; where it did not (a rare ligature), the words are known but not their place.
    aligned = len(text) == len(normalised)
    latest = _LATEST.search(text)
    for pattern, window in _RELATIVE:
        if found := pattern.search(text):
            start, end = window(today)
            return When(start, end, latest=bool(latest), words=found.group(0), span=found.span() if aligned else None)
    named = _named_date(text, today)
    if named is not None:
        return replace(named, latest=bool(latest), span=named.span if aligned else None)
    if latest:
        return When(latest=True, words=latest.group(0), span=latest.span() if aligned else None)
    return None


def _named_date(text: str, today: date) -> When | None:
    if found := _ISO_DATE.search(text):
        return _dated(int(found[1]), int(found[2]), int(found[3]), today, found)
    if found := _VI_DATE.search(text):
        return _dated(int(found[3]) if found[3] else None, int(found[2]), int(found[1]), today, found)
    if found := _EN_DAY_MONTH.search(text):
        return _dated(int(found[3]) if found[3] else None, MONTHS_EN[found[2]], int(found[1]), today, found)
    if found := _EN_MONTH_DAY.search(text):
        return _dated(int(found[3]) if found[3] else None, MONTHS_EN[found[1]], int(found[2]), today, found)
    if found := _VI_MONTH.search(text):
        year = found[2] or found[3]
        return _dated(int(year) if year else None, int(found[1]), None, today, found)
    if found := _EN_MONTH.search(text):
        return _dated(int(found[2]) if found[2] else None, MONTHS_EN[found[1]], None, today, found)
    if found := _YEAR.search(text):
        year = int(found[1])
        return When(date(year, 1, 1), date(year, 12, 31), words=found.group(0), span=found.span())
    return None


def published_date(value: str | None) -> date | None:
    """The date of an ISO 8601 date or date-time ("2026-12-10", "2026-12-10T08:30:00+07:00")."""
    if not value or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def by_date(
    hits: Sequence[ScoredPassage],
    published: Callable[[int], date | None],
    when: When | None,
    options: WhenOptions,
    k: int,
) -> list[ScoredPassage]:
    """The hits re-ranked by publication date, best k. `published(row)`: the date of the article a
    hit's passage is from (None when unknown: such a passage keeps its score). Without `when`, the
    newer of two near-tied passages goes first; with hits that carry no date at all, nothing moves."""
    dates = {h.row: published(h.row) for h in hits}
    known = sorted({d for d in dates.values() if d is not None})
    if not known:
        return list(hits[:k])
    rank = {d: i / (len(known) - 1) if len(known) > 1 else 1.0 for i, d in enumerate(known)}  # newest 1, oldest 0

    def moved(hit: ScoredPassage) -> float:
        day = dates[hit.row]
        if day is None:
            return 0.0
        if when is None:
            return options.tie_break * rank[day]
        bonus = 0.0
        if when.start is not None and when.end is not None and when.start <= day <= when.end:
            bonus += options.in_window
        if when.latest:
            bonus += options.latest * rank[day]
        return bonus

    scored = [replace(h, score=h.score + moved(h)) for h in hits]
    return sorted(scored, key=lambda h: -h.score)[:k]
