"""What the retrieval layer returns: the same objects serve the CLI's --json, the HTTP API and the bot."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from newsqa.index.models import Passage

_PASSAGE_FIELDS = tuple(f.name for f in dataclasses.fields(Passage))


class _OfPassage(BaseModel):
    # The base of what carries a passage (Citation, SearchHit): `of` fills the passage's own fields
    # from one read of it, so they are copied in one place. No docstring and no fields here: the
    # JSON and the OpenAPI document stay those of the models that declare them.

    @classmethod
    def of(cls, passage: Passage, **fields: Any) -> Self:
        """This model for `passage`, with the other `fields` (rank or number, scores) given."""
        return cls(**{name: getattr(passage, name) for name in _PASSAGE_FIELDS if name in cls.model_fields}, **fields)


# What a passage's article says of itself, on Citation and RetrievedPassage; null for a plain file.
URL = Field(default=None, description="The story's canonical URL, where the article was read from the web")
SOURCE = Field(default=None, description="The publisher (the site's name, else its host); null for a plain file")
PUBLISHED = Field(default=None, description="When the story was published: an ISO 8601 date or date-time, as the page says")


class Publication(BaseModel):
    """Another site's copy of a cited story (the same wire story, near-identical text)."""

    model_config = ConfigDict(frozen=True)

    article_id: str
    source: str | None = SOURCE
    url: str | None = URL
    published: str | None = PUBLISHED


class Citation(_OfPassage):
    model_config = ConfigDict(frozen=True)

    n: int = Field(description="Citation number, as used in the answer's [n] marks")
    article_id: str
    title: str
    source: str | None = SOURCE
    url: str | None = URL
    published: str | None = PUBLISHED
    passage_id: str
    paragraph: int = Field(description="1-based paragraph of the cleaned article the passage starts in")
    start: int = Field(description="Character offset of the passage in the cleaned article text")
    end: int
    text: str
    score: float = Field(description="Fused relevance score, higher is better")
    quote: str = Field(
        description="The sentences the answer takes from this passage, with a few words of the sentences "
        "around them ('…' where cut): what a reader checks the answer against"
    )
    highlights: list[tuple[int, int]] = Field(
        description="[start, end) character offsets in `text` of the sentences the answer takes from it"
    )
    also_published: list[Publication] = Field(
        default_factory=list,
        description="The same story as other sites published it (near-identical text), cited once here: "
        "the other articles of its duplicate group",
    )


class RetrievedPassage(_OfPassage):
    """A passage the search found that the answer does not cite."""

    model_config = ConfigDict(frozen=True)

    article_id: str
    title: str
    source: str | None = SOURCE
    url: str | None = URL
    published: str | None = PUBLISHED
    passage_id: str
    paragraph: int
    start: int
    end: int
    text: str
    score: float


class Answer(BaseModel):
    model_config = ConfigDict(frozen=True)

    question: str
    answer: str = Field(description="A short extractive answer with [n] citation marks, or a polite not-found message")
    found: bool = Field(description="False when nothing in the articles answers the question")
    citations: list[Citation] = Field(
        description="The passages the answer cites, numbered as its [n] marks first appear; empty when not found"
    )
    also_retrieved: list[RetrievedPassage] = Field(
        default_factory=list,
        description="The other passages the search returned, best first, which the answer does not cite",
    )
    language: Literal["vi", "en"] = Field(
        default="en",
        description="The question's language as the interface answers it: 'vi' for Vietnamese (with or "
        "without diacritics), else 'en'",
    )
    answer_id: str = Field(default="", description="A new id for every answer (32 hex digits): what POST /feedback names")
    build_id: str = Field(default="", description="The index build that answered")
    took_ms: float
    mode: str = Field(description="'hybrid' (dense + lexical) or 'lexical' (no embedding model available)")
    notice: str | None = Field(default=None, description="Why the service runs degraded, when it does")
    context_used: bool = Field(
        default=False, description="True when the question was read as a follow-up of the conversation's previous question"
    )
    context_question: str | None = Field(
        default=None, description="The previous question it was read with, when context_used"
    )


class SearchHit(_OfPassage):
    model_config = ConfigDict(frozen=True)

    rank: int
    article_id: str
    title: str
    passage_id: str
    paragraph: int
    start: int
    end: int
    text: str
    score: float
    lexical_score: float
    dense_score: float | None
    source: str | None = SOURCE
    url: str | None = URL
    published: str | None = PUBLISHED


class SearchResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    query: str
    hits: list[SearchHit]
    took_ms: float
    mode: str
    context_used: bool = Field(default=False, description="True when the query was read with a conversation's previous question")


P = TypeVar("P", bound=_OfPassage)


def by_article(passages: Sequence[P]) -> list[list[P]]:
    """`passages` grouped by article, articles in the order they first appear, each one's passages in
    their given order: a source list shows an article's title once, its paragraphs under it."""
    groups: dict[str, list[P]] = {}
    for passage in passages:
        groups.setdefault(passage.article_id, []).append(passage)
    return list(groups.values())
