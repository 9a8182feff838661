"""Follow-up questions read with the conversation's earlier turn, without a language model.

In a chat the second question often names no topic of its own: "Còn trẻ em thì sao?", "vì sao?",
"ông ấy nói gì?", "how is it treated?". Searched alone it lands anywhere. Here a question is read
with the previous turn when it looks like a continuation, and the search is then steered, not
replaced: the earlier topic's words join the BM25 query at a lower weight, its question vector is
blended into this one's, and the article the previous answer cited gets a small boost. A question
that names a topic of its own and finds it stands alone, so a change of subject is not dragged back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from newsqa.index.lexical import LexicalQuery
from newsqa.index.text import fold, nfc
from newsqa.retrieval.models import Answer
from newsqa.retrieval.query import QueryAnalysis, analyse_query, names
from newsqa.retrieval.search import ScoredPassage


@dataclass(frozen=True)
class Turn:
    """What a conversation remembers of one answered question."""

    question: str  # as asked
    topic: str  # the question that set the topic: this one when it stood alone, else the one it continued
    articles: tuple[str, ...] = ()  # the articles its answer cited, the one behind [1] first


@dataclass(frozen=True)
class ContextOptions:
    """How strongly an earlier turn steers a follow-up's search (chosen on bench/data/conversations_vinewsqa.json)."""

    lexical_weight: float = 0.5  # BM25 weight of the earlier topic's words (the question's own: 1)
    vector_share: float = 0.35  # share of the earlier topic's vector in the blended question vector
    article_boost: float = 0.15  # added to the fused score (0-1) of passages of the article [1] came from
    pool: int = 50  # passages re-ranked with the boost


# "What about Britain?", "and Germany?": a short question that only names the next thing to ask
# the same about.
_SAME_ABOUT_EN = ("what about", "how about", "and", "what of")
SAME_ABOUT_WORDS = 5


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"\w+", nfc(text).lower())) + " "


def _has_phrase(words: str, phrases: Sequence[str]) -> bool:
    return any(f" {p} " in words for p in phrases)


def _starts_with(words: str, phrases: Sequence[str]) -> bool:
    return any(words.startswith(f" {p} ") for p in phrases)


_NEW_TOPIC = (
    "different question", "another question", "new question", "new topic", "unrelated", "câu hỏi khác",
    "hỏi khác", "chuyện khác", "chủ đề khác", "cau hoi khac", "hoi khac", "chuyen khac", "chu de khac",
)
_CALENDAR = frozenset(
    "january february march april may june july august september october november december monday tuesday "
    "wednesday thursday friday saturday sunday".split()
)


def own_names(question: str) -> list[str]:
    """The names a question brings of its own: not numbers, dates or calendar words, which a
    follow-up uses as readily as a new question does ("… on 28 March?")."""
    return [n for n in names(question) if not any(c.isdigit() for c in n) and n not in _CALENDAR]


def reads_with(question: str, analysis: QueryAnalysis, previous: Turn | None) -> bool:
    """Whether to read the question with the previous turn.

    Vietnamese (with or without diacritics): always, unless it says it changes the subject. The
    earlier topic's words only join its BM25 query at half weight, so a question that names its own
    topic still finds it (on the labelled conversations every topic switch did, 18 of 18), while one
    that names none ("bao lâu thì khỏi?") is steered to the topic. English: only when it names
    nothing of its own, or only names the next thing to ask the same about ("what about Britain?").
    Its words rarely match Vietnamese text, so the steer decides alone, and names are what an
    English question on a new topic brings ("… in Hai Phong", "Britain's new law …")."""
    if previous is None:
        return False
    words = _words(question)
    if _has_phrase(words, _NEW_TOPIC) or _has_phrase(fold(words), _NEW_TOPIC):
        return False
    if analysis.vietnamese:
        return True
    return not own_names(question) or (_starts_with(words, _SAME_ABOUT_EN) and len(words.split()) <= SAME_ABOUT_WORDS)


def in_field(query: LexicalQuery, field: str) -> list[str]:
    """The query's single words, as matched in `field` (folded when the field is)."""
    words = query.tokens[: len(query.tokens) - query.bigrams]
    return [fold(w) for w in words] if field != query.field else list(words)


def with_context(analysis: QueryAnalysis, topic: str, weight: float) -> QueryAnalysis:
    """The question's analysis with the earlier topic's words added at `weight`, in the field the
    question is matched against (a question typed without diacritics matches the folded field)."""
    own = analysis.lexical
    earlier = analyse_query(topic, analysis.vietnamese)
    extra = tuple(dict.fromkeys(t for t in in_field(earlier, own.field) if t not in own.tokens))
    return replace(analysis, lexical=replace(own, context=extra, context_weight=weight))


def blend(question_vector: np.ndarray, topic_vector: np.ndarray, share: float) -> np.ndarray:
    """The question's vector moved `share` of the way towards the topic's, back on the unit sphere."""
    mixed = (1 - share) * np.asarray(question_vector, np.float32).reshape(-1) + share * np.asarray(
        topic_vector, np.float32
    ).reshape(-1)
    norm = float(np.linalg.norm(mixed))
    return mixed / norm if norm > 0 else mixed


def boost_article(
    hits: Sequence[ScoredPassage], article_of: Callable[[int], str], article: str | None, boost: float, k: int
) -> list[ScoredPassage]:
    """The hits re-ranked with `boost` added to the passages of `article`, best k."""
    if not article or boost <= 0:
        return list(hits[:k])
    scored = [replace(h, score=h.score + boost) if article_of(h.row) == article else h for h in hits]
    return sorted(scored, key=lambda h: -h.score)[:k]


TOPIC_WORDS = 60  # the topic a chain of follow-ups carries: its newest words


def next_turn(answer: Answer, previous: Turn | None) -> Turn:
    """What the conversation remembers of an answered question. A follow-up keeps the topic it was
    read with and adds its own words ("Nga yêu cầu gì?" → "Còn Anh thì sao?" → "vì sao?" reads the
    third with Russia, NATO and Britain), so a chain does not lose the subject it started with."""
    question = " ".join(answer.question.split())
    topic = question
    if answer.context_used and previous is not None:
        topic = " ".join(f"{previous.topic} {question}".split()[-TOPIC_WORDS:])
    articles = tuple(dict.fromkeys(c.article_id for c in answer.citations))
    return Turn(question=question, topic=topic, articles=articles)
