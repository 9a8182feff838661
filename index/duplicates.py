"""Near-duplicate stories: the same wire copy published by several sites, with small edits, other
captions or an advert left in, grouped so that an answer cites the story once.

Each article's body is reduced to a MinHash over its 5-word shingles (folded text: diacritics,
case and tone placement do not count), and datasketch's LSH finds the pairs whose Jaccard
similarity is likely above `THRESHOLD`, in one pass over the articles; each pair is then checked by
its estimated Jaccard, since LSH also returns some pairs below the threshold. Grouping costs about
0.3 ms an article (docs/operations.md), where comparing every pair would cost the square of the corpus.
"""

from __future__ import annotations

import dataclasses
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from newsqa.index.models import Article
from newsqa.index.text import fold, nfc

THRESHOLD = 0.8  # Jaccard of 5-word shingles: one story with a caption or a sentence changed, not two on one topic
SHINGLE_WORDS = 5
NUM_PERM = 128
# A body this short gives too few shingles for the estimate to mean anything (and briefs of a
# few words repeat by chance: "Trời mưa to ở Hà Nội").
MIN_SHINGLES = 8
MANIFEST_KEY = "duplicates"  # leader id → the other articles of its group, in the build's manifest
_WORD_RE = re.compile(r"\w+")  # as index.text.syllables splits words
_PUNCTUATION = 1 << 32  # the hash of a token without words: outside CRC-32's range
# Odd 32-bit multipliers for the shingle hash (any fixed odd numbers serve); arithmetic wraps at 2^64.
_MIXERS = (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1)


def shingles(text: str, word_ids: dict[str, int] | None = None) -> np.ndarray:
    """The distinct 5-word shingles of a text as 32-bit hashes (uint32), as the grouping compares
    them. `word_ids` caches each word's hash across calls (news repeats a few thousand syllables)."""
    ids = {} if word_ids is None else word_ids
    # Whitespace-separated tokens, each reduced once, when first seen, to its folded words
    # (punctuation, case, diacritics, đ and tone placement do not count; a token of punctuation
    # alone is dropped): normalising whole texts cost more than the MinHash itself.
    tokens = text.lower().split()
    for token in set(tokens).difference(ids):
        words = " ".join(_WORD_RE.findall(fold(nfc(token))))
        ids[token] = zlib.crc32(words.encode("utf-8")) if words else _PUNCTUATION
    hashed = np.fromiter(map(ids.__getitem__, tokens), dtype=np.uint64, count=len(tokens))
    hashed = hashed[hashed != _PUNCTUATION]
    if len(hashed) < SHINGLE_WORDS:
        return np.zeros(0, dtype=np.uint32)
    # Each shingle's hash from its words' hashes, position by position (an order-sensitive mix):
    # joining and hashing the shingles' strings cost most of the grouping's time.
    n = len(hashed) - SHINGLE_WORDS + 1
    mixed = np.zeros(n, dtype=np.uint64)
    for k, multiplier in enumerate(_MIXERS):
        mixed = (mixed * np.uint64(multiplier)) ^ hashed[k : k + n]
    return np.unique((mixed ^ (mixed >> np.uint64(32))).astype(np.uint32))


def leader_order(article: Article) -> tuple[bool, str, str]:
    """The group's leader comes first: the earliest published, else (no date) the first by id."""
    return (article.published is None, article.published or "", article.article_id)


@dataclass
class _Groups:
    """Union-find over article ids."""

    parent: dict[str, str] = field(default_factory=dict)

    def find(self, key: str) -> str:
        root = key
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while key != root:  # path compression
            key, self.parent[key] = self.parent[key], root
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def find_duplicates(articles: Sequence[Article], threshold: float = THRESHOLD) -> dict[str, str]:
    """article id → the id of its group's leader, for every article that is not a leader of, or
    alone in, its group."""
    # Imported here: datasketch pulls in scipy.integrate (0.7 s), which only a build needs.
    from datasketch import MinHash, MinHashLSH

    # The shingles come hashed already (shingles()): the MinHash takes them as they are. One set
    # of permutations for all, as every sketch must use the same.
    template = MinHash(num_perm=NUM_PERM, hashfunc=int)
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    sketches: dict[str, Any] = {}  # article id → MinHash, in leader order
    groups = _Groups()
    word_ids: dict[str, int] = {}
    for article in sorted(articles, key=leader_order):
        pieces = shingles(article.text, word_ids)
        if len(pieces) < MIN_SHINGLES:
            continue
        sketch = MinHash(num_perm=NUM_PERM, hashfunc=int, permutations=template.permutations, scheme=template.scheme)
        sketch.update_batch(pieces.tolist())
        for other in lsh.query(sketch):
            if sketch.jaccard(sketches[other]) >= threshold:
                groups.union(other, article.article_id)
        lsh.insert(article.article_id, sketch)
        sketches[article.article_id] = sketch
    leaders: dict[str, str] = {}  # component root → its first article in leader order
    out = {}
    for article_id in sketches:
        leader = leaders.setdefault(groups.find(article_id), article_id)
        if leader != article_id:
            out[article_id] = leader
    return out


def mark_duplicates(articles: Sequence[Article], threshold: float = THRESHOLD) -> list[Article]:
    """The articles, in their order, with `duplicate_of` set as the grouping finds it now."""
    leaders = find_duplicates(articles, threshold)
    return [
        article if article.duplicate_of == leaders.get(article.article_id) else dataclasses.replace(
            article, duplicate_of=leaders.get(article.article_id)
        )
        for article in articles
    ]


def group_members(articles: Iterable[Article]) -> dict[str, list[str]]:
    """leader id → the other articles of its group (sorted), for the manifest: the query side looks
    up a group's members without reading every article."""
    members: dict[str, list[str]] = {}
    for article in articles:
        if article.duplicate_of is not None:
            members.setdefault(article.duplicate_of, []).append(article.article_id)
    return {leader: sorted(others) for leader, others in sorted(members.items())}


class DuplicateGroups:
    """The duplicate groups of a loaded build, read from its manifest."""

    def __init__(self, members: Mapping[str, Sequence[str]]) -> None:
        self._members = {leader: tuple(others) for leader, others in members.items()}
        self._leader = {other: leader for leader, others in self._members.items() for other in others}

    @classmethod
    def of_manifest(cls, manifest: Mapping[str, Any]) -> DuplicateGroups:
        return cls(manifest.get(MANIFEST_KEY) or {})

    def __bool__(self) -> bool:
        return bool(self._members)

    def leader(self, article_id: str) -> str | None:
        """The leader of the article's group, None for an article without copies."""
        if article_id in self._members:
            return article_id
        return self._leader.get(article_id)

    def members(self, article_id: str) -> tuple[str, ...]:
        """Every article of the article's group, the leader first; () for an article without copies."""
        leader = self.leader(article_id)
        return () if leader is None else (leader, *self._members[leader])
