"""A news page's HTML → an `Article`: the story's own text and what the page says of itself.

trafilatura finds the article body (navigation, ads, related-story blocks and most captions go) and
the page's metadata; the product's own noise removal (index/clean.py) then runs on its text, as on a
file, so a caption or a teaser the extractor kept goes the same way. The id comes from the story's
canonical URL, so the same story fetched again, or by another link to it, updates one article.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import replace
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import lxml.html
import trafilatura

from newsqa.index.clean import clean_article, distrusted_share
from newsqa.index.models import Article
from newsqa.index.text import fold, nfc

MAX_SLUG_CHARS = 60
# Query parameters that only say how a reader arrived (campaigns, ad clicks, share buttons): the
# same story with any of them is the same story.
TRACKING_PARAMS = re.compile(r"^(utm_\w+|fbclid|gclid|dclid|msclkid|zarsrc|gidzl|ref|referer|refsrc|src|cmpid|ito|itm_\w+|_ga)$", re.IGNORECASE)
# The dateline a Vietnamese news page prints under its headline ("Thứ ba, 14/5/2024, 08:30 (GMT+7)",
# "14/05/2024 08:30 GMT+7", "Chủ nhật, 12/05/2024 - 10:00"): page furniture, not a sentence of the story.
_DATELINE_RE = re.compile(
    r"^(?:(?:thứ\s*(?:hai|ba|tư|năm|sáu|bảy|[2-7])|chủ\s*nhật)\s*,?\s*)?"
    r"\d{1,2}[/-]\d{1,2}[/-]\d{2,4}\s*[,-]?\s*(?:\d{1,2}[:h]\d{2}\s*)?(?:\(?\s*gmt\s*[+-]\s*\d{1,2}\s*\)?)?\.?$",
    re.IGNORECASE,
)
# Fewer words than this is a section front, a gallery or a video page with a line under it, not a story.
MIN_ARTICLE_WORDS = 25


def extract_article(html: str, url: str, source: str | None = None) -> Article | None:
    """The article on a page fetched from `url` (after redirects), or None when the page holds no
    article text. `source` is where it was read from (default `url`)."""
    page = _page_facts(html, url)
    found = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=False,
        include_images=False,
        include_formatting=False,
        deduplicate=False,
    )
    if found is None:
        return None
    meta = found.as_dict() if hasattr(found, "as_dict") else dict(found)
    body = meta.get("text") or ""
    title = _one_line(meta.get("title")) or page["og_title"] or ""
    lines = [line.strip() for line in body.split("\n") if line.strip()]
    lines = _without_furniture(lines, title)
    if not lines:
        return None
    canonical = page["canonical"] or clean_url(url)
    article_id = article_id_for_url(canonical)
    raw = (title + "\n\n" if title else "") + "\n".join(lines)
    where = clean_url(source or url)
    article = clean_article(article_id, raw, source=where)
    if distrusted_share(article, raw) is not None:  # as for a file: kept whole
        article = clean_article(article_id, raw, source=where, remove_noise=False)
    if len(article.text.split()) < MIN_ARTICLE_WORDS:
        return None
    return replace(
        article,
        url=canonical,
        site=_one_line(meta.get("sitename")) or _host(canonical),
        published=page["published"] or _iso_date(meta.get("date")),
        author=_one_line(meta.get("author")),
        language=page["language"] or _language(meta.get("language")),
    )


# -- ids and URLs ---------------------------------------------------------------------------------


def clean_url(url: str) -> str:
    """`url` without its fragment and tracking parameters: the link to show for a story."""
    parts = urlsplit(url.strip())
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not TRACKING_PARAMS.match(k)]
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", urlencode(query), ""))


def url_key(url: str) -> str:
    """What identifies a story's URL: host (lower case, without 'www.' and a default port), path and
    the remaining query sorted; not the scheme, so a site moving to https keeps its ids."""
    parts = urlsplit(clean_url(url))
    host = _host(url)
    port = parts.port
    if port and not (parts.scheme == "http" and port == 80 or parts.scheme == "https" and port == 443):
        host = f"{host}:{port}"
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return f"{host}{parts.path or '/'}" + (f"?{query}" if query else "")


def article_id_for_url(url: str) -> str:
    """A stable, readable, URL-safe id: '<host>--<last path segment as a slug>-<8 hex of the URL>'.
    The hash keeps two stories with one slug apart; the rest lets a person see what it is."""
    key = url_key(url)
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:8]
    host = re.sub(r"[^a-z0-9.-]+", "-", key.split("/", 1)[0])
    segments = [s for s in urlsplit(clean_url(url)).path.split("/") if s]
    slug = _slug(re.sub(r"\.(s?html?|php|aspx?|jsp|cms|vn)$", "", segments[-1], flags=re.IGNORECASE)) if segments else ""
    return f"{host}--{slug}-{digest}" if slug else f"{host}--{digest}"


def same_site(a: str, b: str) -> bool:
    """Whether two URLs are on one site: the same host but for 'www.', or one a subdomain of the
    other (m.example.vn and example.vn)."""
    x, y = _host(a), _host(b)
    return bool(x and y) and (x == y or x.endswith("." + y) or y.endswith("." + x))


def _host(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    return host[4:] if host.startswith("www.") else host


def _slug(text: str) -> str:
    text = fold(nfc(text))
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return text[:MAX_SLUG_CHARS].rstrip("-")


# -- what the page says of itself -----------------------------------------------------------------


def _page_facts(html: str, url: str) -> dict[str, str | None]:
    """The canonical URL (when the page names one on its own site), the publication time as the
    page writes it (trafilatura's date keeps the day only), the page's language and og:title."""
    facts: dict[str, str | None] = {"canonical": None, "published": None, "language": None, "og_title": None}
    try:
        tree = lxml.html.document_fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return facts
    candidates = tree.xpath('//link[translate(@rel, "CANONICAL", "canonical")="canonical"]/@href')
    candidates += tree.xpath('//meta[@property="og:url"]/@content')
    for href in candidates:
        absolute = urljoin(url, href.strip())
        if urlsplit(absolute).scheme in ("http", "https") and same_site(absolute, url):
            facts["canonical"] = clean_url(absolute)
            break
    for name in ("article:published_time", "og:published_time", "datePublished", "pubdate", "publishdate"):
        values = tree.xpath(f'//meta[@property="{name}" or @name="{name}" or @itemprop="{name}"]/@content')
        moment = next((m for m in map(_iso_moment, values) if m), None)
        if moment:
            facts["published"] = moment
            break
    lang = (tree.get("lang") or "").strip() or next(iter(tree.xpath('//meta[@property="og:locale"]/@content')), "")
    facts["language"] = _language(lang)
    facts["og_title"] = _one_line(next(iter(tree.xpath('//meta[@property="og:title"]/@content')), None))
    return facts


def _without_furniture(lines: list[str], title: str) -> list[str]:
    """The body without the headline trafilatura repeats from the <h1> and a dateline under it."""
    out = list(lines)
    if out and title and _fold(out[0]) == _fold(title):
        out.pop(0)
    return [line for i, line in enumerate(out) if not (i < 3 and _DATELINE_RE.match(line))]


def _fold(text: str) -> str:
    return " ".join(nfc(text).lower().split())


def _one_line(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return " ".join(nfc(value).split()) or None


def _iso_moment(value: str) -> str | None:
    """An ISO 8601 date-time or date as written (its offset kept), None for anything else."""
    value = value.strip()
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat()
    except ValueError:
        pass
    return _iso_date(value)


def _iso_date(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value.strip()[:10]).isoformat()
    except ValueError:
        return None


def _language(value: object) -> str | None:
    """ISO 639-1 from 'vi', 'vi-VN' or 'vi_VN'."""
    if not isinstance(value, str):
        return None
    code = re.split(r"[-_]", value.strip().lower(), maxsplit=1)[0]
    return code if re.fullmatch(r"[a-z]{2}", code) else None


__all__ = ["article_id_for_url", "clean_url", "extract_article", "same_site", "url_key"]
