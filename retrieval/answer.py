"""Compose a short extractive answer with [n] citation marks from ranked passages.

Pure functions over already-retrieved passages: no model calls here, so answering costs almost
nothing beyond the search itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from newsqa.index.lexical import ACCENTED, FOLDED
from newsqa.index.models import Passage
from newsqa.index.split import split_sentences
from newsqa.index.loaded import LoadedIndex
from newsqa.index.text import canonical, fold, nfc, syllables, with_bigrams
from newsqa.retrieval.models import Citation, RetrievedPassage
from newsqa.retrieval.query import EXONYMS, QueryAnalysis, asked_names, topic_terms
from newsqa.retrieval.quotes import quote_around
from newsqa.retrieval.search import ScoredPassage
from newsqa.retrieval.sources import Sources, one_per_story

NEAR_DUPLICATE = 0.6  # share of a passage's words and word pairs already in a better-ranked one
MAX_ANSWER_CHARS = 420
EVIDENCE_PASSAGES = 3  # the found decision and the answer look at this many top passages
# Sentences picked by the model's similarity (questions not in Vietnamese): the share of the
# passage's fused score added to a sentence's cosine, and how near the best a second one must be.
SENTENCE_RANK_WEIGHT = 0.002
SECOND_SENTENCE_COSINE = 0.02


@dataclass(frozen=True)
class AnswerConfig:
    """When the evidence is strong enough to answer; chosen on retrieval/data/seed_questions.json and
    checked against held-out ViNewsQA/XQuAD articles (docs/quality.md)."""

    # IDF-weighted share of the question's topic words (and word pairs) one top passage contains.
    min_coverage: float = 0.3
    # Without that coverage, how far the best passage's cosine must stand above the question's
    # cosine with unrelated news (retrieval/calibration.py): an English question shares no words
    # with Vietnamese text, a Vietnamese one may say it in other words.
    min_dense_lift: float = 0.04
    min_dense_lift_vi: float = 0.085
    # Share of the names (capitalised words, acronyms, numbers) the question mentions that the top
    # passages must contain: "Úc", "Truyện Kiều", "FIFA" are nowhere in articles about NATO. A
    # Vietnamese question writes names as the articles do, so it needs all of them; an English one
    # may use the English form of a name the articles write in Vietnamese (Russia: Nga).
    min_names: float = 1.0
    min_names_other: float = 0.5
    max_sentences: int = 2


NOT_FOUND_VI = "Xin lỗi, tôi không tìm thấy câu trả lời cho câu hỏi này trong các bài báo đã có."
NOT_FOUND_EN = "Sorry, I could not find an answer to that question in the indexed articles."


def sentence_terms(analysis: QueryAnalysis) -> list[str]:
    """Folded terms that pick the answer's sentences: the question's topic words, and for a
    question in English the search's own terms, which carry the Vietnamese names of places."""
    if analysis.vietnamese:
        return topic_terms(analysis.folded_terms)
    return list(dict.fromkeys(fold(t) for t in analysis.lexical.tokens))


# Passages are read again and again (the same top passages for similar questions, the same titles
# for every passage of an article), and normalising one costs more than the rest of the answer:
# their syllables, token sets, names and sentences are kept for the most recent few thousand texts.
TEXT_CACHE = 2048


@lru_cache(maxsize=TEXT_CACHE)
def _canonical(text: str) -> str:
    """canonical(nfc(text)), shared by both fields' syllables (it is most of their cost)."""
    return canonical(nfc(text))


@lru_cache(maxsize=TEXT_CACHE)
def _syllables(text: str, field: str = FOLDED) -> tuple[str, ...]:
    key = _canonical(text)
    return tuple(syllables(fold(key) if field == FOLDED else key))


@lru_cache(maxsize=TEXT_CACHE)
def _tokens(text: str, field: str = FOLDED) -> frozenset[str]:
    return frozenset(with_bigrams(list(_syllables(text, field))))


def _folded_tokens(text: str) -> frozenset[str]:
    return _tokens(text, FOLDED)


def _passage_tokens(passage: Passage, field: str = FOLDED) -> frozenset[str]:
    """`_tokens(passage.embedding_text(), field)`, from the title's and the text's cached tokens.

    Normalisation and syllables never reach across the newline between them (NFC, case, tone
    placement and folding act on one character or one word), so the whole is the two parts plus
    the one word pair that spans the newline.
    """
    if not passage.title:
        return _tokens(passage.text, field)
    head, body = _syllables(passage.title, field), _syllables(passage.text, field)
    joined = _tokens(passage.title, field) | _tokens(passage.text, field)
    return joined | {f"{head[-1]}_{body[0]}"} if head and body else joined


def _question_terms(text: str, field: str) -> list[str]:
    """The topic terms of a question in `field` (accented or folded syllables, and their pairs)."""
    key = canonical(nfc(text))
    return topic_terms(syllables(key if field == ACCENTED else fold(key)), folded=field == FOLDED)


def coverage(terms: list[str], idf: dict[str, float], tokens: set[str]) -> float:
    """IDF-weighted share of the question's topic terms (syllables and bigrams) found in `tokens`."""
    if not terms:
        return 0.0
    total = sum(idf.get(t, 1.0) for t in terms)
    hit = sum(idf.get(t, 1.0) for t in terms if t in tokens)
    return hit / total if total > 0 else 0.0


@lru_cache(maxsize=TEXT_CACHE)
def _name_tokens(text: str) -> frozenset[str]:
    """Folded words written with a capital or a digit: how names appear in the articles."""
    return frozenset(fold(w) for w in re.findall(r"\w+", nfc(text)) if w[0].isupper() or w[0].isdigit())


def _passage_names(passage: Passage) -> frozenset[str]:
    """`_name_tokens(passage.embedding_text())`: a word never spans the newline after the title."""
    names_in_text = _name_tokens(passage.text)
    return _name_tokens(passage.title) | names_in_text if passage.title else names_in_text


@lru_cache(maxsize=TEXT_CACHE)
def _sentence_spans(text: str) -> tuple[tuple[int, int], ...]:
    return tuple((span.start, span.end) for span in split_sentences(text))


@lru_cache(maxsize=TEXT_CACHE)
def _sentences(text: str) -> tuple[str, ...]:
    return tuple(text[start:end] for start, end in _sentence_spans(text))


def _name_present(name: str, names_seen: set[str], words_seen: set[str]) -> bool:
    if name in names_seen:
        return True
    # An English name the articles write in Vietnamese: "Britain" is there as "Anh", "Europe" as
    # "châu Âu" (one of its words capitalised, so "Pháp" is not found in "pháp lý").
    local = EXONYMS.get(name)
    if local is None:
        return False
    parts = set(syllables(fold(local)))
    return parts <= words_seen and bool(parts & names_seen)


def diversify(hits: list[ScoredPassage], passages: Sequence[Passage] | Mapping[int, Passage]) -> list[ScoredPassage]:
    """Drop passages that say what a better-ranked one already says (repeated or wire-copied text).

    A passage is dropped when most of its words and word pairs are in one passage kept before it;
    measured by containment rather than Jaccard so a short repeat inside a longer passage counts.
    """
    kept: list[tuple[ScoredPassage, set[str]]] = []
    for hit in hits:
        tokens = _tokens(passages[hit.row].text)
        if all(_contained(tokens, other) < NEAR_DUPLICATE for _, other in kept):
            kept.append((hit, tokens))
    return [hit for hit, _ in kept]


def _contained(tokens: set[str], other: set[str]) -> float:
    return len(tokens & other) / len(tokens) if tokens else 1.0


@dataclass(frozen=True)
class Evidence:
    """What the top passages say about a question, for the found decision."""

    vietnamese: bool
    coverage: float  # best single-passage topic coverage
    dense: float | None  # best cosine similarity, None without a model
    names: tuple[str, ...]
    names_found: float  # share of `names` in the top passages (1.0 when there are none)
    dense_lift: float | None = None  # `dense` above the question's background level


def gather_evidence(
    analysis: QueryAnalysis,
    hits: list[ScoredPassage],
    index: LoadedIndex,
    passages: Sequence[Passage] | Mapping[int, Passage] | None = None,
    background: float | None = None,
    context: str | None = None,
) -> Evidence:
    """`passages` (row → passage) defaults to the index's own; `background` is the question's
    cosine with unrelated news (PendingSearch.background). `context`: the earlier topic a follow-up
    is read with ("Ông ấy đề nghị vậy từ khi nào?" says little on its own): its words count as the
    question's when measuring coverage. Names stay the question's own: a follow-up that names
    something the articles lack ("Còn Úc thì sao?") is still not found."""
    passages = index.passages if passages is None else passages
    top = [passages[h.row] for h in hits[:EVIDENCE_PASSAGES]]
    # An accented question is matched accented: "Thủ đô" must not be covered by "thủ tướng ... do".
    field = ACCENTED if analysis.lexical.field == ACCENTED else FOLDED
    readings = [_question_terms(analysis.question, field)]
    if context:  # the question with the earlier topic's words; a question that changed the subject keeps its own
        readings.append(readings[0] + [t for t in _question_terms(context, field) if t not in readings[0]])
    idf = index.lexical.idf_of(field, readings[-1])
    best = max((coverage(terms, idf, _passage_tokens(p, field)) for p in top for terms in readings), default=0.0)
    asked = asked_names(analysis.question, index.lexical)
    # Case matters: "Pháp" (France) is not "pháp lý" (legal).
    seen = frozenset().union(*(_passage_names(p) for p in top))
    words = frozenset().union(*(_passage_tokens(p) for p in top))
    share = sum(_name_present(n, seen, words) for n in asked) / len(asked) if asked else 1.0
    dense = max((h.dense for h in hits[:EVIDENCE_PASSAGES] if h.dense is not None), default=None)
    lift = None if dense is None or background is None else dense - background
    return Evidence(analysis.vietnamese, best, dense, asked, share, lift)


def decide(evidence: Evidence, config: AnswerConfig = AnswerConfig()) -> bool:
    """True when the top passages are likely to answer the question."""
    if evidence.names_found < (config.min_names if evidence.vietnamese else config.min_names_other):
        return False
    if evidence.coverage >= config.min_coverage:
        return True
    if evidence.dense_lift is None:
        return False
    return evidence.dense_lift >= (config.min_dense_lift_vi if evidence.vietnamese else config.min_dense_lift)


@dataclass(frozen=True)
class Composed:
    text: str
    found: bool
    citations: list[Citation]  # what the text cites, numbered as cited
    best_coverage: float
    also_retrieved: tuple[RetrievedPassage, ...] = ()  # the other hits, best first


def prepare(
    analysis: QueryAnalysis,
    rows: Sequence[int],
    index: LoadedIndex,
    keep_going: Callable[[], bool] = lambda: True,
) -> dict[int, Passage]:
    """Read the passages at `rows` and do the text work `compose` would do on them (tokens,
    names, sentences; cached by text), row by row while `keep_going()` says so: the best lexical
    passages, prepared while the question is still being embedded, are usually the answer's.
    Returns the passages read, for `compose(passages=...)`; the answer is the same either way."""
    field = ACCENTED if analysis.lexical.field == ACCENTED else FOLDED
    read: dict[int, Passage] = {}
    for row in rows:
        if not keep_going():
            break
        passage = index.passages[row]
        read[row] = passage
        _tokens(passage.text)
        _passage_tokens(passage, field)
        _passage_tokens(passage)
        _passage_names(passage)
        for sentence in _sentences(passage.text):
            _folded_tokens(sentence)
    return read


def compose(
    question: str,
    analysis: QueryAnalysis,
    hits: list[ScoredPassage],
    index: LoadedIndex,
    config: AnswerConfig = AnswerConfig(),
    passages: Mapping[int, Passage] | None = None,
    background: float | None = None,
    similarity: Callable[[str, Sequence[str]], Sequence[float]] | None = None,
    context: str | None = None,
    decide_on: QueryAnalysis | None = None,
) -> Composed:
    """`passages`: rows already read (by `prepare`); the other hits are read here, each once (an
    index on disk parses a JSON line per read). `background`: see `gather_evidence`.
    `similarity(question, sentences)`: the model's cosine of each sentence with the question,
    which picks the answer's sentences for a question not in Vietnamese (retrieval/sentences.py).
    `context`: the earlier topic a follow-up is read with (see `gather_evidence`). It takes part in
    the found decision only: the follow-up's own words pick the sentences (the earlier topic's words,
    even at half weight, picked the sentence the previous answer had already given: bench/
    conversation_bench.py's "quoted" fell from 46.4% to 36.0% of follow-ups). `decide_on`: the
    question as the found decision reads it, when that differs (without its time words:
    retrieval/when.py)."""
    known = passages or {}
    passages = {h.row: known[h.row] if h.row in known else index.passages[h.row] for h in hits}
    hits = diversify(hits, passages)
    hits = one_per_story(hits, passages, index)
    evidence = gather_evidence(decide_on or analysis, hits, index, passages, background, context)
    if not hits or not decide(evidence, config):
        message = NOT_FOUND_VI if analysis.vietnamese else NOT_FOUND_EN
        return Composed(message, False, [], evidence.coverage)
    terms = sentence_terms(analysis)
    idf = index.lexical.idf_of(FOLDED, terms)
    best_coverage = evidence.coverage

    top_score = hits[0].score or 1.0
    by_meaning = similarity is not None and not analysis.vietnamese
    top = [(rank, hit, _sentences(passages[hit.row].text)) for rank, hit in enumerate(hits[:EVIDENCE_PASSAGES])]
    cosines = iter([])
    if by_meaning:  # one model call for every sentence of the top passages
        cosines = iter(similarity(question, [s for _, _, sentences in top for s in sentences]))  # type: ignore[misc]
    candidates: list[tuple[float, int, int, str]] = []  # (score, hit rank, position, sentence)
    for rank, hit, sentences in top:
        for position, sentence in enumerate(sentences):
            if by_meaning:
                # Cosines of a question's sentences differ by hundredths: the passage's rank only
                # breaks near-ties.
                score = float(next(cosines)) + SENTENCE_RANK_WEIGHT * (hit.score / top_score)
            else:
                cov = coverage(terms, idf, _folded_tokens(sentence))
                score = cov + 0.5 * (hit.score / top_score) - 0.02 * position
            candidates.append((score, rank, position, sentence))
    candidates.sort(key=lambda c: -c[0])

    chosen: list[tuple[int, int, str]] = []
    length = 0
    for score, rank, position, sentence in candidates:
        if len(chosen) >= config.max_sentences:
            break
        close = score >= candidates[0][0] - SECOND_SENTENCE_COSINE if by_meaning else score >= 0.7 * candidates[0][0]
        if chosen and (not close or length + len(sentence) > MAX_ANSWER_CHARS):
            continue
        chosen.append((rank, position, sentence))
        length += len(sentence)
    # The passage of the best sentence leads (and is cited [1]); a passage's sentences keep their order.
    lead = chosen[0][0] if chosen else 0
    chosen.sort(key=lambda c: (c[0] != lead, c[0], c[1]))

    # Only what the text cites is a citation, numbered as its marks first appear; the other hits
    # are "also retrieved", best first.
    numbers: dict[int, int] = {}
    positions: dict[int, list[int]] = {}
    for rank, position, _ in chosen:
        numbers.setdefault(rank, len(numbers) + 1)
        positions.setdefault(rank, []).append(position)
    # One mark after a run of sentences from the same passage, not one after each.
    text = " ".join(
        sentence if i + 1 < len(chosen) and chosen[i + 1][0] == rank else f"{sentence} [{numbers[rank]}]"
        for i, (rank, _, sentence) in enumerate(chosen)
    )

    sources = Sources(index)
    citations = []
    for rank, n in numbers.items():
        hit, passage = hits[rank], passages[hits[rank].row]
        spans = _sentence_spans(passage.text)
        citations.append(
            Citation.of(
                passage,
                n=n,
                score=round(hit.score, 6),
                quote=quote_around(passage.text, spans, positions[rank]),
                highlights=[spans[p] for p in sorted(positions[rank])],
                also_published=sources.also_published(passage.article_id),
                **sources.of(passage.article_id),
            )
        )
    others = tuple(
        RetrievedPassage.of(passages[hit.row], score=round(hit.score, 6), **sources.of(passages[hit.row].article_id))
        for rank, hit in enumerate(hits)
        if rank not in numbers
    )
    return Composed(text, True, citations, best_coverage, others)
