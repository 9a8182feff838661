"""Turn a news page's raw text into the article's own body.

Real pages carry photo captions, teasers of other stories, a related-stories tail, bylines and
repeated paragraphs. None of that is the article's content, so none of it may ever be cited; we
drop it from the body and keep it, with the reason, on the `Article` for inspection.
"""

from __future__ import annotations

import re

from index.models import Article, RemovedPart
from index.text import canonical, fold, jaccard, nfc, syllables

# A line that starts the related-stories tail: it and everything after it is not the article.
_TAIL_HEADINGS = {
    "tin cung chuyen muc",
    "tin lien quan",
    "bai lien quan",
    "xem them",
    "doc them",
    "tin khac",
    "cac tin khac",
    "related stories",
    "related news",
    "read more",
}
_PHOTO_CREDIT_RE = re.compile(r"\((?:ảnh|nguồn ảnh|nguồn|photo|video)\s*:[^)]*\)\s*\|?\s*$", re.IGNORECASE)
# Inline image markers left by scrapers: "... ảnh 1Thủ tướng ..." (no space before the caption).
# The caption starts a capitalised word right after the number; "hình ảnh 2D" is not a marker.
_IMAGE_MARKER_RE = re.compile(r"\bảnh \d+(?=[A-ZĐÀ-Ỹ][a-zđà-ỹ])")
_TEASER_RE = re.compile(r"(?:\.\.\.|…)\s*\|\s*$")
_BYLINE_RE = re.compile(r"^\([^()]{2,60}\)$")
_LINK_RE = re.compile(r"^\[[^\[\]]+\]$")
_END_MARK_RE = re.compile(r"\./\.$")  # Vietnamese wire copy ends with "./."
_SPACES_RE = re.compile(r"[ \t\u00a0]+")
_SENTENCE_END = tuple('.!?…"”\'’)»:;,')  # a line ending so continues; it is no headline

MAX_TITLE_CHARS = 200
DERIVED_TITLE_CHARS = 90
DUPLICATE_JACCARD = 0.9


def _key(line: str) -> str:
    return " ".join(syllables(fold(canonical(line))))


def _looks_like_headline(line: str) -> bool:
    return 0 < len(line) <= MAX_TITLE_CHARS and not line.endswith(_SENTENCE_END)


def _derive_title(body: str) -> str:
    first = re.split(r"(?<=[.!?…])\s", body, maxsplit=1)[0].strip()
    if len(first) <= DERIVED_TITLE_CHARS:
        return first.rstrip(".")
    cut = first[:DERIVED_TITLE_CHARS].rsplit(" ", 1)[0]
    # Never leave a quotation opened and not closed: end the title before it.
    for opening, closing in (("“", "”"), ("«", "»"), ("(", ")")):
        if cut.count(opening) > cut.count(closing):
            cut = cut[: cut.rindex(opening)].rstrip()
    if cut.count('"') % 2:
        cut = cut[: cut.rindex('"')].rstrip()
    return cut.rstrip(",;:") + "…"


def clean_article(article_id: str, raw: str, source: str = "") -> Article:
    """Clean one decoded article. The result may have an empty body; the caller decides."""
    text = nfc(raw.replace("\r\n", "\n").replace("\r", "\n"))
    lines = text.split("\n")

    title = ""
    first_idx = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first_idx is not None:
        first = _SPACES_RE.sub(" ", lines[first_idx]).strip()
        followed_by_blank = first_idx + 1 < len(lines) and not lines[first_idx + 1].strip()
        rest = lines[first_idx + 1 :]
        # A one-line file is the article itself, not a title over nothing.
        if _looks_like_headline(first) and (followed_by_blank or len(first.split()) <= 25) and any(
            line.strip() for line in rest
        ):
            title = first
            lines = rest

    kept: list[str] = []
    removed: list[RemovedPart] = []
    seen_keys: list[tuple[str, list[str]]] = []
    if title:
        seen_keys.append((_key(title), _key(title).split()))

    for index, raw_line in enumerate(lines):
        line = _SPACES_RE.sub(" ", raw_line).strip()
        if not line:
            continue
        key = _key(line)
        if key in _TAIL_HEADINGS:
            tail = "\n".join(l.strip() for l in lines[index:] if l.strip())
            removed.append(RemovedPart("related-stories tail", tail))
            break
        if _TEASER_RE.search(line):
            removed.append(RemovedPart("teaser of another story", line))
            # The teaser's headline is the short line just before it.
            if kept and _looks_like_headline(kept[-1]):
                removed.append(RemovedPart("teaser headline", kept.pop()))
                seen_keys.pop()
            continue
        if _PHOTO_CREDIT_RE.search(line) or _IMAGE_MARKER_RE.search(line):
            removed.append(RemovedPart("photo caption", line))
            continue
        if line.endswith("|"):
            removed.append(RemovedPart("caption", line))
            continue
        if _LINK_RE.match(line):
            removed.append(RemovedPart("link to another story", line))
            continue
        if _BYLINE_RE.match(line):
            removed.append(RemovedPart("byline", line))
            continue
        tokens = key.split()
        if not tokens:
            removed.append(RemovedPart("no words", line))
            continue
        if any(key == k or (len(tokens) >= 8 and jaccard(tokens, t) >= DUPLICATE_JACCARD) for k, t in seen_keys):
            removed.append(RemovedPart("duplicate paragraph", line))
            continue
        line = _END_MARK_RE.sub(".", line)
        kept.append(line)
        seen_keys.append((key, tokens))

    # A short headline-like line left at the very end is a byline or sign-off ("Minh Anh").
    while kept and _looks_like_headline(kept[-1]) and len(kept[-1].split()) <= 5:
        removed.append(RemovedPart("byline", kept.pop()))

    body = "\n\n".join(kept)
    spans: list[tuple[int, int]] = []
    pos = 0
    for paragraph in kept:
        spans.append((pos, pos + len(paragraph)))
        pos += len(paragraph) + 2
    if not title and body:
        title = _derive_title(body)
    return Article(
        article_id=article_id,
        title=title,
        text=body,
        source=source,
        paragraph_spans=tuple(spans),
        removed=tuple(removed),
    )
