"""Where each passage of an answer comes from: its article's publisher, URL and date, and the other
sites that ran the same story (index/duplicates.py groups them at build time).

One `Sources` serves one answer: an article is read once however many of its passages the answer
shows (on a large build each read parses a JSON line).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from newsqa.index.loaded import LoadedIndex
from newsqa.index.models import Article, Passage
from newsqa.retrieval.models import Publication
from newsqa.retrieval.search import ScoredPassage


class Sources:
    """The articles behind one answer's passages, each read once."""

    def __init__(self, index: LoadedIndex) -> None:
        self._index = index
        self._read: dict[str, Article | None] = {}

    def article(self, article_id: str) -> Article | None:
        if article_id not in self._read:
            self._read[article_id] = self._index.articles.get(article_id)
        return self._read[article_id]

    def of(self, article_id: str) -> dict[str, Any]:
        """The fields a citation or a retrieved passage takes from its article."""
        article = self.article(article_id)
        if article is None:
            return {}
        return {"source": article.site, "url": article.url, "published": article.published}

    def also_published(self, article_id: str) -> list[Publication]:
        """The other articles of the article's duplicate group that the build holds, leader first."""
        return [
            Publication(article_id=other, **self.of(other))
            for other in self._index.duplicates.members(article_id)
            if other != article_id and other in self._index.articles
        ]


def one_per_story(
    hits: Sequence[ScoredPassage], passages: Mapping[int, Passage], index: LoadedIndex
) -> list[ScoredPassage]:
    """The hits without those of a story's other copies: once one article of a duplicate group has a
    hit, the group's other articles take no more places (their passages say what its passages say);
    the answer names them under `also_published`. `passages`: row → passage, for the hits' rows."""
    groups = index.duplicates
    if not groups:
        return list(hits)
    shown: dict[str, str] = {}  # group leader → the article that stands for the group
    kept = []
    for hit in hits:
        article_id = passages[hit.row].article_id
        leader = groups.leader(article_id)
        if leader is None or shown.setdefault(leader, article_id) == article_id:
            kept.append(hit)
    return kept
