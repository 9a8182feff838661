"""Plain data passed between the build steps and stored in the index folder."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class RemovedPart:
    """A piece of the source file that is not the article's own text (caption, teaser, byline...)."""

    reason: str
    text: str


@dataclass(frozen=True)
class Article:
    """One cleaned article. `text` is the answerable body; passages point into it by offsets."""

    article_id: str
    title: str
    text: str
    source: str  # where it was read from: the file's path, or the URL it was fetched from
    paragraph_spans: tuple[tuple[int, int], ...]  # (start, end) of each body paragraph in `text`
    removed: tuple[RemovedPart, ...] = field(default=())
    # What a news page says of itself (None for a plain file, or where the page does not say):
    url: str | None = None  # the canonical URL of the story
    site: str | None = None  # the publisher as people know it ("VnExpress"), else the site's host
    published: str | None = None  # ISO 8601 date or date-time the story was published
    author: str | None = None
    language: str | None = None  # ISO 639-1, as the page or the extractor says ("vi")
    # The article a near-identical story (the same wire copy on another site) is grouped under:
    # set by the build, None for an article that leads its group or has no copies.
    duplicate_of: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["paragraph_spans"] = [list(span) for span in self.paragraph_spans]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Article:
        return cls(
            article_id=data["article_id"],
            title=data["title"],
            text=data["text"],
            source=data["source"],
            paragraph_spans=tuple((int(a), int(b)) for a, b in data["paragraph_spans"]),
            removed=tuple(RemovedPart(**part) for part in data.get("removed", [])),
            **{name: data.get(name) for name in METADATA},
        )


METADATA = ("url", "site", "published", "author", "language", "duplicate_of")


@dataclass(frozen=True)
class Passage:
    """A run of whole sentences from one article; `text == article.text[start:end]`."""

    passage_id: str
    article_id: str
    title: str
    paragraph: int  # 1-based number of the body paragraph the passage starts in
    start: int
    end: int
    text: str

    def embedding_text(self) -> str:
        # The title gives a passage its topic, which short passages otherwise lack.
        return f"{self.title}\n{self.text}" if self.title else self.text

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Passage:
        return cls(**data)
