"""A build as the query side holds it once loaded: `LoadedIndex`, and the verdict of the checksums
that finish after the load (`Integrity`)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from newsqa.index.duplicates import DuplicateGroups
from newsqa.index.lexical import LexicalIndex
from newsqa.index.models import Article, Passage
from newsqa.index.options import LoadOptions
from newsqa.index.pools import LazyPool
from newsqa.index.scale import dense_memory


class Integrity:
    """The full-checksum verdict on large files, reached in the background after a load."""

    def __init__(self, pending: Sequence[str] = ()) -> None:
        self.pending = tuple(pending)  # files only sample-checked at load
        self.error: str | None = None  # one sentence, when a full checksum failed
        self._done = threading.Event()
        if not self.pending:
            self._done.set()

    @property
    def checked(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def finish(self, error: str | None) -> None:
        self.error = error
        self._done.set()


@dataclass
class LoadedIndex:
    folder: Path
    manifest: dict[str, Any]
    articles: Mapping[str, Article]  # a dict, or a lazy ArticleTable for large builds
    passages: Sequence[Passage]  # indexed by row: a list, or a lazy JsonlRows for large builds
    lexical: LexicalIndex
    # faiss.Index. Large ones are memory-mapped (IO_FLAG_MMAP_IFC): search only, never add to it.
    dense: Any | None
    passage_rows: Mapping[str, int] = field(default_factory=dict)
    integrity: Integrity = field(default_factory=Integrity)
    # article id → its passages' rows, when the build stores them grouped (every build does).
    article_rows: Mapping[str, range] | None = None
    # The shards of a sharded build (see index.scale.shards), each loaded as a build of its own.
    shards: Sequence[LoadedIndex] = ()
    dense_mapped: bool = False  # the vector index was opened memory-mapped (above options.mmap_bytes)
    # The background copy of a large memory-mapped vector index into private memory, when the
    # options asked for one (index.scale.dense_memory); `dense` swaps to the copy when it is read.
    dense_copy: dense_memory.PrivateCopy | None = None
    options: LoadOptions = field(default_factory=LoadOptions)  # what it was loaded with; searches use its threads
    # The threads that search a sharded build's shards side by side (index.scale.shards).
    search_pool: LazyPool | None = None

    @cached_property
    def duplicates(self) -> DuplicateGroups:
        """The build's groups of near-duplicate stories (index/duplicates.py), from its manifest."""
        return DuplicateGroups.of_manifest(self.manifest)

    @property
    def model_id(self) -> str | None:
        return self.manifest.get("model", {}).get("id")

    @property
    def dense_memory(self) -> str | None:
        """Where the vector index is searched: "memory" (read in whole), "mmap", "copying" (mapped
        while its huge-page copy is read) or "private" (the copy); shards' joined by "+"; None
        without vectors."""
        if self.shards:
            return "+".join(sorted({m for shard in self.shards if (m := shard.dense_memory)})) or None
        if self.dense is None:
            return None
        if self.dense_copy is not None:
            if self.dense_copy.memory == dense_memory.PRIVATE:
                return dense_memory.PRIVATE
            return dense_memory.MMAP if self.dense_copy.wait(0) else "copying"
        return dense_memory.MMAP if self.dense_mapped else "memory"

    def close(self) -> None:
        """Let the threads this index started for searching go (a reload replaced it). It still
        answers a search in flight, on the calling thread."""
        if self.search_pool is not None:
            self.search_pool.close()

    def passages_of(self, article_id: str) -> list[Passage]:
        """One article's passages in order, without walking every passage of the index."""
        if self.article_rows is not None:
            rows = self.article_rows.get(article_id, range(0))
            return [self.passages[i] for i in rows]
        return [p for p in self.passages if p.article_id == article_id]
