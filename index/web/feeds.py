"""Reading an RSS or Atom document into the story links it lists.

feedparser reads both families (RSS 0.9x/1.0/2.0, Atom 0.3/1.0) and the malformed feeds real sites
serve; this module only turns its result into the few fields the product uses: each item's link
(absolute, so it can be fetched), title and publication time.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import io
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser


class NotAFeedError(ValueError):
    """The document is not an RSS or Atom feed; the message is one sentence naming the URL."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(message)
        self.url = url


@dataclass(frozen=True)
class FeedItem:
    link: str  # absolute http(s) URL of the story
    title: str | None
    published: str | None  # ISO 8601 date-time as the feed gives it (its own offset kept), else None


@dataclass(frozen=True)
class Feed:
    title: str | None
    items: list[FeedItem]


def parse_feed(text: str, url: str) -> Feed:
    """The feed's title and its items that have a link, in the feed's order.

    `text` is the already decoded document and `url` where it was fetched from (relative links are
    resolved against it). Raises NotAFeedError when the document is not a feed (an HTML page, JSON...).
    """
    parsed = feedparser.parse(
        # A stream, never the str itself: feedparser fetches a str that looks like a URL and opens
        # one that names an existing file.
        io.BytesIO(text.encode("utf-8")),
        # The text is decoded already: the charset here overrides an XML declaration that names
        # the encoding the bytes had on the wire. content-location is the base of relative links.
        response_headers={"content-type": "application/xml; charset=utf-8", "content-location": url},
        sanitize_html=False,
    )
    if not parsed.get("version"):
        raise NotAFeedError(url, f"{url} is not an RSS or Atom feed.")
    items: list[FeedItem] = []
    seen: set[str] = set()
    for entry in parsed.entries:
        link = _link(entry, url)
        if link is None or link in seen:
            continue
        seen.add(link)
        items.append(FeedItem(link=link, title=_text(entry.get("title")), published=_published(entry)))
    return Feed(title=_text(parsed.feed.get("title")), items=items)


def _link(entry: Any, base: str) -> str | None:
    raw = entry.get("link")
    if not raw:
        # Atom entries may carry only <link rel="alternate"> among others; feedparser puts the
        # alternate one in `link`, but an entry whose links all have other rels has none.
        for candidate in entry.get("links", []):
            if candidate.get("rel", "alternate") == "alternate" and candidate.get("href"):
                raw = candidate["href"]
                break
    if not raw:
        guid = entry.get("id")
        # RSS's <guid isPermaLink="true"> is the story's URL when no <link> is given.
        if guid and entry.get("guidislink"):
            raw = guid
    if not raw:
        return None
    link = urljoin(base, raw.strip())
    if urlsplit(link).scheme not in ("http", "https"):
        return None
    return link


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value or None


def _published(entry: Any) -> str | None:
    """The entry's publication (else update) time in ISO 8601, keeping the offset the feed wrote.

    feedparser's *_parsed fields are normalised to UTC; the raw string is read first so a story
    published at 08:00 +07:00 keeps that reading, and the UTC form is the fallback for date formats
    only feedparser understands.
    """
    for key in ("published", "updated", "created"):
        raw = entry.get(key)
        if isinstance(raw, str) and raw.strip():
            moment = _parse_date(raw.strip())
            if moment is not None:
                return moment
        parsed = entry.get(f"{key}_parsed")
        if isinstance(parsed, time.struct_time):
            return dt.datetime(*parsed[:6], tzinfo=dt.UTC).isoformat()
    return None


def _parse_date(raw: str) -> str | None:
    if len(raw) == 10:
        try:
            return dt.date.fromisoformat(raw).isoformat()  # a day with no time stays a day
        except ValueError:
            pass
    try:
        return dt.datetime.fromisoformat(raw.replace("Z", "+00:00")).isoformat()  # Atom, RFC 3339
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(raw)  # RSS, RFC 822
    except (TypeError, ValueError, IndexError):
        return None
    return moment.isoformat()
