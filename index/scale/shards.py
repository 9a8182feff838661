"""A sharded build: N shards, each a build folder of its own, under one top-level manifest.

    builds/<build id>/
        manifest.json, manifest.sha256    format, counts, corpus digest, the shard list; its
                                          "files" are the shards' own manifests and checksums
        shards/000/ ...                   a complete build folder (see index.format), loadable alone
        shards/001/ ...

Shards split the corpus at article boundaries, in corpus order (index.scale.shard_writer), so shard
i holds rows [first_row, first_row + passages) of the unsharded ranking and an article never spans
two shards. Every shard's BM25 fields are slices of one index over the whole corpus
(`LexicalIndex.slice`), so their scores carry the corpus-wide IDF and average length: a passage
scores in its shard what it would score unsharded. Vectors are searched per shard and merged by
score. Searching a sharded build therefore ranks exactly as the unsharded build does when the
shards' vector indexes are exact (flat); approximate ones (HNSW, compressed) rank as their recall
allows, which each shard's manifest records.

This module opens and searches one; the loader hands it a function that loads each shard as a
build of its own, so it never imports the loader back.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from newsqa.index.format import MANIFEST, SHARDS, IndexCorrupt, corrupt
from newsqa.index.lexical import FIELDS, LexicalIndex, LexicalQuery, Vocabularies
from newsqa.index.loaded import Integrity, LoadedIndex
from newsqa.index.models import Article, Passage
from newsqa.index.options import LoadOptions
from newsqa.index.pools import LazyPool
from newsqa.index.tables import LazyRowMap
from newsqa.index.threads import apply_faiss_threads

log = logging.getLogger(__name__)
T = TypeVar("T")

# Loads the shard folder with the vocabularies every shard shares (index.loader.load_build).
ShardLoader = Callable[[Path, Vocabularies], LoadedIndex]

LOAD_THREADS = 2  # shards loaded at once


def auto_search_threads(cores: int, processes: int = 1) -> int:
    """`LoadOptions.shard_search_threads` when none are configured. FAISS and the BM25 postings
    sums let go of the GIL, so on spare cores a question's shards are searched side by side: the
    cores beyond the two a question's BM25 and its vector search already run on
    (`retrieval.search` overlaps them). On 2 cores that is none: measured there
    (bench/scaleout_bench.py search, 400k passages in 4 shards, six runs), side by side the vector
    search alone was 1.4-1.9 ms faster, but the whole hybrid search 0.7-1.1 ms slower (10.7-12.7
    against 9.5-11.8 ms): both cores were busy already."""
    return max(1, cores // max(1, processes) - 1)


def search_pool(options: LoadOptions) -> LazyPool | None:
    """The pool a sharded index searches its shards with (the caller is one of the threads), or
    None when they are searched one after another."""
    threads = options.shard_search_threads
    return LazyPool("newsqa-shard-search", threads - 1) if threads > 1 else None


def fan_out(pool: LazyPool | None, work: Callable[[Any], T], parts: Sequence[Any]) -> list[T]:
    """`work(part)` for every part, in order: the first here, the others offered to the shard
    search pool (None: all here). A part no pool thread has started by the time this thread gets
    to it is done here: the pool is shared by every question in flight, and the dense side of a
    question fans out beside its BM25, so a caller that only waited could sit idle behind other
    work. Pool threads never wait on the pool."""
    if len(parts) < 2 or pool is None:
        return [work(part) for part in parts]
    others = [pool.submit(work, part) for part in parts[1:]]
    try:
        results = [work(parts[0])]
        for part, future in zip(parts[1:], others):
            # None: the pool was closed (a reload replaced the index) and took nothing.
            results.append(work(part) if future is None or future.cancel() else future.result())
    except BaseException:
        for future in others:
            if future is not None:
                future.cancel()
        raise
    return results


class ConcatRows(Sequence[T]):
    """The shards' row sequences one after the other, as one sequence."""

    def __init__(self, parts: Sequence[Sequence[T]]) -> None:
        self._parts = list(parts)
        self._starts = np.cumsum([0] + [len(p) for p in self._parts]).tolist()

    def __len__(self) -> int:
        return self._starts[-1]

    @property
    def starts(self) -> list[int]:
        """The first row of each part."""
        return self._starts[:-1]

    def locate(self, i: int) -> tuple[int, int]:
        """(shard, row within it) of row i."""
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        part = bisect.bisect_right(self._starts, i) - 1
        return part, i - self._starts[part]

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        part, row = self.locate(int(i))
        return self._parts[part][row]

    def __iter__(self) -> Iterator[T]:
        for part in self._parts:
            yield from part


class MergedArticles(Mapping[str, Article]):
    """The shards' articles as one mapping. An article lives in one shard; finding it asks each
    shard in turn (a handful of dict lookups) rather than holding a map of every article id, which
    took 0.1 s per 271k articles to build at load."""

    def __init__(self, parts: Sequence[Mapping[str, Article]]) -> None:
        self._parts = list(parts)
        self._len = sum(len(p) for p in self._parts)

    def owner(self, article_id: str) -> int:
        """The number of the shard that holds the article (KeyError when none does)."""
        for n, part in enumerate(self._parts):
            if article_id in part:
                return n
        raise KeyError(article_id)

    def __getitem__(self, article_id: str) -> Article:
        return self._parts[self.owner(article_id)][article_id]

    def __contains__(self, article_id: object) -> bool:
        return any(article_id in part for part in self._parts)

    def __iter__(self) -> Iterator[str]:
        for part in self._parts:
            yield from part

    def __len__(self) -> int:
        return self._len


class MergedArticleRows(Mapping[str, range]):
    """article id → the rows of its passages in the whole corpus, asked of the shard that holds it:
    a dict of every article's range cost a sharded load 0.3 s per 271k articles."""

    def __init__(self, articles: MergedArticles, parts: Sequence[Mapping[str, range]], starts: Sequence[int]) -> None:
        self._articles = articles
        self._parts = list(parts)
        self._starts = list(starts)

    def __getitem__(self, article_id: str) -> range:
        n = self._articles.owner(article_id)
        rows, start = self._parts[n][article_id], self._starts[n]
        return range(rows.start + start, rows.stop + start)

    def __iter__(self) -> Iterator[str]:
        return iter(self._articles)

    def __len__(self) -> int:
        return len(self._articles)


class ShardedLexical:
    """The shards' BM25 fields answering as one `LexicalIndex` over the whole corpus."""

    def __init__(self, parts: Sequence[LexicalIndex], pool: LazyPool | None = None) -> None:
        self._parts = list(parts)
        self._pool = pool
        # Corpus-wide document frequencies, for the IDF the answer composer weighs words by.
        self._idf: dict[str, tuple[np.ndarray, float]] = {}
        for name in FIELDS:
            frequencies = [p.document_frequencies(name) for p in self._parts]
            df = np.sum([f for f, _ in frequencies], axis=0)
            n_docs = sum(n for _, n in frequencies)
            self._idf[name] = (np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5)), float(np.log(1.0 + (n_docs + 0.5) / 0.5)))

    @property
    def has_articles(self) -> bool:
        return all(p.has_articles for p in self._parts)

    @property
    def size(self) -> int:
        return sum(p.size for p in self._parts)

    def scores(self, query: LexicalQuery) -> np.ndarray:
        return np.concatenate(fan_out(self._pool, lambda p: p.scores(query), self._parts))

    def article_scores(self, query: LexicalQuery) -> np.ndarray | None:
        parts = fan_out(self._pool, lambda p: p.article_scores(query), self._parts)
        if any(p is None for p in parts):
            return None
        return np.concatenate(parts)  # type: ignore[arg-type]

    def known_fraction(self, folded_terms: Sequence[str]) -> float:
        return self._parts[0].known_fraction(folded_terms)  # every shard holds the whole vocabulary

    def idf_of(self, field: str, tokens: Sequence[str]) -> dict[str, float]:
        vocab = self._parts[0].vocabulary_of(field)
        idf, max_idf = self._idf[field]
        return {t: max_idf if (i := vocab.get(t)) is None else float(idf[i]) for t in tokens}


class ShardedDense:
    """The shards' vector indexes searched as one: each returns its best n, merged by score;
    `faiss_threads` is each search's OpenMP count (0: FAISS's default)."""

    def __init__(
        self, parts: Sequence[Any], starts: Sequence[int], pool: LazyPool | None = None, faiss_threads: int = 0
    ) -> None:
        self.parts = list(parts)
        self.starts = list(starts)
        self.ntotal = sum(int(p.ntotal) for p in self.parts)
        self._pool = pool
        self._faiss_threads = faiss_threads

    def search(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        def search_one(shard: tuple[Any, int]) -> tuple[np.ndarray, np.ndarray]:
            part, start = shard
            apply_faiss_threads(self._faiss_threads)  # OpenMP's count is per thread: this may be a pool thread
            scores, rows = part.search(queries, min(n, int(part.ntotal)))
            return scores, np.where(rows >= 0, rows + start, -1)

        found = fan_out(self._pool, search_one, [(p, s) for p, s in zip(self.parts, self.starts) if p.ntotal > 0])
        scores = np.concatenate([scores for scores, _ in found], axis=1)
        rows = np.concatenate([rows for _, rows in found], axis=1)
        # Ties go to the lower row, as one exact index over the whole corpus orders them.
        order = np.lexsort((rows, -scores), axis=1)[:, :n]
        return np.take_along_axis(scores, order, axis=1), np.take_along_axis(rows, order, axis=1)


def load_sharded(
    folder: Path, manifest: dict[str, Any], load_shard: ShardLoader, options: LoadOptions = LoadOptions()
) -> LoadedIndex:
    """Open every shard listed in a top-level manifest (already checked) as one index, each by
    `load_shard`; `options` say how its shards are searched."""
    shard_list = manifest.get("shards")
    if not isinstance(shard_list, list) or not shard_list:
        raise corrupt(folder, "manifest.json lists no shards")
    names = [str(entry.get("name", "")) for entry in shard_list]
    for name in names:
        if not name.startswith(f"{SHARDS}/") or not (Path(folder) / name / MANIFEST).is_file():
            raise corrupt(folder, f"shard {name or '?'} is missing")
    # Two shards at a time: one parses its tables (Python, holding the GIL) while FAISS reads the
    # other's vectors and the disk reads ahead (both without it).
    with ThreadPoolExecutor(max_workers=min(LOAD_THREADS, len(names)), thread_name_prefix="newsqa-shard-load") as pool:
        vocabularies = Vocabularies()  # each shard holds the whole corpus's vocabulary: parsed once
        loads = [pool.submit(load_shard, Path(folder) / name, vocabularies) for name in names]
        shards: list[LoadedIndex] = []
        try:
            for name, entry, load in zip(names, shard_list, loads):  # the first bad shard in list order is the one named
                try:
                    shard = load.result()
                except IndexCorrupt as exc:
                    raise corrupt(folder, f"shard {name} is damaged: {shard_reason(exc)}") from None
                if len(shard.passages) != entry.get("passages") or shard.manifest.get("build_id") != entry.get("build_id"):
                    raise corrupt(folder, f"shard {name} is not the one the manifest lists")
                shards.append(shard)
        finally:
            for load in loads:
                load.cancel()  # a refused build: the shards not yet started need not be read
    dense_parts = [s.dense for s in shards]
    if any(d is None for d in dense_parts) and not all(d is None for d in dense_parts):
        raise corrupt(folder, "some shards have vectors and some do not")
    passages: ConcatRows[Passage] = ConcatRows([s.passages for s in shards])
    starts = passages.starts
    if len(passages) != manifest.get("passage_count"):
        raise corrupt(folder, "the passage count does not match the manifest")
    articles = MergedArticles([s.articles for s in shards])
    parts = [s.article_rows for s in shards]
    article_rows = None if any(p is None for p in parts) else MergedArticleRows(articles, parts, starts)  # type: ignore[arg-type]
    integrity = shards[0].integrity if len(shards) == 1 else _merged_integrity(shards)
    pool = search_pool(options)  # started by the first search that fans out; closed with the index
    return LoadedIndex(
        folder=Path(folder),
        manifest=manifest,
        articles=articles,
        passages=passages,
        lexical=ShardedLexical([s.lexical for s in shards], pool),  # type: ignore[arg-type]
        dense=None if dense_parts[0] is None else ShardedDense(dense_parts, starts, pool, options.faiss_threads),
        passage_rows=LazyRowMap(passages),
        integrity=integrity,
        article_rows=article_rows,
        shards=shards,
        options=options,
        search_pool=pool,
    )


def shard_reason(exc: IndexCorrupt) -> str:
    """The part of a shard's 'is damaged (…)' message that says what is wrong."""
    text = str(exc)
    start, end = text.find("("), text.rfind(")")
    return text[start + 1 : end] if 0 <= start < end else text


def _merged_integrity(shards: Sequence[LoadedIndex]) -> Integrity:
    """One verdict over the shards' background checks (see `index.loaded.Integrity`)."""
    pending = [f"{n}:{name}" for n, s in enumerate(shards) for name in s.integrity.pending]
    merged = Integrity(pending)
    if pending:

        def wait() -> None:
            for s in shards:
                s.integrity.wait()
            merged.finish(next((s.integrity.error for s in shards if s.integrity.error), None))

        threading.Thread(target=wait, name="newsqa-verify-shards", daemon=True).start()
    return merged


__all__ = [
    "ConcatRows",
    "MergedArticleRows",
    "MergedArticles",
    "ShardLoader",
    "ShardedDense",
    "ShardedLexical",
    "auto_search_threads",
    "fan_out",
    "load_sharded",
    "search_pool",
]
