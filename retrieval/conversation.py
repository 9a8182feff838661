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
from newsqa.index.text import fold, has_diacritics, nfc
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


# Words and phrases that point back at something said before. Matched on the question's words in
# lower case (with diacritics as typed); the folded list leaves out forms that are also common
# words without their marks ("nó"/"no", "họ"/"ho" = cough, "đó"/"do" = because).
_BACK_VI = (
    "ông ấy", "bà ấy", "anh ấy", "chị ấy", "cô ấy", "cậu ấy", "em ấy", "họ", "nó", "chúng",
    "người này", "người đó", "bệnh này", "bệnh đó", "căn bệnh này", "thuốc này", "thuốc đó", "loại này",
    "loại đó", "cái này", "cái đó", "việc này", "việc đó", "điều này", "điều đó", "chuyện này", "chuyện đó",
    "vụ này", "vụ việc này", "trường hợp này", "trường hợp đó", "bệnh nhân này", "bệnh nhân đó", "ca này",
    "ở đó", "ở đấy", "nơi đó", "nơi này", "tại đó", "khi đó", "lúc đó", "lúc ấy", "hồi đó", "như vậy", "vậy",
    "trên", "kể trên", "nói trên", "này", "đó", "ấy",
)
_BACK_VI_FOLDED = (
    "ong ay", "ba ay", "anh ay", "chi ay", "co ay", "benh nay", "thuoc nay", "loai nay", "cai nay",
    "viec nay", "dieu nay", "chuyen nay", "vu nay", "truong hop nay", "benh nhan nay", "nguoi nay",
    "o do", "noi do", "khi do", "luc do", "ke tren", "noi tren", "nhu vay",
)
_OPENERS_VI = ("còn", "thế còn", "vậy còn", "và", "thế", "vậy", "sao", "vì sao", "tại sao")
_OPENERS_VI_FOLDED = ("con", "the con", "vay con", "vi sao", "tai sao", "sao")
_BACK_EN = (
    "it", "its", "it's", "they", "them", "their", "theirs", "he", "him", "his", "she", "her", "hers",
    "there", "that", "this", "these", "those", "such", "the same",
)
_OPENERS_EN = ("what about", "how about", "and", "so", "why", "but", "also")


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"\w+", nfc(text).lower())) + " "


def _has_phrase(words: str, phrases: Sequence[str]) -> bool:
    return any(f" {p} " in words for p in phrases)


def _starts_with(words: str, phrases: Sequence[str]) -> bool:
    return any(words.startswith(f" {p} ") for p in phrases)


def points_back(question: str, vietnamese: bool) -> bool:
    """Whether the question refers to something said before: a pronoun or demonstrative ("bệnh
    này", "ông ấy", "it", "there") or an opener that continues ("còn …", "vì sao", "what about")."""
    words = _words(question)
    if not vietnamese:
        return _has_phrase(words, _BACK_EN) or _starts_with(words, _OPENERS_EN)
    if has_diacritics(question):
        return _has_phrase(words, _BACK_VI) or _starts_with(words, _OPENERS_VI)
    folded = fold(words)
    return _has_phrase(folded, _BACK_VI_FOLDED) or _starts_with(folded, _OPENERS_VI_FOLDED)


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
    nothing of its own. Its words rarely match Vietnamese text, so the steer decides alone, and
    names are what an English question on a new topic brings ("… in Hai Phong", "Britain's …")."""
    if previous is None:
        return False
    words = _words(question)
    if _has_phrase(words, _NEW_TOPIC) or _has_phrase(fold(words), _NEW_TOPIC):
        return False
    if analysis.vietnamese:
        return True
    return not own_names(question)


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
