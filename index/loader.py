"""Loading a build: its files checked against the manifest, its tables opened, its vector and BM25
indexes read, into one `LoadedIndex`.

Loading is cheap at any size (measured at 1M passages in bench/scale_bench.py): a build of more than
`LoadOptions.lazy_rows` passages is opened, not parsed. Passages and articles are read row by row
through the offsets in rows.npz, large vector and BM25 files are memory-mapped, and files that the
build gave a sampled digest (index.format.Checksums) are checked at load by size and sampled blocks,
then hashed in full in a background thread that logs (and records in `LoadedIndex.integrity`) any
damage it finds.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from newsqa.index.ann import FLAT, HNSW, HNSW_FP16, dense_index_type, set_search_params
from newsqa.index.copies import COPIES, Copies, CopiesExpanded
from newsqa.index.format import (
    ARTICLES,
    DENSE,
    LEXICAL,
    PASSAGES,
    ROWS,
    Checksums,
    IndexCorrupt,
    IndexUnavailable,
    check_file,
    corrupt,
    read_manifest,
    resolve_build,
    verify_files,
)
from newsqa.index.lexical import LexicalIndex, Vocabularies
from newsqa.index.loaded import Integrity, LoadedIndex
from newsqa.index.models import Article, Passage
from newsqa.index.options import LoadOptions
from newsqa.index.scale import dense_memory
from newsqa.index.scale.readahead import read_in_background, sequential_readahead
from newsqa.index.scale.shards import load_sharded
from newsqa.index.tables import ArticleRows, ArticleTable, JsonlRows, LazyRowMap
from newsqa.index.threads import apply_faiss_threads

log = logging.getLogger(__name__)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _verify_later(
    folder: Path, manifest: dict[str, Any], names: Sequence[str], integrity: Integrity, checksums: Checksums
) -> None:
    def run() -> None:
        error = None
        for name in names:
            try:
                check_file(folder, name, manifest["files"][name], True, checksums)
            except IndexCorrupt as exc:
                error = str(exc)
                log.error("%s", exc)
                break
            except OSError as exc:  # the build was removed under us; nothing to verify any more
                error = f"{name} could not be read to verify it ({exc.strerror})"
                break
        integrity.finish(error)

    threading.Thread(target=run, name="newsqa-verify", daemon=True).start()


def _read_rows(folder: Path) -> dict[str, np.ndarray] | None:
    path = folder / ROWS
    if not path.is_file():
        return None  # a build written before rows.npz existed: parse it all
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


@dataclass
class DenseRead:
    index: Any | None  # faiss.Index, or a wrapper that searches like one; None without vectors
    mapped: bool = False  # memory-mapped (IO_FLAG_MMAP_IFC)
    copy: dense_memory.PrivateCopy | None = None  # not started: the load starts it once every file has passed


def read_dense(folder: Path, manifest: dict[str, Any], options: LoadOptions = LoadOptions()) -> DenseRead:
    """The vector index, and its copy into private memory if the options ask for one."""
    path = folder / DENSE
    if not path.is_file():
        return DenseRead(None)
    import faiss

    mapped = path.stat().st_size > options.mmap_bytes
    if mapped:
        with sequential_readahead(path):  # FAISS copies the graph out of the map: fault it in fast
            dense = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
    else:
        dense = faiss.read_index(str(path))
    params = manifest.get("dense_index", {})
    set_search_params(dense, params)
    holder: Any = CopiesExpanded(dense, Copies.load(folder / COPIES)) if (folder / COPIES).is_file() else dense
    # Only the index types whose vectors and graph FAISS reads zero-copy: others would be copied
    # twice. The build's files were checked above; the copy reads the same immutable file.
    if not (
        mapped
        and options.dense_memory == dense_memory.PRIVATE
        and dense_index_type(dense) in (FLAT, HNSW, HNSW_FP16)
    ):
        return DenseRead(holder, mapped)
    if holder is dense:
        holder = dense_memory.SwappableDense(dense)
    return DenseRead(holder, mapped, dense_memory.PrivateCopy(path, holder, lambda index: set_search_params(index, params)))


def _eager_tables(folder: Path) -> tuple[dict[str, Article], list[Passage]]:
    articles = {a.article_id: a for a in map(Article.from_json, _read_jsonl(folder / ARTICLES))}
    passages = [Passage.from_json(row) for row in _read_jsonl(folder / PASSAGES)]
    return articles, passages


def _lazy_tables(folder: Path, rows: dict[str, np.ndarray]) -> tuple[ArticleTable, JsonlRows[Passage]]:
    passage_offsets, article_offsets = rows["passage_offsets"], rows["article_offsets"]
    if int(passage_offsets[-1]) != (folder / PASSAGES).stat().st_size or int(article_offsets[-1]) != (
        folder / ARTICLES
    ).stat().st_size:
        raise corrupt(folder, "rows.npz and the passage or article files disagree in size")
    passages = JsonlRows(folder / PASSAGES, passage_offsets, Passage.from_json)
    article_rows = JsonlRows(folder / ARTICLES, article_offsets, Article.from_json)
    articles = ArticleTable(article_rows, rows["article_ids"].tolist())
    # Parse the ends now, so a damaged file fails the load rather than a question.
    for table in (passages, article_rows):
        if len(table):
            table[0], table[-1]
    return articles, passages


def load_build(
    folder: Path,
    options: LoadOptions = LoadOptions(),
    full_verify: bool = False,
    vocabularies: Vocabularies | None = None,
) -> LoadedIndex:
    """Load one build folder, checking its files against the manifest's checksums first.

    With `options.verify`, every file is hashed in full, except files with a sampled digest, which
    are checked by size and sampled blocks and then in full in the background (see
    `LoadedIndex.integrity`); full_verify=True hashes everything before returning. `vocabularies`
    lets loads share parsed BM25 vocabularies (the shards of one build carry the same one).
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    integrity = Integrity()
    if "shards" in manifest:
        if options.verify:
            verify_files(folder, manifest, True, options.checksums)
        return load_sharded(
            folder,
            manifest,
            lambda shard, shared: load_build(shard, options, full_verify, vocabularies=shared),
            options,
        )
    if options.verify:
        sampled = verify_files(folder, manifest, full_verify, options.checksums)
        if sampled:
            integrity = Integrity(sampled)
    try:
        # FAISS reads without holding the GIL, so the vector index's I/O overlaps the parsing of
        # the tables and BM25 (a 1M-passage load with a cold page cache: 2.1 s one after the other).
        with ThreadPoolExecutor(1, thread_name_prefix="newsqa-dense") as pool:
            dense_read = pool.submit(read_dense, folder, manifest, options)
            rows = _read_rows(folder)
            lazy = rows is not None and int(manifest.get("passage_count") or 0) > options.lazy_rows
            articles, passages = _lazy_tables(folder, rows) if lazy else _eager_tables(folder)  # type: ignore[arg-type]
            lexical = LexicalIndex.load(folder / LEXICAL, mmap=lazy, vocabularies=vocabularies)
            dense = dense_read.result()
        apply_faiss_threads(options.faiss_threads)  # OpenMP's count is per thread: set it for the loading one too
        if dense.index is not None and dense.index.ntotal != len(passages):
            raise corrupt(folder, "the vector index and the passages disagree in size")
    except IndexUnavailable:
        raise
    except Exception as exc:  # any parse error in a file means the build is unusable
        raise corrupt(folder, f"{type(exc).__name__} while reading it") from None
    if len(passages) != manifest.get("passage_count"):
        raise corrupt(folder, "the passage count does not match the manifest")
    if integrity.pending:
        # The vector index first: searching a memory-mapped one is slow until its pages are cached
        pending = sorted(integrity.pending, key=lambda name: name != DENSE)
        _verify_later(folder, manifest, pending, integrity, options.checksums)
    article_rows = None
    if rows is not None and "article_passage_starts" in rows:
        positions = (
            articles.positions
            if isinstance(articles, ArticleTable)
            else {article_id: i for i, article_id in enumerate(rows["article_ids"].tolist())}
        )
        article_rows = ArticleRows.of(positions, rows["article_passage_starts"])
    loaded = LoadedIndex(
        folder=folder,
        manifest=manifest,
        articles=articles,
        passages=passages,
        lexical=lexical,
        dense=dense.index,
        passage_rows=LazyRowMap(passages) if lazy else {p.passage_id: i for i, p in enumerate(passages)},
        integrity=integrity,
        article_rows=article_rows,
        dense_mapped=dense.mapped,
        dense_copy=dense.copy,
        options=options,
    )
    if dense.copy is not None:
        dense.copy.start()
    elif dense.mapped and DENSE not in integrity.pending:
        read_in_background(folder / DENSE)  # nothing else reads it through: cache it for the searches
    return loaded


def open_index(root: Path, options: LoadOptions = LoadOptions()) -> LoadedIndex:
    return load_build(resolve_build(root), options)  # type: ignore[arg-type]
