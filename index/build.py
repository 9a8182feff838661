"""One index build: read → clean → split → embed (with cache) → write → verify → swap."""

from __future__ import annotations

import errno
import logging
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from newsqa.index.articles import MAX_ARTICLE_BYTES, SeedsError, read_articles
from newsqa.index.duplicates import MANIFEST_KEY as DUPLICATES
from newsqa.index.duplicates import group_members, mark_duplicates
from newsqa.index.embedding.cache import EmbeddingCache, text_hash
from newsqa.index.embedding.embedder import Embedder, ModelUnavailable
from newsqa.index.format import CACHE, IndexUnavailable, resolve_build
from newsqa.index.lexical import LexicalIndex
from newsqa.index.loader import load_build
from newsqa.index.models import Article, Passage
from newsqa.index.options import BuildOptions, LoadOptions
from newsqa.index.scale.shard_writer import (
    ShardJob,
    plan_shards,
    shard_count,
    write_sharded_build,
    write_shards_here,
)
from newsqa.index.split import DEFAULT_MAX_WORDS, DEFAULT_MIN_WORDS, split_passages
from newsqa.index.web.library import LIBRARY, read_library
from newsqa.index.writer import BuildContents, build_lock, prune_builds, swap_current, write_build

log = logging.getLogger(__name__)

# Called with (step name, items done, items total); the CLI turns it into a progress bar.
Progress = Callable[[str, int, int], None]


@dataclass
class BuildReport:
    folder: Path
    articles: int
    passages: int
    embedded: int  # passages that went through the model
    cached: int  # passages whose vectors came from the cache
    seconds: float
    warnings: list[str] = field(default_factory=list)
    shards: int = 1
    dense_index: dict = field(default_factory=dict)  # type, parameters, measured recall@10
    removed: dict[str, dict[str, int]] = field(default_factory=dict)  # article id -> {reason: parts removed}


def _no_progress(step: str, done: int, total: int) -> None:
    pass


# Encodes texts for a build, yielding the vectors of consecutive chunks of them in order; called
# with a tick(n) to report n more texts done. The local one runs the model here;
# index.scale.ray_build's runs it on a Ray actor pool.
Encoder = Callable[[list[str], Callable[[int], None]], Iterator[np.ndarray]]
CACHE_CHUNK = 256  # commit to the cache as we go: an interrupted build keeps what it embedded


def local_encoder(embedder: Embedder) -> Encoder:
    def encode(texts: list[str], tick: Callable[[int], None]) -> Iterator[np.ndarray]:
        for start in range(0, len(texts), CACHE_CHUNK):
            yield embedder.encode_passages(texts[start : start + CACHE_CHUNK], progress=tick)

    return encode


def embed_with_cache(
    passages: list[Passage],
    embedder: Embedder,
    cache: EmbeddingCache,
    progress: Progress,
    encode: Encoder | None = None,
) -> tuple[np.ndarray, int]:
    """Vectors for all passages, running the model only on texts the cache has not seen."""
    texts = [p.embedding_text() for p in passages]
    hashes = [text_hash(t) for t in texts]
    model_key = cache_key(embedder)
    dimension = embedder.dimension
    known = cache.get_many(model_key, hashes, dimension)
    missing = [i for i, h in enumerate(hashes) if h not in known]
    # Duplicate texts inside one build are embedded once.
    todo = list(dict.fromkeys(hashes[i] for i in missing))
    first_text = {hashes[i]: texts[i] for i in reversed(missing)}
    # Shortest first, before the texts are cut into cache chunks: a model batch is padded to its
    # longest text, and sorting only within each chunk left mixed lengths in every batch (the build
    # embedded at 0.94 × the raw batch encode, which sorts all texts at once).
    todo.sort(key=lambda digest: len(first_text[digest]))
    done = 0
    progress("embed", 0, len(todo))

    def tick(n: int) -> None:
        nonlocal done
        done += n
        progress("embed", done, len(todo))

    encode = encode or local_encoder(embedder)
    position = 0
    for vectors in encode([first_text[h] for h in todo], tick):
        batch = todo[position : position + len(vectors)]
        bad = ~np.isfinite(np.asarray(vectors)).all(axis=1)
        if bad.any():
            sample = " ".join(first_text[batch[int(np.argmax(bad))]].split())[:60]
            raise ModelUnavailable(
                f"The embedding model {embedder.model_id} returned vectors that are not numbers (NaN or "
                f"infinite) for {int(bad.sum())} passages, such as '{sample}…'; the model files may be "
                "damaged: reinstall or re-download the model, then build again."
            )
        position += len(vectors)
        cache.put_many(model_key, zip(batch, vectors))
        known.update(zip(batch, vectors))
    if position != len(todo):
        raise RuntimeError(f"the encoder returned {position} vectors for {len(todo)} passages")
    matrix = np.zeros((len(passages), dimension), dtype=np.float32)
    for i, digest in enumerate(hashes):
        matrix[i] = known[digest]
    return matrix, len(todo)


def cache_key(embedder: Embedder) -> str:
    prompts = getattr(embedder, "prompts", ("", ""))
    # int8 ONNX vectors differ slightly from torch's: never serve one backend's from the other's cache.
    backend = getattr(embedder, "active_backend", None) or "torch"
    return f"{embedder.model_id}|{prompts[1]}|{embedder.dimension}|{backend}"


class LocalEngine:
    """Builds in this process: the default engine, which needs no Ray."""

    name = "local"

    def read(
        self, seeds: Path, max_bytes: int, max_words: int, min_words: int
    ) -> tuple[list[Article], list[Passage], list[str]]:
        """(articles, their passages grouped in article order, warnings about skipped files)."""
        read = read_articles(Path(seeds), max_bytes=max_bytes)
        passages = [p for article in read.articles for p in split_passages(article, max_words, min_words)]
        return read.articles, passages, read.warnings

    def encoder(self, embedder: Embedder) -> Encoder:
        return local_encoder(embedder)

    def write_shards(self, jobs: list[ShardJob]) -> None:
        write_shards_here(jobs)

    def close(self) -> None:
        pass


class ArticlesEngine(LocalEngine):
    """Builds from articles already read (made in memory, fetched), in this process: `read` ignores
    the folder it is given and splits these."""

    def __init__(self, articles: list[Article]) -> None:
        self.articles = articles

    def read(
        self, seeds: Path, max_bytes: int, max_words: int, min_words: int
    ) -> tuple[list[Article], list[Passage], list[str]]:
        return self.articles, [p for a in self.articles for p in split_passages(a, max_words, min_words)], []


class BuildEngine(Protocol):
    name: str

    def read(
        self, seeds: Path, max_bytes: int, max_words: int, min_words: int
    ) -> tuple[list[Article], list[Passage], list[str]]: ...

    def encoder(self, embedder: Embedder) -> Encoder: ...

    def write_shards(self, jobs: list[ShardJob]) -> None: ...

    def close(self) -> None: ...


def build_index(
    seeds: Path | None,
    root: Path,
    embedder: Embedder | None,
    max_words: int = DEFAULT_MAX_WORDS,
    min_words: int = DEFAULT_MIN_WORDS,
    max_article_bytes: int = MAX_ARTICLE_BYTES,
    progress: Progress = _no_progress,
    engine: BuildEngine | None = None,
    shards: int | None = None,
    options: BuildOptions = BuildOptions(),
) -> BuildReport:
    """Build a new index from `seeds` and the library of `root` under `root` and make it current.

    Nothing visible changes until the new build is written, re-read and verified; any failure
    before that leaves the previous build serving. `embedder=None` builds a lexical-only index.
    `engine` says where the work runs (this process by default; `index.scale.ray_build.RayEngine`
    on a Ray cluster); `shards` how many shards to cut the index into (default: one per
    `options.shard_passages` passages); `options` the rest of the build's tuning. The articles
    `newsqa index add` stored in `root`'s library (index/web/library.py) follow the seeds';
    `seeds=None` builds from the library alone.
    """
    started = time.perf_counter()
    root = Path(root)
    engine = engine or LocalEngine()
    try:
        with build_lock(root):
            if embedder is not None:
                embedder.warm_up()  # fail fast, before any work, when the model cannot be had
            if seeds is not None:
                articles, passages, warnings = engine.read(Path(seeds), max_article_bytes, max_words, min_words)
            else:
                articles, passages, warnings = [], [], []
            articles, passages, warnings = with_library(root, articles, passages, warnings, max_words, min_words)
            if not articles:
                where = seeds if seeds is not None else root / LIBRARY
                raise SeedsError(f"No usable articles in {where}; add .txt or .md files and build again.")
            progress("read", len(articles), len(articles))
            progress("split", len(passages), len(passages))
            # The same wire story from several sites: grouped, so an answer cites it once.
            articles = mark_duplicates(articles)

            vectors = None
            embedded = 0
            removed = removal_counts(articles)
            extra: dict = {
                "splitter": {"max_words": max_words, "min_words": min_words},
                "warnings": warnings,
                "removed": removed,
            }
            if embedder is not None:
                cache = EmbeddingCache(root / CACHE)
                try:
                    vectors, embedded = embed_with_cache(passages, embedder, cache, progress, engine.encoder(embedder))
                finally:
                    cache.close()
                prompts = getattr(embedder, "prompts", ("", ""))
                extra["model"] = {
                    "id": embedder.model_id,
                    "description": getattr(embedder, "description", embedder.model_id),
                    "dimension": embedder.dimension,
                    "query_prompt": prompts[0],
                    "passage_prompt": prompts[1],
                }
            else:
                extra["model"] = {"id": None, "dimension": None}
            extra["engine"] = engine.name
            extra["published"] = published_range(articles)
            extra["sources"] = source_counts(articles)
            extra[DUPLICATES] = group_members(articles)

            progress("lexical", 0, 1)
            lexical = LexicalIndex.build([p.embedding_text() for p in passages], groups=[p.article_id for p in passages])
            progress("lexical", 1, 1)

            progress("write", 0, 1)
            plans = plan_shards(articles, passages, shards or shard_count(len(passages), options.shard_passages))
            contents = BuildContents(articles, passages, vectors, lexical, extra)
            if len(plans) > 1:
                folder = write_sharded_build(root, contents, plans, write_shards=engine.write_shards, options=options)
            else:
                folder = write_build(root, contents, options)
            # Never swap in a build we cannot read back: checked as it was checksummed.
            readback = LoadOptions(verify=True, checksums=options.checksums, faiss_threads=options.faiss_threads)
            loaded = load_build(folder, readback)
            swap_current(root, folder)
            prune_builds(root)
            progress("write", 1, 1)

    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        raise disk_full(root) from None
    except sqlite3.OperationalError as exc:  # the embedding cache: "database or disk is full"
        if "full" not in str(exc):
            raise
        raise disk_full(root) from None

    return BuildReport(
        folder=folder,
        articles=len(articles),
        passages=len(passages),
        embedded=embedded,
        cached=len(passages) - embedded,
        seconds=time.perf_counter() - started,
        warnings=warnings,
        shards=len(plans),
        dense_index=loaded.manifest.get("dense_index", {}),
        removed=removed,
    )


def published_range(articles: list[Article]) -> dict[str, Any]:
    """How many articles say when they were published, and the first and last date: a search only
    weighs dates (retrieval/when.py) in a build that has them, without reading every article."""
    dates = sorted(a.published[:10] for a in articles if a.published)
    return {"count": len(dates), "first": dates[0] if dates else None, "last": dates[-1] if dates else None}


def source_counts(articles: list[Article]) -> dict[str, int]:
    """Articles by publisher (Article.site; "files" for plain files), most first: what `newsqa index
    info` shows without reading every article."""
    counts: dict[str, int] = {}
    for article in articles:
        counts[article.site or FILES] = counts.get(article.site or FILES, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


FILES = "files"  # the source of articles read from plain files


def with_library(
    root: Path, articles: list[Article], passages: list[Passage], warnings: list[str], max_words: int, min_words: int
) -> tuple[list[Article], list[Passage], list[str]]:
    """The seeds' articles, passages and warnings followed by the library's. With no library they
    come back as they were (a seeds build is exactly as before); a stored article whose id a seeds
    file already gives is skipped with a warning (the file wins: the operator put it there)."""
    stored = read_library(root)
    if not stored.articles and not stored.warnings:
        return articles, passages, warnings
    articles, passages, warnings = list(articles), list(passages), [*warnings, *stored.warnings]
    taken = {a.article_id for a in articles}
    for article in stored.articles:
        if article.article_id in taken:
            warnings.append(f"{article.source}: skipped, its id {article.article_id} is a seeds file's.")
            continue
        taken.add(article.article_id)
        articles.append(article)
        passages.extend(split_passages(article, max_words, min_words))
    return articles, passages, warnings


class DiskFull(IndexUnavailable):
    """The build ran out of disk space; the previous build keeps serving."""


def disk_full(root: Path) -> DiskFull:
    """One sentence naming the folder, the space left and, from the newest build, the space needed."""
    free = shutil.disk_usage(root).free
    newest = resolve_build(root, must_exist=False)
    need = sum(f.stat().st_size for f in newest.rglob("*") if f.is_file()) if newest else 0
    needed = f"; a build of this index takes about {need / 1e6:,.0f} MB" if need else ""
    return DiskFull(
        f"The disk holding {root} is full ({free / 1e6:,.0f} MB free{needed}): free some space and build "
        "again; the previous build keeps serving."
    )


def removal_counts(articles: list[Article]) -> dict[str, dict[str, int]]:
    """What cleaning took out of each article that lost anything: {article id: {reason: count}}."""
    out: dict[str, dict[str, int]] = {}
    for article in articles:
        if article.removed:
            counts: dict[str, int] = {}
            for part in article.removed:
                counts[part.reason] = counts.get(part.reason, 0) + 1
            out[article.article_id] = counts
    return out


__all__ = ["BuildEngine", "BuildReport", "LocalEngine", "ModelUnavailable", "SeedsError", "build_index", "embed_with_cache"]
