"""The index folder on disk: writing a build, swapping it in atomically, loading and verifying it.

Layout under the index root (NEWSQA_INDEX_DIR):

    current -> builds/<build id>      symlink, swapped atomically with os.replace
    builds/<build id>/                immutable once written
        manifest.json                 format, model, counts, corpus digest, file checksums
        articles.jsonl, passages.jsonl
        rows.npz                      byte offset of every row of both, and the article ids, so a
                                      large build reads rows on demand instead of parsing them all
        dense.faiss                   absent when the build had no embedding model; one entry
                                      per distinct vector
        copies.npz                    only when passages share a vector: which rows each entry
                                      stands for (index/copies.py)
        lexical/accented/*, lexical/folded/*
    embeddings.sqlite                 embedding cache shared by builds
    .build.lock                       one build at a time

Readers resolve `current` once and keep that folder for as long as they serve from it, so a build
that swaps in a new one, or dies half way, never changes what a running reader sees.

Loading is cheap at any size (measured at 1M passages in bench/scale_bench.py): a build of more than
LAZY_ROWS passages is opened, not parsed. Passages and articles are read row by row through the
offsets in rows.npz, large vector and BM25 files are memory-mapped, and files larger than
FULL_CHECK_BYTES are checked at load by size and a digest of sampled blocks, then hashed in full in
a background thread that logs (and records in `LoadedIndex.integrity`) any damage it finds.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import logging
import mmap
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

import numpy as np

from newsqa.index import dense_memory
from newsqa.index.copies import COPIES, Copies, CopiesExpanded
from newsqa.index.embedder import apply_faiss_threads
from newsqa.index.lexical import LexicalIndex, Vocabularies
from newsqa.index.models import Article, Passage
from newsqa.index.readahead import read_in_background, sequential_readahead

log = logging.getLogger(__name__)
T = TypeVar("T")

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_DIGEST = "manifest.sha256"  # the manifest's own checksum: its fields are checked too
PASSAGES = "passages.jsonl"
ARTICLES = "articles.jsonl"
DENSE = "dense.faiss"
ROWS = "rows.npz"
LEXICAL = "lexical"
CURRENT = "current"
BUILDS = "builds"
CACHE = "embeddings.sqlite"
KEEP_BUILDS = 3

# Exact search costs ~0.15 µs per passage here (20k passages ≈ 3 ms, 200k ≈ 30 ms); above this
# size a question's search would cost more than embedding it, so we switch to HNSW.
FLAT, HNSW, IVF = "flat", "hnsw", "ivf"
# Compressed kinds, for shards past COMPRESS_THRESHOLD: IVF over 8-bit scalar-quantised vectors
# (a quarter of flat's memory, builds 1M vectors in seconds), IVF-PQ codes re-scored from 8-bit
# vectors (smaller still, but its ranking is coarse: recall@10 0.5-0.8 at 1M in
# bench/scaleout_bench.py), or HNSW over float16 vectors (half the vector memory of HNSW; its graph
# takes hours to build at millions of passages on CPU). Their recall@10 against exact search is
# measured at build time and recorded in the manifest.
IVF_SQ8, HNSW_FP16, IVF_PQ = "ivf-sq8", "hnsw-fp16", "ivf-pq"
INDEX_TYPES = (FLAT, HNSW, IVF, IVF_SQ8, HNSW_FP16, IVF_PQ)
HNSW_THRESHOLD = 20_000
COMPRESS_THRESHOLD = 1_000_000
COMPRESSED_TYPE = IVF_SQ8
# Measured at 100k passages (bench/scale_bench.py): M=32/efC 80/efSearch 128 gave recall@10 0.87;
# M=48/efC 200 with efSearch 256 gave 0.951 there, but 0.945 for 400 questions embedded by the
# int8 model over the latency bench's 100k graph (efSearch 320: 0.958 in 1.87 against 1.48 ms a
# query), so 320 leaves a margin for the question mix.
HNSW_M = 48
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 320
# The same settings lose recall as the graph grows: at 1M passages (864k distinct vectors) efC 200
# with efSearch 256 measured recall@10 0.88 (by row), and even efSearch 1024 only 0.94 in 5.7 ms.
# A wider construction search builds a better graph (efC 400 with efSearch 640: recall@10 0.940,
# 0.952 counting identical copies as one neighbour, in 3.6-4.5 ms over three runs, 5.1-5.4 ms on a
# slower day, 4.0 ms that day from huge pages as a server searches it (index/dense_memory.py);
# efSearch 768 adds 0.004 for ~0.8-1 ms; docs/performance.md) for twice the graph's build time, which is
# small beside embedding that many passages. So both widen from their 100k values to these at 1M
# (a power law through the two points).
HNSW_EF_CONSTRUCTION_MAX = 400
HNSW_EF_SEARCH_MAX = 640


def _widen(n: int, at_100k: int, at_1m: int) -> int:
    if n <= 100_000:
        return at_100k
    return min(at_1m, round(at_100k * (n / 100_000) ** np.log10(at_1m / at_100k)))


def hnsw_ef_search(n: int) -> int:
    return _widen(n, HNSW_EF_SEARCH, HNSW_EF_SEARCH_MAX)


def hnsw_ef_construction(n: int) -> int:
    return _widen(n, HNSW_EF_CONSTRUCTION, HNSW_EF_CONSTRUCTION_MAX)


# IVF is not chosen by size; bench/scale_bench.py measures it against HNSW (build time, recall).
IVF_NPROBE = 32
IVF_MAX_LISTS = 16_384
IVF_PQ_REFINE = 4  # IVF-PQ fetches this many times k candidates, re-scored from 8-bit vectors
# Measured at 1M passages (√n = 1,000 lists): nprobe 32 → recall@10 0.84, 64 → 0.90 (0.96 counting
# ties within 0.001 of the 10th score), 128 → 0.94.
IVF_SQ8_NPROBE = 64
RECALL_QUERIES = 200  # sampled passages searched at build time to measure an approximate index


# Above this many passages a build is opened lazily: parsing 1M JSON rows takes seconds, reading
# the offsets of them takes milliseconds.
LAZY_ROWS = 50_000
# Files above this size are checked at load by size + sampled blocks (hashing 5 GB in full takes
# ~4 s on this machine), then in full in the background; smaller ones are hashed in full at load.
FULL_CHECK_BYTES = 64 << 20
SAMPLE_BLOCKS = 64
SAMPLE_BLOCK_BYTES = 64 << 10
# Vector indexes above this size are memory-mapped (zero-copy; FAISS must never add to them), and a
# server may then copy them into huge pages in the background (index/dense_memory.py).
MMAP_BYTES = 64 << 20


class IndexUnavailable(Exception):
    """The index cannot be served; the message is one sentence saying what to run."""


class IndexMissing(IndexUnavailable):
    pass


class IndexCorrupt(IndexUnavailable):
    pass


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
    # The shards of a sharded build (see index.shards), each loaded as a build of its own.
    shards: Sequence[LoadedIndex] = ()
    dense_mapped: bool = False  # the vector index was opened memory-mapped (above MMAP_BYTES)
    # The background copy of a large memory-mapped vector index into private memory, when the
    # front end asked for one (index.dense_memory); `dense` swaps to the copy when it is read.
    dense_copy: dense_memory.PrivateCopy | None = None

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

    def passages_of(self, article_id: str) -> list[Passage]:
        """One article's passages in order, without walking every passage of the index."""
        if self.article_rows is not None:
            rows = self.article_rows.get(article_id, range(0))
            return [self.passages[i] for i in rows]
        return [p for p in self.passages if p.article_id == article_id]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sample_offsets(size: int) -> list[int]:
    """Where the sampled blocks of a file of `size` bytes start: first, last and evenly between."""
    if size <= SAMPLE_BLOCKS * SAMPLE_BLOCK_BYTES:
        return [0]
    last = size - SAMPLE_BLOCK_BYTES
    return sorted({round(i * last / (SAMPLE_BLOCKS - 1)) for i in range(SAMPLE_BLOCKS)})


def sample_sha256(path: Path) -> str:
    """SHA-256 of a file's size and sampled blocks: catches truncation, a rewritten header or
    footer, and damage in the sampled blocks, for ~4 MB of reading whatever the file's size."""
    size = path.stat().st_size
    digest = hashlib.sha256(size.to_bytes(8, "little"))
    offsets = sample_offsets(size)
    with open(path, "rb") as fh:
        if hasattr(os, "posix_fadvise"):  # ask for every block at once: one seek at a time when the page cache is cold
            for offset in offsets:
                os.posix_fadvise(fh.fileno(), offset, SAMPLE_BLOCK_BYTES, os.POSIX_FADV_WILLNEED)
        for offset in offsets:
            fh.seek(offset)
            digest.update(fh.read(SAMPLE_BLOCK_BYTES))
    return digest.hexdigest()


def file_entry(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    entry: dict[str, Any] = {"sha256": sha256_file(path), "bytes": size}
    if size > FULL_CHECK_BYTES:
        entry["sample_sha256"] = sample_sha256(path)
    return entry


def corpus_digest(articles: Sequence[Article]) -> str:
    digest = hashlib.sha256()
    for article in sorted(articles, key=lambda a: a.article_id):
        digest.update(article.article_id.encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256((article.title + "\n" + article.text).encode()).digest())
    return digest.hexdigest()


def choose_index_type(n: int, compressed: str = COMPRESSED_TYPE) -> str:
    if n < HNSW_THRESHOLD:
        return FLAT
    return HNSW if n <= COMPRESS_THRESHOLD else compressed


def make_dense_index(
    vectors: np.ndarray, kind: str | None = None, hnsw: tuple[int, int] | None = None
):  # -> faiss.Index
    """The vector index for `vectors`: `kind` (one of INDEX_TYPES) or the one chosen by their number.
    `hnsw` = (M, efConstruction) instead of the ones chosen by size (benchmarks compare graphs)."""
    import faiss

    apply_faiss_threads()
    n, dim = vectors.shape
    kind = kind or choose_index_type(n)
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    rng = np.random.default_rng(0)
    if kind == FLAT:
        index = faiss.IndexFlatIP(dim)
    elif kind in (HNSW, HNSW_FP16):
        m, ef_construction = hnsw or (HNSW_M, hnsw_ef_construction(n))
        if kind == HNSW:
            index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_fp16, m, faiss.METRIC_INNER_PRODUCT)
            index.train(data[:1])  # fp16 needs no statistics; faiss still wants train() called
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = hnsw_ef_search(n)
    elif kind in (IVF, IVF_PQ, IVF_SQ8):
        # The compressed kinds use fewer, larger lists: k-means over 4·√n lists of 1M vectors
        # takes most of an hour on two cores, over √n lists seconds.
        nlist = ivf_lists(n) if kind == IVF else max(1, min(IVF_MAX_LISTS, int(np.sqrt(max(n, 1)))))
        # k-means on a sample: the centroids barely change past ~64 points a list, training time does.
        per_list = 64 if kind == IVF else 40
        sample = data[rng.choice(n, min(n, nlist * per_list), replace=False)] if n else data
        if kind == IVF:
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        elif kind == IVF_SQ8:
            index = faiss.index_factory(dim, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
        else:
            sub = next(m for m in (dim // 8, dim // 4, dim // 2, dim) if m and dim % m == 0)
            index = faiss.index_factory(dim, f"IVF{nlist},PQ{sub}x8,Refine(SQ8)", faiss.METRIC_INNER_PRODUCT)
        index.train(sample)
        _set_search_params(index, {})
    else:
        raise ValueError(f"unknown vector index type {kind!r}; use one of {', '.join(INDEX_TYPES)}")
    if n:
        index.add(data)
    return index


def _set_search_params(index, params: dict[str, Any]) -> None:
    """Apply the manifest's search parameters (FAISS does not store all of them in the file)."""
    import faiss

    kind = dense_index_type(index)
    if kind in (HNSW, HNSW_FP16):
        index.hnsw.efSearch = int(params.get("ef_search", HNSW_EF_SEARCH))
    elif kind in (IVF, IVF_SQ8):
        index.nprobe = int(params.get("nprobe", IVF_NPROBE if kind == IVF else IVF_SQ8_NPROBE))
    elif kind == IVF_PQ:
        index.k_factor = float(params.get("refine", IVF_PQ_REFINE))
        faiss.extract_index_ivf(index).nprobe = int(params.get("nprobe", IVF_NPROBE))


def ivf_lists(n: int) -> int:
    return max(1, min(IVF_MAX_LISTS, int(4 * np.sqrt(max(n, 1)))))


def dense_index_type(index) -> str:
    name = type(index).__name__
    if name == "IndexRefine":
        return IVF_PQ
    if "HNSW" in name:
        return HNSW_FP16 if "SQ" in name else HNSW
    if "IVF" in name:
        return IVF_SQ8 if "ScalarQuantizer" in name else IVF
    return FLAT


def measure_recall(index, vectors: np.ndarray, k: int = 10, queries: int = RECALL_QUERIES) -> float:
    """recall@k of `index` against exact search, with sampled passage vectors as questions."""
    import faiss

    n = len(vectors)
    if n == 0:
        return 1.0
    picked = np.sort(np.random.default_rng(1).choice(n, min(n, queries), replace=False))
    sample = np.ascontiguousarray(vectors[picked], dtype=np.float32)
    k = min(k, n)
    _, exact = faiss.knn(sample, np.ascontiguousarray(vectors, dtype=np.float32), k, faiss.METRIC_INNER_PRODUCT)
    _, found = index.search(sample, k)
    hits = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(exact, found))
    return hits / (len(sample) * k)


def dense_index_info(index, vectors: np.ndarray | None = None) -> dict[str, Any]:
    """What the manifest records about a vector index: its type, search parameters and, for an
    approximate one built from `vectors`, its measured recall@10 against exact search."""
    import faiss

    kind = dense_index_type(index)
    info: dict[str, Any] = {"type": kind}
    if kind in (HNSW, HNSW_FP16):
        info.update(
            m=int(index.hnsw.nb_neighbors(1)),
            ef_construction=int(index.hnsw.efConstruction),
            ef_search=int(index.hnsw.efSearch),
        )
    elif kind in (IVF, IVF_SQ8):
        info.update(nlist=int(index.nlist), nprobe=int(index.nprobe))
    elif kind == IVF_PQ:
        ivf = faiss.extract_index_ivf(index)
        info.update(nlist=int(ivf.nlist), nprobe=int(ivf.nprobe), refine=float(index.k_factor))
    if kind != FLAT and vectors is not None and len(vectors):
        info["recall_at_10"] = round(measure_recall(index, vectors), 4)
        info["recall_queries"] = min(len(vectors), RECALL_QUERIES)
    return info


def _article_passage_starts(articles: Sequence[Article], passages: Sequence[Passage]) -> np.ndarray:
    """Row of each article's first passage, and the end: passages come grouped by article, in
    article order. Empty when they do not (then readers fall back to scanning)."""
    position = {a.article_id: i for i, a in enumerate(articles)}
    owners = np.fromiter((position.get(p.article_id, -1) for p in passages), dtype=np.int64, count=len(passages))
    if len(owners) and ((owners < 0).any() or (np.diff(owners) < 0).any()):
        return np.zeros(0, dtype=np.int64)
    return np.searchsorted(owners, np.arange(len(articles) + 1), side="left").astype(np.int64)


class ArticleRows(Mapping[str, range]):
    """article id → the rows of its passages, from the article positions an ArticleTable already
    holds: a dict of ranges over 271k articles cost a quarter of a second of a 1M-passage load."""

    def __init__(self, positions: Mapping[str, int], starts: np.ndarray) -> None:
        self._positions = positions
        self._starts = starts

    @classmethod
    def of(cls, positions: Mapping[str, int], starts: np.ndarray) -> ArticleRows | None:
        return cls(positions, starts) if len(starts) == len(positions) + 1 else None

    def __getitem__(self, article_id: str) -> range:
        i = self._positions[article_id]
        return range(int(self._starts[i]), int(self._starts[i + 1]))

    def __iter__(self) -> Iterator[str]:
        return iter(self._positions)

    def __len__(self) -> int:
        return len(self._positions)


def _write_jsonl(path: Path, rows: Iterator[dict[str, Any]] | Sequence[dict[str, Any]]) -> np.ndarray:
    """Write one JSON object per line; return the byte offset of each line and the end offset."""
    offsets = [0]
    with open(path, "wb") as fh:
        for row in rows:
            line = json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n"
            fh.write(line)
            offsets.append(offsets[-1] + len(line))
        fh.flush()
        os.fsync(fh.fileno())
    return np.asarray(offsets, dtype=np.int64)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def new_build_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%f") + "-" + uuid.uuid4().hex[:4]


@dataclass(frozen=True)
class BuildContents:
    """What one build (or one shard of a build) holds, before it is written."""

    articles: Sequence[Article]
    passages: Sequence[Passage]
    vectors: np.ndarray | None  # None: built without an embedding model
    lexical: LexicalIndex
    manifest_extra: dict[str, Any]  # model, splitter, warnings, engine, shard: added to the manifest


def write_build_folder(folder: Path, contents: BuildContents, build_id: str | None = None) -> None:
    """Write the files of one build (or one shard of a build) into `folder`, manifest last."""
    articles, passages, vectors = contents.articles, contents.passages, contents.vectors
    folder.mkdir(parents=True)
    article_offsets = _write_jsonl(folder / ARTICLES, (a.to_json() for a in articles))
    passage_offsets = _write_jsonl(folder / PASSAGES, (p.to_json() for p in passages))
    np.savez(
        folder / ROWS,
        passage_offsets=passage_offsets,
        article_offsets=article_offsets,
        article_ids=np.array([a.article_id for a in articles], dtype=str),
        article_passage_starts=_article_passage_starts(articles, passages),
    )
    index_info: dict[str, Any] = {"type": None}
    if vectors is not None:
        import faiss

        copies = Copies.find(vectors)
        distinct = vectors if copies is None else np.asarray(vectors)[copies.first_rows]
        dense = make_dense_index(distinct)
        faiss.write_index(dense, str(folder / DENSE))
        index_info = dense_index_info(dense, distinct)
        if copies is not None:
            copies.save(folder / COPIES)
            index_info["distinct_vectors"] = copies.groups
    contents.lexical.save(folder / LEXICAL)
    files = {str(p.relative_to(folder)): file_entry(p) for p in sorted(folder.rglob("*")) if p.is_file()}
    manifest = {
        "format_version": FORMAT_VERSION,
        "build_id": build_id or new_build_id(),
        "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "article_count": len(articles),
        "passage_count": len(passages),
        "corpus_digest": corpus_digest(articles),
        "dense_index": index_info,
        **contents.manifest_extra,
        "files": files,
    }
    write_manifest(folder, manifest)


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """The manifest and its own checksum (so its fields are checked too), written last."""
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8")
    (folder / MANIFEST).write_bytes(manifest_bytes)
    (folder / MANIFEST_DIGEST).write_text(hashlib.sha256(manifest_bytes).hexdigest() + "\n", encoding="ascii")


def publish_build(root: Path, write: Callable[[Path, str], None]) -> Path:
    """Run write(folder, build id) on a temporary folder under builds/, fsync it and rename it to
    builds/<id>; on any failure remove it. Returns the final folder (not yet `current`)."""
    builds = Path(root) / BUILDS
    builds.mkdir(parents=True, exist_ok=True)
    build_id = new_build_id()
    tmp = builds / f".tmp-{build_id}"
    try:
        write(tmp, build_id)
        _fsync_tree(tmp)
        final = builds / build_id
        os.rename(tmp, final)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_build(root: Path, contents: BuildContents) -> Path:
    """Write a complete build into builds/<id> (via a temporary name) and return its folder."""
    return publish_build(root, lambda folder, build_id: write_build_folder(folder, contents, build_id))


def swap_current(root: Path, build_folder: Path) -> None:
    """Point `current` at the build in one atomic rename; readers see the old or the new, never neither."""
    root = Path(root)
    link_tmp = root / f".current-{uuid.uuid4().hex[:8]}"
    os.symlink(Path(BUILDS) / build_folder.name, link_tmp)
    os.replace(link_tmp, root / CURRENT)
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prune_builds(root: Path, keep: int = KEEP_BUILDS) -> list[Path]:
    """Remove old builds and leftovers of interrupted ones, keeping `current` and the newest few."""
    builds = Path(root) / BUILDS
    if not builds.is_dir():
        return []
    current = resolve_build(root, must_exist=False)
    finished = sorted((p for p in builds.iterdir() if p.is_dir() and not p.name.startswith(".")), reverse=True)
    doomed = [p for p in finished[keep:] if current is None or p.resolve() != current.resolve()]
    doomed += [p for p in builds.iterdir() if p.name.startswith(".tmp-")]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    # A build killed between creating the new link and renaming it over `current` leaves this.
    for link in Path(root).glob(".current-*"):
        link.unlink(missing_ok=True)
        doomed.append(link)
    return doomed


@contextmanager
def build_lock(root: Path) -> Iterator[None]:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".build.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexUnavailable(
                f"Another `newsqa index build` is running on {root}; wait for it to finish."
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def resolve_build(root: Path, must_exist: bool = True) -> Path | None:
    """The build folder a reader should open: `current`'s target, or `root` itself if it is one."""
    root = Path(root)
    if (root / MANIFEST).is_file():
        return root
    link = root / CURRENT
    if link.is_dir():
        return link.resolve()
    if must_exist:
        raise IndexMissing(f"No index found at {root}; run `newsqa index build` to create it.")
    return None


def earlier_builds(root: Path, than: Path) -> list[Path]:
    """The finished builds under `root` older than the build `than`, newest first (what a server
    can fall back on when `current` is damaged)."""
    builds = Path(root) / BUILDS
    if not builds.is_dir():
        return []
    name = Path(than).resolve().name
    return sorted((p for p in builds.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name < name), reverse=True)


def _corrupt(folder: Path, what: str) -> IndexCorrupt:
    return IndexCorrupt(
        f"The index at {folder} is damaged ({what}); run `newsqa index build` to rebuild it."
    )


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class JsonlRows(Sequence[T], Generic[T]):
    """Rows of a JSON-lines file, parsed when asked for (row i is bytes offsets[i]:offsets[i+1])."""

    def __init__(self, path: Path, offsets: np.ndarray, parse: Callable[[dict[str, Any]], T]) -> None:
        self._offsets = offsets
        self._parse = parse
        with open(path, "rb") as fh:
            # The mapping outlives the file descriptor, and the file being unlinked by pruning.
            self._data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if offsets[-1] else b""

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @overload
    def __getitem__(self, i: int) -> T: ...

    @overload
    def __getitem__(self, i: slice) -> list[T]: ...

    def __getitem__(self, i: int | slice) -> T | list[T]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return self._parse(json.loads(self._data[int(self._offsets[i]) : int(self._offsets[i + 1])]))

    def __iter__(self) -> Iterator[T]:
        for i in range(len(self)):
            yield self[i]


class ArticleTable(Mapping[str, Article]):
    """article id → Article, read from articles.jsonl on access."""

    def __init__(self, rows: JsonlRows[Article], ids: Sequence[str]) -> None:
        self._rows = rows
        self.positions = {article_id: i for i, article_id in enumerate(ids)}

    def __getitem__(self, article_id: str) -> Article:
        return self._rows[self.positions[article_id]]

    def __contains__(self, article_id: object) -> bool:  # Mapping's would read the article from disk
        return article_id in self.positions

    def __iter__(self) -> Iterator[str]:
        return iter(self.positions)

    def __len__(self) -> int:
        return len(self.positions)


class LazyRowMap(Mapping[str, int]):
    """passage id → row, built on first use (iterating 1M passages is not free, and rarely needed)."""

    def __init__(self, passages: Sequence[Passage]) -> None:
        self._passages = passages
        self._map: dict[str, int] | None = None

    def _built(self) -> dict[str, int]:
        if self._map is None:
            self._map = {p.passage_id: i for i, p in enumerate(self._passages)}
        return self._map

    def __getitem__(self, passage_id: str) -> int:
        return self._built()[passage_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._built())

    def __len__(self) -> int:
        return len(self._passages)


def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        raw = (Path(folder) / MANIFEST).read_bytes()
        manifest = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise _corrupt(folder, "manifest.json is missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _corrupt(folder, "manifest.json is not valid JSON") from None
    try:
        expected = (Path(folder) / MANIFEST_DIGEST).read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        raise _corrupt(folder, f"{MANIFEST_DIGEST} is missing or unreadable") from None
    if hashlib.sha256(raw).hexdigest() != expected:
        raise _corrupt(folder, "manifest.json does not match its checksum")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise _corrupt(folder, "manifest.json lacks its file list")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexUnavailable(
            f"The index at {folder} has format version {manifest.get('format_version')!r}, this newsqa reads "
            f"version {FORMAT_VERSION}; run `newsqa index build` to rebuild it."
        )
    return manifest


def _check_file(folder: Path, name: str, meta: dict[str, Any], full: bool) -> bool:
    """Raise IndexCorrupt if `name` does not match; True when it was only sample-checked."""
    path = Path(folder) / name
    if not path.is_file():
        raise _corrupt(folder, f"{name} is missing")
    if path.stat().st_size != meta.get("bytes"):
        raise _corrupt(folder, f"{name} does not match its checksum")
    sampled = not full and "sample_sha256" in meta
    if sampled:
        if sample_sha256(path) != meta["sample_sha256"]:
            raise _corrupt(folder, f"{name} does not match its checksum")
    elif sha256_file(path) != meta.get("sha256"):
        raise _corrupt(folder, f"{name} does not match its checksum")
    return sampled


def verify_files(folder: Path, manifest: dict[str, Any], full: bool = True) -> list[str]:
    """Check every file against the manifest. With full=False, large files that carry a sampled
    digest are checked by it only; their names are returned for a full check later."""
    return [name for name, meta in manifest["files"].items() if _check_file(folder, name, meta, full)]


def _verify_later(folder: Path, manifest: dict[str, Any], names: Sequence[str], integrity: Integrity) -> None:
    def run() -> None:
        error = None
        for name in names:
            try:
                _check_file(folder, name, manifest["files"][name], full=True)
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


def _read_dense(folder: Path, manifest: dict[str, Any]) -> DenseRead:
    """The vector index, and its copy into private memory if the front end wants one."""
    path = folder / DENSE
    if not path.is_file():
        return DenseRead(None)
    import faiss

    mapped = path.stat().st_size > MMAP_BYTES
    if mapped:
        with sequential_readahead(path):  # FAISS copies the graph out of the map: fault it in fast
            dense = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
    else:
        dense = faiss.read_index(str(path))
    params = manifest.get("dense_index", {})
    _set_search_params(dense, params)
    holder: Any = CopiesExpanded(dense, Copies.load(folder / COPIES)) if (folder / COPIES).is_file() else dense
    # Only the index types whose vectors and graph FAISS reads zero-copy: others would be copied
    # twice. The build's files were checked above; the copy reads the same immutable file.
    if not (
        mapped
        and dense_memory.configured_mode() == dense_memory.PRIVATE
        and dense_index_type(dense) in (FLAT, HNSW, HNSW_FP16)
    ):
        return DenseRead(holder, mapped)
    if holder is dense:
        holder = dense_memory.SwappableDense(dense)
    return DenseRead(holder, mapped, dense_memory.PrivateCopy(path, holder, lambda index: _set_search_params(index, params)))


def _eager_tables(folder: Path) -> tuple[dict[str, Article], list[Passage]]:
    articles = {a.article_id: a for a in map(Article.from_json, _read_jsonl(folder / ARTICLES))}
    passages = [Passage.from_json(row) for row in _read_jsonl(folder / PASSAGES)]
    return articles, passages


def _lazy_tables(folder: Path, rows: dict[str, np.ndarray]) -> tuple[ArticleTable, JsonlRows[Passage]]:
    passage_offsets, article_offsets = rows["passage_offsets"], rows["article_offsets"]
    if int(passage_offsets[-1]) != (folder / PASSAGES).stat().st_size or int(article_offsets[-1]) != (
        folder / ARTICLES
    ).stat().st_size:
        raise _corrupt(folder, "rows.npz and the passage or article files disagree in size")
    passages = JsonlRows(folder / PASSAGES, passage_offsets, Passage.from_json)
    article_rows = JsonlRows(folder / ARTICLES, article_offsets, Article.from_json)
    articles = ArticleTable(article_rows, rows["article_ids"].tolist())
    # Parse the ends now, so a damaged file fails the load rather than a question.
    for table in (passages, article_rows):
        if len(table):
            table[0], table[-1]
    return articles, passages


def load_build(
    folder: Path, verify: bool = True, full_verify: bool = False, vocabularies: Vocabularies | None = None
) -> LoadedIndex:
    """Load one build folder, checking its files against the manifest's checksums first.

    verify=True hashes every file in full, except files above FULL_CHECK_BYTES, which are checked
    by size and sampled blocks and then in full in the background (see `LoadedIndex.integrity`);
    full_verify=True hashes everything before returning. `vocabularies` lets loads share parsed
    BM25 vocabularies (the shards of one build carry the same one).
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    integrity = Integrity()
    if "shards" in manifest:
        from newsqa.index.shards import load_sharded

        if verify:
            verify_files(folder, manifest, full=True)
        return load_sharded(folder, manifest, verify, full_verify)
    if verify:
        sampled = verify_files(folder, manifest, full=full_verify)
        if sampled:
            integrity = Integrity(sampled)
    try:
        # FAISS reads without holding the GIL, so the vector index's I/O overlaps the parsing of
        # the tables and BM25 (a 1M-passage load with a cold page cache: 2.1 s one after the other).
        with ThreadPoolExecutor(1, thread_name_prefix="newsqa-dense") as pool:
            dense_read = pool.submit(_read_dense, folder, manifest)
            rows = _read_rows(folder)
            lazy = rows is not None and int(manifest.get("passage_count") or 0) > LAZY_ROWS
            articles, passages = _lazy_tables(folder, rows) if lazy else _eager_tables(folder)  # type: ignore[arg-type]
            lexical = LexicalIndex.load(folder / LEXICAL, mmap=lazy, vocabularies=vocabularies)
            dense = dense_read.result()
        apply_faiss_threads()  # OpenMP's thread count is per thread: set it for this one too
        if dense.index is not None and dense.index.ntotal != len(passages):
            raise _corrupt(folder, "the vector index and the passages disagree in size")
    except IndexUnavailable:
        raise
    except Exception as exc:  # any parse error in a file means the build is unusable
        raise _corrupt(folder, f"{type(exc).__name__} while reading it") from None
    if len(passages) != manifest.get("passage_count"):
        raise _corrupt(folder, "the passage count does not match the manifest")
    if integrity.pending:
        # The vector index first: searching a memory-mapped one is slow until its pages are cached
        _verify_later(folder, manifest, sorted(integrity.pending, key=lambda name: name != DENSE), integrity)
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
    )
    if dense.copy is not None:
        dense.copy.start()
    elif dense.mapped and DENSE not in integrity.pending:
        read_in_background(folder / DENSE)  # nothing else reads it through: cache it for the searches
    return loaded


def open_index(root: Path, verify: bool = True) -> LoadedIndex:
    return load_build(resolve_build(root), verify=verify)  # type: ignore[arg-type]
