"""The quote a source shows: the sentences the answer took from a passage, with a little of what
surrounds them, so a reader sees the claim in its place rather than the passage's first lines."""

from __future__ import annotations

from collections.abc import Sequence

CONTEXT_CHARS = 80  # of the sentence before and of the sentence after, at most
ELLIPSIS = "…"


def _tail(text: str, limit: int) -> str:
    """The end of `text`, at most `limit` characters, starting at a word."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[-limit:]
    space = cut.find(" ")
    return ELLIPSIS + (cut[space + 1 :] if 0 <= space < limit // 2 else cut).lstrip(" ,;:.–-")


def _head(text: str, limit: int) -> str:
    """The start of `text`, at most `limit` characters, ending at a word."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:.–-") + ELLIPSIS


def quote_around(text: str, sentences: Sequence[tuple[int, int]], cited: Sequence[int], context: int = CONTEXT_CHARS) -> str:
    """The sentences at positions `cited` of `text` (spans `sentences`, in order), with up to
    `context` characters of the sentence before the first and after the last, cut at words. Cited
    sentences that are not neighbours are joined by '…'. Plain text: escape it where it is shown."""
    if not cited or not sentences:
        return _head(text, 2 * context)
    chosen = sorted(set(cited))
    parts: list[str] = []
    first, last = chosen[0], chosen[-1]
    if first > 0:
        start, end = sentences[first - 1]
        parts.append(_tail(text[start:end], context))
    previous = None
    for position in chosen:
        if previous is not None and position != previous + 1:
            parts.append(ELLIPSIS)
        start, end = sentences[position]
        parts.append(" ".join(text[start:end].split()))
        previous = position
    if last + 1 < len(sentences):
        start, end = sentences[last + 1]
        parts.append(_head(text[start:end], context))
    return " ".join(parts)
