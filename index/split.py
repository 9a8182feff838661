"""Split a cleaned article into sentences and pack whole sentences into passages.

Every span is a pair of offsets into `Article.text`, so a passage's text is always exactly
`article.text[start:end]`: citations can be checked against the article and highlighted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from newsqa.index.models import Article, Passage

# Bigger passages find more answers with multilingual-e5-small (hybrid MRR@10 at the best dense
# share, measured with bench/retrieval_bench.py --max-words N on 2026-12-07; 150 / 200 / 300 words:
# ViNewsQA dev 80.0 / 81.0 / 82.2, XQuAD English questions 74.9 / 78.7 / 81.5, XQuAD Vietnamese
# 94.6 / 96.1 / 96.8): the model reads a whole passage better than pieces of it. 300 words stays
# inside its 512-token window (title and "passage: " included, at most 426 tokens on both sets), and
# answers stay short because the answer quotes sentences, not passages.
DEFAULT_MAX_WORDS = 300
DEFAULT_MIN_WORDS = 100

# End punctuation, then closing quotes/brackets, then space, then something that can start a sentence.
_BOUNDARY_RE = re.compile(r"[.!?…]+[\"”’'»)\]]*(?=\s+[\"“‘'«(\[]?[^\W_a-zà-ỹđ])", re.UNICODE)
# Words after which a period does not end a sentence (titles, places, Latin abbreviations).
_ABBREVIATIONS = frozenset(
    "tp tt ts ths pgs gs bs ks ls nxb mr mrs ms dr st co inc ltd jr sr no vs etc e.g i.e tr q p".split()
)


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def _trim(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end)


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans inside text[start:end] (one paragraph); never cuts inside a sentence."""
    end = len(text) if end is None else end
    spans: list[Span] = []
    cursor = start
    for match in _BOUNDARY_RE.finditer(text, start, end):
        before = text[cursor : match.start()].split()
        last_word = before[-1].lower().rstrip(".") if before else ""
        # "V. Putin", "TP. Hồ Chí Minh": an initial or an abbreviation, not a sentence end.
        if len(last_word) == 1 and last_word.isalpha() or last_word in _ABBREVIATIONS:
            continue
        span = _trim(text, cursor, match.end())
        if span.end > span.start:
            spans.append(span)
        cursor = match.end()
    tail = _trim(text, cursor, end)
    if tail.end > tail.start:
        spans.append(tail)
    return spans


def _words(text: str, span: Span) -> int:
    return len(text[span.start : span.end].split())


def split_passages(
    article: Article, max_words: int = DEFAULT_MAX_WORDS, min_words: int = DEFAULT_MIN_WORDS
) -> list[Passage]:
    """Greedy packing of whole sentences up to `max_words`.

    A passage stays inside its paragraph unless it is still shorter than `min_words`, so a
    one-line paragraph joins the next one instead of becoming a passage too short to retrieve.
    A sentence longer than `max_words` becomes a passage of its own rather than being cut.
    """
    text = article.text
    groups: list[tuple[int, list[Span]]] = []  # (paragraph number, sentences)
    current: list[Span] = []
    current_para = 0
    current_words = 0
    for para_no, (p_start, p_end) in enumerate(article.paragraph_spans, start=1):
        if current and current_words >= min_words:
            groups.append((current_para, current))
            current, current_words = [], 0
        for sentence in split_sentences(text, p_start, p_end):
            words = _words(text, sentence)
            if current and current_words + words > max_words:
                groups.append((current_para, current))
                current, current_words = [], 0
            if not current:
                current_para = para_no
            current.append(sentence)
            current_words += words
    if current:
        groups.append((current_para, current))

    passages = []
    for number, (para_no, sentences) in enumerate(groups):
        start, end = sentences[0].start, sentences[-1].end
        passages.append(
            Passage(
                passage_id=f"{article.article_id}#{number}",
                article_id=article.article_id,
                title=article.title,
                paragraph=para_no,
                start=start,
                end=end,
                text=text[start:end],
            )
        )
    return passages
