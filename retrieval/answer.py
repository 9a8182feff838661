"""Compose a short extractive answer with [n] citation marks from ranked passages.

Pure functions over already-retrieved passages: no model calls here, so answering costs almost
nothing beyond the search itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from index.lexical import FOLDED
from index.models import Passage
from index.split import split_sentences
from index.store import LoadedIndex
from index.text import canonical, fold, jaccard, nfc, syllables, with_bigrams
from retrieval.models import Citation
from retrieval.search import QueryAnalysis, ScoredPassage

# Words that carry the question's form, not its topic; they are ignored when measuring how much
# of a question a passage covers (BM25 still sees them, with their low IDF).
QUESTION_WORDS = frozenset(
    """gi nao ai sao dau bao nhieu the nhu la co khong nhung cac cua va thi ma duoc bi hay voi ve
    tai vi khi nay do mot hoac nguoi ra len da se dang cho
    what who whom whose which when where why how did does do is are was were be been the a an of to
    in on for from by with about as at and or that this these those it its his her their there
    tell me please""".split()
)
NEAR_DUPLICATE = 0.6
MAX_ANSWER_CHARS = 420


@dataclass(frozen=True)
class AnswerConfig:
    min_coverage: float = 0.5  # share of the question's topic words a passage must contain ...
    min_dense: float = 0.5  # ... or the cosine similarity the best passage must reach
    max_sentences: int = 2


NOT_FOUND_VI = "Xin lỗi, tôi không tìm thấy câu trả lời cho câu hỏi này trong các bài báo đã có."
NOT_FOUND_EN = "Sorry, I could not find an answer to that question in the indexed articles."


def topic_terms(folded_terms: list[str]) -> list[str]:
    words = [t for t in folded_terms if t not in QUESTION_WORDS]
    return with_bigrams(words) if words else []


def _folded_tokens(text: str) -> set[str]:
    return set(with_bigrams(syllables(fold(canonical(nfc(text))))))


def coverage(terms: list[str], idf: dict[str, float], tokens: set[str]) -> float:
    """IDF-weighted share of the question's topic terms (syllables and bigrams) found in `tokens`."""
    if not terms:
        return 0.0
    total = sum(idf.get(t, 1.0) for t in terms)
    hit = sum(idf.get(t, 1.0) for t in terms if t in tokens)
    return hit / total if total > 0 else 0.0


def diversify(hits: list[ScoredPassage], passages: list[Passage]) -> list[ScoredPassage]:
    """Drop passages that say what a better-ranked one already says (duplicated paragraphs)."""
    kept: list[tuple[ScoredPassage, set[str]]] = []
    for hit in hits:
        tokens = set(syllables(fold(canonical(passages[hit.row].text))))
        if all(jaccard(tokens, other) < NEAR_DUPLICATE for _, other in kept):
            kept.append((hit, tokens))
    return [hit for hit, _ in kept]


@dataclass(frozen=True)
class Composed:
    text: str
    found: bool
    citations: list[Citation]
    best_coverage: float


def compose(
    question: str,
    analysis: QueryAnalysis,
    hits: list[ScoredPassage],
    index: LoadedIndex,
    config: AnswerConfig = AnswerConfig(),
) -> Composed:
    passages = index.passages
    hits = diversify(hits, passages)
    terms = topic_terms(analysis.folded_terms)
    idf = index.lexical.idf_of(FOLDED, terms)

    evidence = [coverage(terms, idf, _folded_tokens(passages[h.row].embedding_text())) for h in hits[:3]]
    best_coverage = max(evidence, default=0.0)
    best_dense = max((h.dense for h in hits[:3] if h.dense is not None), default=0.0)
    found = bool(hits) and (best_coverage >= config.min_coverage or best_dense >= config.min_dense)
    if not found:
        message = NOT_FOUND_VI if analysis.vietnamese else NOT_FOUND_EN
        return Composed(message, False, [], best_coverage)

    top_score = hits[0].score or 1.0
    candidates: list[tuple[float, int, int, str]] = []  # (score, hit rank, position, sentence)
    for rank, hit in enumerate(hits[:3]):
        passage = passages[hit.row]
        for position, span in enumerate(split_sentences(passage.text)):
            sentence = passage.text[span.start : span.end]
            cov = coverage(terms, idf, _folded_tokens(sentence))
            score = cov + 0.5 * (hit.score / top_score) - 0.02 * position
            candidates.append((score, rank, position, sentence))
    candidates.sort(key=lambda c: -c[0])

    chosen: list[tuple[int, int, str]] = []
    length = 0
    for score, rank, position, sentence in candidates:
        if len(chosen) >= config.max_sentences:
            break
        if chosen and (score < 0.7 * candidates[0][0] or length + len(sentence) > MAX_ANSWER_CHARS):
            continue
        chosen.append((rank, position, sentence))
        length += len(sentence)
    chosen.sort()

    numbers: dict[int, int] = {}
    for rank, _, _ in chosen:
        numbers.setdefault(rank, len(numbers) + 1)
    for rank in range(len(hits)):
        numbers.setdefault(rank, len(numbers) + 1)
    text = " ".join(f"{sentence} [{numbers[rank]}]" for rank, _, sentence in chosen)

    citations = []
    for rank, n in sorted(numbers.items(), key=lambda item: item[1]):
        hit = hits[rank]
        p = passages[hit.row]
        citations.append(
            Citation(
                n=n,
                article_id=p.article_id,
                title=p.title,
                passage_id=p.passage_id,
                paragraph=p.paragraph,
                start=p.start,
                end=p.end,
                text=p.text,
                score=round(hit.score, 6),
            )
        )
    return Composed(text, True, citations, best_coverage)
