"""One index build: read → clean → split → embed (with cache) → write → verify → swap."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.articles import MAX_ARTICLE_BYTES, SeedsError, read_articles
from index.cache import EmbeddingCache, text_hash
from index.embedder import Embedder, ModelUnavailable
from index.lexical import LexicalIndex
from index.models import Passage
from index.split import DEFAULT_MAX_WORDS, DEFAULT_MIN_WORDS, split_passages
from index.store import CACHE, build_lock, load_build, prune_builds, swap_current, write_build

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


def _no_progress(step: str, done: int, total: int) -> None:
    pass


def embed_with_cache(
    passages: list[Passage], embedder: Embedder, cache: EmbeddingCache, progress: Progress
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
    done = 0
    progress("embed", 0, len(todo))
    chunk = 256  # commit to the cache as we go: an interrupted build keeps what it embedded
    for start in range(0, len(todo), chunk):
        batch = todo[start : start + chunk]

        def tick(n: int) -> None:
            nonlocal done
            done += n
            progress("embed", done, len(todo))

        vectors = embedder.encode_passages([first_text[h] for h in batch], progress=tick)
        cache.put_many(model_key, zip(batch, vectors))
        known.update(zip(batch, vectors))
    matrix = np.zeros((len(passages), dimension), dtype=np.float32)
    for i, digest in enumerate(hashes):
        matrix[i] = known[digest]
    return matrix, len(todo)


def cache_key(embedder: Embedder) -> str:
    prompts = getattr(embedder, "prompts", ("", ""))
    # int8 ONNX vectors differ slightly from torch's: never serve one backend's from the other's cache.
    backend = getattr(embedder, "active_backend", None) or "torch"
    return f"{embedder.model_id}|{prompts[1]}|{embedder.dimension}|{backend}"


def build_index(
    seeds: Path,
    root: Path,
    embedder: Embedder | None,
    max_words: int = DEFAULT_MAX_WORDS,
    min_words: int = DEFAULT_MIN_WORDS,
    max_article_bytes: int = MAX_ARTICLE_BYTES,
    progress: Progress = _no_progress,
) -> BuildReport:
    """Build a new index from `seeds` under `root` and make it current.

    Nothing visible changes until the new build is written, re-read and verified; any failure
    before that leaves the previous build serving. `embedder=None` builds a lexical-only index.
    """
    started = time.perf_counter()
    root = Path(root)
    with build_lock(root):
        if embedder is not None:
            embedder.warm_up()  # fail fast, before any work, when the model cannot be had
        read = read_articles(Path(seeds), max_bytes=max_article_bytes)
        if not read.articles:
            raise SeedsError(f"No usable articles in {seeds}; add .txt or .md files and build again.")
        progress("read", len(read.articles), len(read.articles))

        passages = [p for article in read.articles for p in split_passages(article, max_words, min_words)]
        progress("split", len(passages), len(passages))

        vectors = None
        embedded = 0
        extra: dict = {"splitter": {"max_words": max_words, "min_words": min_words}, "warnings": read.warnings}
        if embedder is not None:
            cache = EmbeddingCache(root / CACHE)
            try:
                vectors, embedded = embed_with_cache(passages, embedder, cache, progress)
            finally:
                cache.close()
            prompts = getattr(embedder, "prompts", ("", ""))
            extra["model"] = {
                "id": embedder.model_id,
                "dimension": embedder.dimension,
                "query_prompt": prompts[0],
                "passage_prompt": prompts[1],
            }
        else:
            extra["model"] = {"id": None, "dimension": None}

        progress("lexical", 0, 1)
        lexical = LexicalIndex.build([p.embedding_text() for p in passages], groups=[p.article_id for p in passages])
        progress("lexical", 1, 1)

        progress("write", 0, 1)
        folder = write_build(root, read.articles, passages, vectors, lexical, extra)
        load_build(folder, verify=True)  # never swap in a build we cannot read back
        swap_current(root, folder)
        prune_builds(root)
        progress("write", 1, 1)

    return BuildReport(
        folder=folder,
        articles=len(read.articles),
        passages=len(passages),
        embedded=embedded,
        cached=len(passages) - embedded,
        seconds=time.perf_counter() - started,
        warnings=read.warnings,
    )


__all__ = ["BuildReport", "ModelUnavailable", "SeedsError", "build_index", "embed_with_cache"]
