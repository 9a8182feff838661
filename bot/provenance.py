"""Where a cited story was published, as the front ends write it under its title: "VnExpress ·
2024-03-02 · https://…", and the other sites that ran the same story. Plain text: each front end
escapes or links it as its medium needs."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from newsqa.retrieval.models import Publication

SEPARATOR = " · "


def web_link(url: str | None) -> str | None:
    """`url` when a front end may link to it: http or https only (a page's canonical link could
    name a javascript: or data: URL, which a link must never carry)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def published_day(published: str | None) -> str | None:
    """The day of an ISO 8601 date or date-time ("2024-03-02T08:40:00+07:00" → "2024-03-02"): the
    time of day adds little under a source, and its zone would need explaining."""
    return published[:10] if published else None


def byline(source: str | None, published: str | None, url: str | None = None) -> str | None:
    """"source · date · url" with what is known; None for a plain file, which says none of it."""
    parts = [part for part in (source, published_day(published), url) if part]
    return SEPARATOR.join(parts) or None


def publisher(publication: Publication) -> str:
    """How a reader knows another copy of a story: its site, else its URL's host, else its id."""
    if publication.source:
        return publication.source
    host = urlsplit(publication.url).hostname if publication.url else None
    return host or publication.article_id


def publishers(publications: Sequence[Publication]) -> list[tuple[str, str | None]]:
    """(name, URL) of each distinct publisher of `publications`, in order; one site that ran a story
    twice is named once, with its first URL."""
    named: dict[str, str | None] = {}
    for publication in publications:
        named.setdefault(publisher(publication), publication.url)
    return list(named.items())


def plain_publishers(publications: Sequence[Publication]) -> str:
    """"tin-a.vn (https://…), tin-c.vn" for a terminal or a log."""
    return ", ".join(f"{name} ({url})" if url else name for name, url in publishers(publications))
