"""Turn a news page's raw text into the article's own body.

Real pages carry photo captions, teasers of other stories, a related-stories tail, bylines and
repeated paragraphs. None of that is the article's content, so none of it may ever be cited; we
drop it from the body and keep it, with the reason, on the `Article` for inspection.
"""

from __future__ import annotations

import re
import zlib

from newsqa.index.models import Article, RemovedPart
from newsqa.index.text import canonical, fold, nfc, syllables

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
NEAR_DUPLICATE_MIN_WORDS = 8  # shorter paragraphs count as repeats only when they are the same
# Near repeats are looked for among this many latest paragraphs under each word: a bound on the work
# per paragraph when a text repeats a handful of words over and over (generated or list-like files).
NEAR_DUPLICATE_CANDIDATES = 32
# A sign-off at the very end ("Minh Anh", "Nguyễn Văn A"): one short line of capitalised words.
_SIGN_OFF_MAX_WORDS = 4


class _SeenParagraphs:
    """The paragraphs kept so far, to tell a repeat from a new one in constant time per paragraph.

    Same text is a set lookup. A near repeat (word-set Jaccard ≥ DUPLICATE_JACCARD) must share one of
    the first |words| - ceil(J × |words|) + 1 words of both sets, ordered the same way (prefix
    filtering), so only paragraphs indexed under those words are compared: a build's time grows with
    the article's size, not its square (a 100k-line file took over 9 minutes pairwise)."""

    def __init__(self) -> None:
        self._keys: dict[str, int] = {}  # key -> paragraphs kept with it (a teaser's headline may go again)
        self._by_word: dict[str, list[int]] = {}
        self._sets: list[frozenset[str]] = []
        self._order: list[str] = []  # keys added, for `pop`

    @staticmethod
    def _prefix(words: frozenset[str]) -> list[str]:
        keep = len(words) - int(-(-DUPLICATE_JACCARD * len(words) // 1)) + 1
        # A checksum, not hash(): the order (and so which paragraphs are compared) is the same in
        # every process, so the same article always cleans the same way.
        return sorted(words, key=lambda w: (zlib.crc32(w.encode()), w))[:keep]

    def repeats(self, key: str, tokens: list[str]) -> bool:
        if key in self._keys:
            return True
        if len(tokens) < NEAR_DUPLICATE_MIN_WORDS:
            return False
        words = frozenset(tokens)
        candidates = {i for w in self._prefix(words) for i in self._by_word.get(w, ())[-NEAR_DUPLICATE_CANDIDATES:]}
        return any(len(words & self._sets[i]) / len(words | self._sets[i]) >= DUPLICATE_JACCARD for i in candidates)

    def add(self, key: str, tokens: list[str]) -> None:
        self._keys[key] = self._keys.get(key, 0) + 1
        self._order.append(key)
        words = frozenset(tokens)
        self._sets.append(words)
        if len(tokens) >= NEAR_DUPLICATE_MIN_WORDS:
            for w in self._prefix(words):
                self._by_word.setdefault(w, []).append(len(self._sets) - 1)

    def pop(self) -> None:
        """Forget the paragraph added last (a teaser's headline, removed after the fact)."""
        key = self._order.pop()
        self._keys[key] -= 1
        if not self._keys[key]:
            del self._keys[key]
        index = len(self._sets) - 1
        for w in self._prefix(self._sets.pop()):
            rows = self._by_word.get(w)
            if rows and rows[-1] == index:
                rows.pop()


MAX_REMOVED_SHARE = 0.5  # cleaning may take at most this share of an article's own text…
MIN_CHARS_TO_KEEP_WHOLE = 400  # …of a text this long; a shorter one that is all noise is not kept whole


def distrusted_share(article: Article, raw: str) -> float | None:
    """The share of `raw` cleaning took from `article` when it is so much of a long text that the
    cleaning is more likely wrong about the page than right (keep the text whole), else None.
    Files and web pages alike."""
    share = removed_share(article)
    return share if share > MAX_REMOVED_SHARE and len(raw) >= MIN_CHARS_TO_KEEP_WHOLE else None


def removed_share(article: Article) -> float:
    """How much of the article's own text cleaning took out: the related-stories tail and repeats
    are not counted (they are not the article's, or it keeps a copy)."""
    lost = sum(len(p.text) for p in article.removed if p.reason not in ("related-stories tail", "duplicate paragraph"))
    return lost / (lost + len(article.text)) if lost else 0.0


def _is_sign_off(line: str) -> bool:
    words = line.split()
    return (
        0 < len(words) <= _SIGN_OFF_MAX_WORDS
        and not line.endswith(_SENTENCE_END)
        and all(w[0].isupper() and w.isalpha() for w in words)
    )


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


def clean_article(article_id: str, raw: str, source: str = "", remove_noise: bool = True) -> Article:
    """Clean one decoded article. The result may have an empty body; the caller decides.
    `remove_noise=False` keeps every non-empty line (spaces normalised, the title still found)."""
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
    seen = _SeenParagraphs()
    if title:
        seen.add(_key(title), _key(title).split())

    for index, raw_line in enumerate(lines):
        line = _SPACES_RE.sub(" ", raw_line).strip()
        if not line:
            continue
        if not remove_noise:
            kept.append(line)
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
                seen.pop()
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
        if seen.repeats(key, tokens):
            removed.append(RemovedPart("duplicate paragraph", line))
            continue
        line = _END_MARK_RE.sub(".", line)
        kept.append(line)
        seen.add(key, tokens)

    # One short line of capitalised words left at the very end is a sign-off ("Minh Anh"); short
    # lines of other shapes ("Hà Nội 38 độ", the lines of a poem) are the article's own.
    if remove_noise and len(kept) > 1 and _is_sign_off(kept[-1]):
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
