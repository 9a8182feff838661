"""Vector search and index loading at 100k and 1M passages.

    .venv/bin/python bench/scale_bench.py [--sizes 100k,1m] [--vectors approx,random]
        [--types flat,hnsw,ivf] [--queries 500] [--product-load] [--max-load 0.7]

Corpus: synthetic articles made of real ViNewsQA sentences (bench/common.py `variant`), split
into passages by the product's splitter. Vectors, two kinds, stated in every table:

- approx: each passage's vector approximated from real model vectors of its sentences and title
  (`SentenceVectors`: word-weighted mean, normalised); embedding 1M passages with the model would
  take ~3 h here. Its cosine to the model's own vector is measured on a sample and printed.
- random: uniform random unit vectors, the hardest case for approximate search (no structure).

Queries: ViNewsQA dev questions embedded by the real model. Ground truth: exact inner-product
top-10 (IndexFlatIP). For each index type (flat, HNSW as the product builds it, IVF as
`make_dense_index` builds it) and search parameter: single-query search p50/p99 (one thread),
recall@10 against exact (strictly by row; with bit-identical vectors counted as one neighbour,
since exact search's choice among copies is just the lowest rows, and synthetic articles reuse
sentences; with neighbours within 0.001 of the 10th exact score counted as tied; and by row against
exact search as the product runs it, over each distinct vector once with its copies returned lowest
row first (`index/copies.py`), which is the same neighbours in a fixed order among copies, so only
the index's own misses count), plus load time, RSS after load and after searching, and size on disk,
each measured in a fresh process so nothing else sits in its memory.

--product-load writes a whole product build of the largest size (passages.jsonl, articles.jsonl,
rows.npz, BM25 fields, the HNSW index; BM25 built by a vectorised equivalent of bm25s, checked
against `LexicalIndex.build` on a sample) and times `index.loader.load_build` on it, lazily as the
product does and, for comparison, eagerly (every row parsed, every file hashed in full).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

import common  # noqa: F401
from common import (
    PYTHON,
    REPO,
    WORK_DIR,
    SentenceVectors,
    machine_line,
    make_article,
    model_label,
    model_path,
    passage_sentences,
    rss_mb,
    source_articles,
    table,
    variant,
    vinewsqa_questions,
    wait_for_quiet,
)

SIZES = {"10k": 10_000, "20k": 20_000, "100k": 100_000, "1m": 1_000_000}
HNSW_EF = (64, 128, 256, 512, 640, 768, 1024, 1536, 2048)
IVF_NPROBE = (8, 16, 32, 64, 128)
K = 10
FIRST_SEARCHES = 100  # searched right after a load, one at a time
TIE = 1e-3  # cosine difference under which two neighbours count as tied


# -- corpus and vectors ---------------------------------------------------------------------------


def corpus(n: int):  # -> (articles, passages)
    from newsqa.index.split import split_passages

    sources = source_articles()
    articles, passages = [], []
    i = 0
    while len(passages) < n:
        article = make_article(*variant(sources, i))
        articles.append(article)
        passages.extend(split_passages(article))
        i += 1
    return articles, passages


def corpus_key(passages) -> str:
    import hashlib

    digest = hashlib.sha256()
    for p in passages:
        digest.update(p.passage_id.encode() + b"\0" + p.text.encode() + b"\0")
    return digest.hexdigest()[:12]


def pieces(passage) -> list[str]:
    return ([passage.title] if passage.title else []) + passage_sentences(passage.text)


def approx_vectors(passages, table_: SentenceVectors, log) -> np.ndarray:
    all_pieces = [pieces(p) for p in passages]
    table_.ensure([s for ps in all_pieces for s in ps], log)
    out = np.empty((len(passages), table_.embedder.dimension), dtype=np.float32)
    for i, ps in enumerate(all_pieces):
        out[i] = table_.passage("", ps)
    return out


def model_vectors(passages, backend: str, log) -> np.ndarray:
    """The model's own passage vectors (the ONNX int8 backend by default: ~3x faster than torch)."""
    from newsqa.index.embedding.embedder import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder(model_path(), backend=backend, onnx_cache_dir=WORK_DIR / "onnx")
    embedder.warm_up()
    texts = [p.embedding_text() for p in passages]
    out = np.empty((len(texts), embedder.dimension), dtype=np.float32)
    started = time.perf_counter()
    for start in range(0, len(texts), 4096):
        out[start : start + 4096] = embedder.encode_passages(texts[start : start + 4096])
        log(f"model vectors ({backend}): {start + 4096:,} / {len(texts):,} in {time.perf_counter() - started:.0f} s")
    return out


def random_vectors(n: int, dim: int) -> np.ndarray:
    rng = np.random.default_rng(12345)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        block = rng.standard_normal((min(100_000, n - start), dim), dtype=np.float32)
        out[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def cached_array(path: Path, make) -> np.ndarray:
    if path.is_file():
        return np.load(path, mmap_mode="r")
    array = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array)
    return array


def approximation_quality(passages, table_: SentenceVectors, embedder, sample: int = 300) -> float:
    """Mean cosine between the approximate vector and the model's own vector of a passage."""
    rng = np.random.default_rng(7)
    rows = rng.choice(len(passages), min(sample, len(passages)), replace=False)
    chosen = [passages[int(r)] for r in rows]
    true = embedder.encode_passages([p.embedding_text() for p in chosen])
    approx = approx_vectors(chosen, table_, lambda *_: None)
    return float((true * approx).sum(axis=1).mean())


# -- BM25 at scale ----------------------------------------------------------------------------------


class FieldBuilder:
    """bm25s (method and idf 'lucene', k1=1.2, b=0.75) scores for one field, built from token ids
    with numpy/scipy instead of per-token Python lists (which would need ~10 GB at 1M passages)."""

    def __init__(self, tokenize_piece) -> None:
        self.tokenize_piece = tokenize_piece  # text → syllables (word-local, so pieces concatenate)
        self.cache: dict[str, list[str]] = {}
        self.vocab: dict[str, int] = {}
        self.indptr = [0]
        self.indices: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.lengths: list[int] = []

    def add(self, parts: Sequence[str]) -> None:
        from newsqa.index.text import with_bigrams

        syllables: list[str] = []
        for part in parts:
            cached = self.cache.get(part)
            if cached is None:
                cached = self.cache[part] = self.tokenize_piece(part)
            syllables += cached
        tokens = with_bigrams(syllables)
        vocab = self.vocab
        ids = np.fromiter((vocab.setdefault(t, len(vocab)) for t in tokens), dtype=np.int32, count=len(tokens))
        unique, counts = np.unique(ids, return_counts=True)
        self.indices.append(unique)
        self.counts.append(counts.astype(np.float32))
        self.indptr.append(self.indptr[-1] + len(unique))
        self.lengths.append(len(tokens))

    def retriever(self, k1: float = 1.2, b: float = 0.75):  # -> bm25s.BM25
        import bm25s
        import scipy.sparse as sp

        n_docs, n_vocab = len(self.lengths), len(self.vocab)
        csr = sp.csr_matrix(
            (np.concatenate(self.counts), np.concatenate(self.indices), np.asarray(self.indptr, dtype=np.int64)),
            shape=(n_docs, n_vocab),
        )
        self.indices, self.counts = [], []
        csc = csr.tocsc()
        del csr
        df = np.diff(csc.indptr).astype(np.float32)
        idf = np.log(1 + (n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        lengths = np.asarray(self.lengths, dtype=np.float32)
        norm = k1 * (1 - b + b * lengths / lengths.mean())
        tf = csc.data
        rows = csc.indices
        token_of = np.repeat(np.arange(n_vocab, dtype=np.int32), np.diff(csc.indptr))
        data = (idf[token_of] * tf / (tf + norm[rows])).astype(np.float32)
        retriever = bm25s.BM25(k1=k1, b=b)
        vocab = dict(self.vocab)
        vocab.setdefault("", len(vocab))  # bm25s's empty token, last, with no postings
        retriever.scores = {"data": data, "indices": rows.astype(np.int32), "indptr": csc.indptr.astype(np.int64), "num_docs": n_docs}
        retriever.vocab_dict = vocab
        retriever.nonoccurrence_array = None  # only BM25L/BM25+ have one
        return retriever


class ScaledLexical:
    """Quacks like LexicalIndex for write_build: save(folder) writes both fields as bm25s would."""

    def __init__(self, passages) -> None:
        from newsqa.index.lexical import ACCENTED, FOLDED
        from newsqa.index.text import canonical, fold, nfc, syllables

        self.fields = {
            ACCENTED: FieldBuilder(lambda t: syllables(canonical(nfc(t)))),
            FOLDED: FieldBuilder(lambda t: syllables(fold(canonical(nfc(t))))),
        }
        for p in passages:
            parts = pieces(p)
            for builder in self.fields.values():
                builder.add(parts)

    def save(self, folder: Path) -> None:
        for name, builder in self.fields.items():
            builder.retriever().save(str(Path(folder) / name), show_progress=False)


def check_lexical_equivalence(passages) -> float:
    """Largest difference between ScaledLexical's and LexicalIndex.build's scores on a sample."""
    import tempfile

    from newsqa.index.lexical import LexicalIndex
    from newsqa.retrieval.query import analyse_query

    sample = passages[:1500]
    reference = LexicalIndex.build([p.embedding_text() for p in sample])
    with tempfile.TemporaryDirectory() as tmp:
        ScaledLexical(sample).save(Path(tmp))
        ours = LexicalIndex.load(Path(tmp))
        worst = 0.0
        for q in vinewsqa_questions()[:100] + ["nga yeu cau nato gi"]:
            query = analyse_query(q)
            worst = max(worst, float(np.abs(reference.scores(query) - ours.scores(query)).max()))
    return worst


# -- measuring in a fresh process --------------------------------------------------------------------


def probe_index(path: str, kind: str, queries: str, truth: str, params: Sequence[int], threads: int,
                memory: str = "mmap") -> dict:
    """Run in a child process: load one index file as the product does, search, report.
    memory="private": a large file is copied into huge-page memory as a server does
    (index/scale/dense_memory.py); "mmap": it is searched memory-mapped."""
    import faiss

    from newsqa.index.options import LoadOptions
    from newsqa.index.scale import dense_memory

    base_rss = rss_mb()
    q = np.load(queries)
    gt = np.load(truth)
    scores_path = Path(truth).with_suffix(".scores.npy")
    # The K-th exact score of each query: a returned passage scoring within TIE of it is as good
    # an answer as the one it displaced (synthetic corpora hold near-duplicate passages).
    kth = np.load(scores_path)[:, -1] if scores_path.is_file() else None
    # Copy number of every vector (rows with bit-identical vectors share one): exact search picks
    # the lowest rows among identical copies, any other copy is the same neighbour.
    groups_path = Path(truth).with_suffix(".groups.npy")
    groups = np.load(groups_path, mmap_mode="r") if groups_path.is_file() else None
    stored_path = Path(truth).with_suffix(".stored.npy")
    stored = np.load(stored_path) if stored_path.is_file() else None
    started = time.perf_counter()
    large = os.path.getsize(path) > LoadOptions().mmap_bytes
    if large and memory == "private":
        index = inner = dense_memory.read_private(Path(path))
        held = "private"
    else:
        index = inner = faiss.read_index(path, faiss.IO_FLAG_MMAP_IFC if large else 0)
        held = "mmap" if large else "read"
    copies_file = Path(path).with_suffix(".copies.npz")
    if copies_file.is_file():  # built over distinct vectors, as the product does (index/copies.py)
        from newsqa.index.copies import Copies, CopiesExpanded

        index = CopiesExpanded(inner, Copies.load(copies_file))
    load_s = time.perf_counter() - started
    rss_load = rss_mb() - base_rss
    faiss.omp_set_num_threads(threads)
    rows = []
    for value in params or [0]:
        if kind == "hnsw":
            inner.hnsw.efSearch = value
        elif kind == "ivf":
            inner.nprobe = value
        # Warm the pages these searches touch (a memory-mapped index read cold pays page faults
        # that a serving process pays once): every query once before the timed pass.
        for x in q:
            index.search(x[None, :], K)
        times, found, scores = [], [], []
        for x in q:
            t = time.perf_counter()
            d, ids = index.search(x[None, :], K)
            times.append((time.perf_counter() - t) * 1000)
            found.append(ids[0])
            scores.append(d[0])
        recall = recall_by_row(found, gt)
        tolerant = (float(np.mean([(s >= k - TIE).sum() / K for s, k in zip(scores, kth)])) if kth is not None else float("nan"))
        copies = (float(np.mean([same_neighbours(groups, f, g) / K for f, g in zip(found, gt)]))
                  if groups is not None else float("nan"))
        by_stored = recall_by_row(found, stored) if stored is not None else float("nan")
        rows.append({"param": value, "p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
                     "recall": recall, "recall_copies": copies, "recall_tie": tolerant, "recall_stored": by_stored})
    return {"load_s": load_s, "rss_load_mb": rss_load, "rss_after_mb": rss_mb() - base_rss, "rows": rows,
            "memory": held}


def warm_page_cache(path: Path) -> None:
    """Read a file (or every file of a folder) once, so each timing starts from the same warm cache
    whether the files were written this run or come from an earlier one."""
    for file in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
        with file.open("rb") as fh:
            while fh.read(16 << 20):
                pass


def drop_page_cache() -> None:
    """Empty the kernel's page cache, so a load reads from disk as after a reboot (root only; the
    host of a VM may still cache the disk image)."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError as exc:
        sys.exit(f"--cold-load needs root to write /proc/sys/vm/drop_caches ({exc.strerror}); run without it")


def recall_by_row(found: Sequence[np.ndarray], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(g)) / K for f, g in zip(found, truth)]))


def same_neighbours(groups: np.ndarray, found: np.ndarray, truth: np.ndarray) -> int:
    """How many of `found` are among `truth` when identical vectors count as one neighbour:
    the size of the multiset intersection of their copy-group numbers."""
    from collections import Counter

    got = Counter(int(groups[i]) for i in found if i >= 0)
    want = Counter(int(groups[i]) for i in truth)
    return sum((got & want).values())


def duplicate_groups(vectors: np.ndarray) -> np.ndarray:
    """A number per row, shared by rows whose vectors are bit for bit the same."""
    from newsqa.index.copies import Copies

    copies = Copies.find(vectors)
    return np.arange(len(vectors), dtype=np.int64) if copies is None else copies.group_of_rows()


def probe_load(folder: str, mode: str, queries: str | None = None) -> dict:
    """Run in a child process: time index.loader.load_build on a product build folder, then (with
    query vectors) the searches that follow it at once, as a server's first questions would."""
    import bm25s  # noqa: F401  (imports are start-up, not load)
    import faiss  # noqa: F401

    from newsqa.index import loader
    from newsqa.index.options import LoadOptions
    from newsqa.index.scale import dense_memory

    options = LoadOptions(verify=mode != "no-verify")
    if mode == "lazy":  # as a one-process server loads it: the vector index is then copied in the background
        options = replace(options, dense_memory=dense_memory.PRIVATE)
    if mode == "eager-full":  # the loader as it was: parse everything, hash everything, no mmap
        options = replace(options, lazy_rows=1 << 62, mmap_bytes=1 << 62)
    base_rss = rss_mb()
    started = time.perf_counter()
    loaded = loader.load_build(Path(folder), options, full_verify=mode == "eager-full")
    load_s = time.perf_counter() - started
    rss = rss_mb() - base_rss
    first_ms: list[float] = []
    if queries:  # before anything waits for the background check or copy, which also read the file
        for vector in np.load(queries)[:FIRST_SEARCHES].astype(np.float32):
            tick = time.perf_counter()
            loaded.dense.search(vector.reshape(1, -1), K)
            first_ms.append((time.perf_counter() - tick) * 1e3)
    started = time.perf_counter()
    loaded.integrity.wait()
    full_check_s = time.perf_counter() - started
    copies = [c for c in (loaded.dense_copy, *(shard.dense_copy for shard in loaded.shards)) if c is not None]
    for copy in copies:
        copy.wait()
    copy_s = time.perf_counter() - started if copies else None  # from the end of the load, as the full check
    copy_error = next((c.error for c in copies if c.error), None)
    rng = np.random.default_rng(0)
    rows = rng.integers(0, len(loaded.passages), 200)
    started = time.perf_counter()
    for r in rows:
        loaded.passages[int(r)]
    per_passage_us = (time.perf_counter() - started) / len(rows) * 1e6
    return {"load_s": load_s, "rss_load_mb": rss, "background_full_check_s": full_check_s,
            "private_copy_s": copy_s, "copy_error": copy_error,
            "integrity_error": loaded.integrity.error, "passage_access_us": per_passage_us,
            "first_search_ms": first_ms[0] if first_ms else None,
            "first_searches_s": sum(first_ms) / 1e3 if first_ms else None,
            "lazy": type(loaded.passages).__name__}


def in_child(*args: str) -> dict:
    out = subprocess.run([PYTHON, __file__, *args], cwd=REPO, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- the benchmark -------------------------------------------------------------------------------------


def build_type(kind: str, vectors: np.ndarray, path: Path, log, hnsw: tuple[int, int] | None = None,
               copies_once: bool = False) -> float:
    """Build one index type with the product's make_dense_index and write it; return build seconds.
    `hnsw` = (M, efConstruction) to build with instead of the product's constants; `copies_once`
    indexes each distinct vector once, with a copies file beside it, as a product build does."""
    import faiss

    from newsqa.index import ann
    from newsqa.index.copies import Copies

    if path.is_file() and (path.with_suffix(".seconds")).is_file():
        return float(path.with_suffix(".seconds").read_text())
    log(f"building {path.stem} over {len(vectors):,} vectors ...")
    started = time.perf_counter()
    copies = Copies.find(vectors) if copies_once else None
    if copies is not None:
        copies.save(path.with_suffix(".copies.npz"))
        vectors = np.asarray(vectors)[copies.first_rows]
    index = ann.make_dense_index(np.ascontiguousarray(vectors), kind=kind, hnsw=hnsw)
    seconds = time.perf_counter() - started
    faiss.write_index(index, str(path))
    path.with_suffix(".seconds").write_text(str(seconds))
    del index
    gc.collect()
    return seconds


def exact_truth(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """(scores, ids) of the exact top-K by inner product."""
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors))
    return index.search(queries, K)


def truth_ids(path: Path, vectors: np.ndarray, queries: np.ndarray) -> Path:
    """Exact top-K ids at `path` and their scores beside it (for the tie-tolerant recall)."""
    scores_path = path.with_suffix(".scores.npy")
    if not path.is_file() or not scores_path.is_file():
        scores, ids = exact_truth(vectors, queries)
        np.save(path, ids)
        np.save(scores_path, scores)
    return path


def stored_truth_ids(path: Path, vectors: np.ndarray, queries: np.ndarray, truth: Path) -> Path:
    """Exact top-K rows at `path` as a product build searches exactly: a flat index over each
    distinct vector once, expanded to every copy lowest row first. Against the flat index over
    every row it differs only in which of several tied copies make the cut."""
    if path.is_file():
        return path
    import faiss

    from newsqa.index.copies import Copies, CopiesExpanded

    copies = Copies.find(vectors)
    if copies is None:  # no copies: exact search over every row (`truth`) is already this
        np.save(path, np.load(truth))
        return path
    flat = faiss.IndexFlatIP(vectors.shape[1])
    first = copies.first_rows
    for start in range(0, len(first), 100_000):  # a slice at a time: `vectors` may be memory-mapped
        flat.add(np.ascontiguousarray(vectors[first[start : start + 100_000]], dtype=np.float32))
    np.save(path, CopiesExpanded(flat, copies).search(queries, K)[1])
    return path


def query_vectors(n: int, embedder) -> np.ndarray:
    from retrieval_bench import query_vectors as cached_query_vectors

    questions = list(dict.fromkeys(vinewsqa_questions()))[:n]
    return np.ascontiguousarray(cached_query_vectors(questions, embedder, WORK_DIR), dtype=np.float32)


def product_build(work: Path, articles, passages, vectors: np.ndarray, hnsw_file: Path, log) -> Path:
    """A product build folder: write_build with the given parts, reusing the HNSW index built above."""
    import faiss

    from newsqa.index import writer
    from newsqa.index.copies import Copies
    from newsqa.index.format import resolve_build

    copies_file = hnsw_file.with_suffix(".copies.npz")
    copies = Copies.load(copies_file) if copies_file.is_file() else None
    root = work / ("product-copies-once" if copies else "product")
    if (root / "current").exists():
        return resolve_build(root)  # type: ignore[return-value]
    log("building BM25 fields for the product build ...")
    lexical = ScaledLexical(passages)
    original = writer.make_dense_index, Copies.find
    writer.make_dense_index = lambda v, kind=None, hnsw=None: faiss.read_index(str(hnsw_file))  # built already
    # The copies were found when that index was built. Without copies a one-row stand-in for the
    # vectors keeps the build from holding them all (it only measures the index's recall on them).
    Copies.find = lambda v: copies  # type: ignore[method-assign]
    try:
        log("writing the product build (jsonl, rows, BM25, HNSW, copies, checksums) ...")
        folder = writer.write_build(root, writer.BuildContents(
            articles, passages, np.asarray(vectors) if copies else vectors[:1], lexical, {
                "model": {"id": model_path(), "dimension": int(vectors.shape[1]), "query_prompt": "", "passage_prompt": ""},
                "splitter": {}, "warnings": [],
            }))
    finally:
        writer.make_dense_index, Copies.find = original
    writer.swap_current(root, folder)
    return folder


def disk_size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100k,1m")
    parser.add_argument("--vectors", default="approx,random")
    parser.add_argument("--types", default="flat,hnsw,ivf")
    parser.add_argument("--hnsw", default="32:80", help="HNSW M:efConstruction pairs to build, e.g. 32:80,48:200")
    parser.add_argument("--model-backend", default="onnx-int8", help="backend that embeds passages for --vectors model")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1, help="FAISS threads while searching (one query at a time)")
    parser.add_argument("--product-load", action="store_true", help="also write a product build of the largest size and time load_build")
    parser.add_argument("--cold-load", action="store_true",
                        help="with --product-load, also time each load after dropping the page cache (root)")
    parser.add_argument("--max-load", type=float, default=0.7)
    parser.add_argument("--wait", type=float, default=1800)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--copies-once", action="store_true",
                        help="index each distinct vector once, as product builds do (index/copies.py); "
                             "without it every row goes into the index")
    parser.add_argument("--memory", default="mmap,private",
                        help="where large indexes are searched: mmap (the file), private (copied into huge pages, "
                             "as a one-process server does; index/scale/dense_memory.py), or both")
    parser.add_argument("--probe-memory", default="mmap", help=argparse.SUPPRESS)
    parser.add_argument("--probe-index", nargs=5, metavar=("FILE", "KIND", "QUERIES", "TRUTH", "PARAMS"), help=argparse.SUPPRESS)
    parser.add_argument("--probe-load", nargs="+", metavar="FOLDER MODE [QUERIES]", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.probe_index:
        file, kind, queries, truth, params = args.probe_index
        print(json.dumps(probe_index(file, kind, queries, truth, [int(p) for p in params.split(",") if p], args.threads,
                                     args.probe_memory)))
        return
    if args.probe_load:
        print(json.dumps(probe_load(*args.probe_load)))
        return

    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    from newsqa.index.embedding.embedder import SentenceTransformerEmbedder
    from newsqa.index.options import LoadOptions

    embedder = SentenceTransformerEmbedder(model_path())
    embedder.warm_up()
    table_ = SentenceVectors(embedder, WORK_DIR / "sentences.sqlite")
    queries = query_vectors(args.queries, embedder)
    results: list[dict] = []
    notes: list[str] = []
    load_rows: list[dict] = []
    sizes = [s for s in args.sizes.split(",")]
    for label in sizes:
        n = SIZES[label]
        log(f"== {label}: generating the corpus ...")
        articles, passages = corpus(n)
        n_actual = len(passages)
        # Cached vectors and indexes belong to this exact corpus (the splitter may change under us).
        work = WORK_DIR / f"scale-{label}" / corpus_key(passages)
        work.mkdir(parents=True, exist_ok=True)
        np.save(work / "queries.npy", queries)
        for kind_v in args.vectors.split(","):
            log(f"== {label} / {kind_v} vectors")
            if kind_v == "model":
                vectors = cached_array(work / f"vectors-model-{args.model_backend}.npy",
                                       lambda: model_vectors(passages, args.model_backend, log))
            elif kind_v == "approx":
                vectors = cached_array(work / "vectors-approx.npy", lambda: approx_vectors(passages, table_, log))
                if label == sizes[0]:
                    notes.append(f"approx vectors: mean cosine to the model's own passage vector "
                                 f"{approximation_quality(passages, table_, embedder):.3f} (300 passages)")
            else:
                vectors = cached_array(work / "vectors-random.npy", lambda: random_vectors(n_actual, queries.shape[1]))
            truth_path = truth_ids(work / f"truth-{kind_v}.npy", np.asarray(vectors), queries)
            stored_truth_ids(truth_path.with_suffix(".stored.npy"), vectors, queries, truth_path)
            groups = cached_array(truth_path.with_suffix(".groups.npy"), lambda: duplicate_groups(np.asarray(vectors)))
            notes.append(f"{label} {kind_v}: {len(groups) - len(np.unique(groups)):,} of {len(groups):,} vectors are "
                         f"exact copies of another (synthetic articles reuse sentences)")
            variants = [(k, None) for k in args.types.split(",") if k != "hnsw"]
            if "hnsw" in args.types.split(","):
                variants += [("hnsw", tuple(int(x) for x in spec.split(":"))) for spec in args.hnsw.split(",")]
            for kind, hnsw in variants:
                name = (f"hnsw-M{hnsw[0]}-efc{hnsw[1]}" if hnsw else kind) + ("-copies-once" if args.copies_once else "")
                path = work / f"{name}-{kind_v}.faiss"
                build_s = build_type(kind, np.asarray(vectors), path, log, hnsw, args.copies_once)
                params = {"hnsw": HNSW_EF, "ivf": IVF_NPROBE}.get(kind, ())
                # A file small enough to be read into memory is read the same either way: probed once.
                memories = args.memory.split(",") if path.stat().st_size > LoadOptions().mmap_bytes else args.memory.split(",")[:1]
                for memory in memories:
                    warm_page_cache(path)
                    wait_for_quiet(args.max_load, args.wait, log)
                    probe = in_child("--probe-index", str(path), kind, str(work / "queries.npy"), str(truth_path),
                                     ",".join(map(str, params)), "--threads", str(args.threads), "--probe-memory", memory)
                    for row in probe["rows"]:
                        results.append({"size": label, "passages": n_actual, "vectors": kind_v, "type": name, **row,
                                        "build_s": build_s, "load_s": probe["load_s"], "rss_load_mb": probe["rss_load_mb"],
                                        "rss_after_mb": probe["rss_after_mb"], "disk_mb": disk_size(path) / 2**20,
                                        "memory": probe["memory"]})
                    log(json.dumps(results[-1]))
            del vectors
            gc.collect()
        if args.product_load and label == sizes[-1]:
            log(f"max |score difference| of the vectorised BM25 against LexicalIndex.build: {check_lexical_equivalence(passages):.2e}")
            vectors = np.load(work / "vectors-approx.npy", mmap_mode="r")
            m, efc = (int(x) for x in args.hnsw.split(",")[0].split(":"))
            once = "-copies-once" if args.copies_once else ""
            folder = product_build(work, articles, passages, vectors, work / f"hnsw-M{m}-efc{efc}{once}-approx.faiss", log)
            del articles, passages
            gc.collect()
            for mode in ("lazy", "no-verify", "eager-full"):
                # eager-full reads every byte anyway: cold, it only times the disk
                for cache in ("warm", "cold") if args.cold_load and mode != "eager-full" else ("warm",):
                    wait_for_quiet(args.max_load, args.wait, log)
                    if cache == "cold":
                        drop_page_cache()
                    else:
                        warm_page_cache(folder)
                    load_rows.append({"size": label, "mode": mode, "cache": cache,
                                      **in_child("--probe-load", str(folder), mode, str(work / "queries.npy")),
                                      "disk_mb": disk_size(folder) / 2**20})
                    log(json.dumps(load_rows[-1]))

    print(f"model: {model_label(model_path())}; {machine_line()}; search: one query at a time, "
          f"{args.threads} FAISS thread(s), {len(queries)} ViNewsQA questions; page cache warm (each file read once before it is timed)")
    for note in notes:
        print(note)
    print()
    print(table(
        ["size", "vectors", "type", "memory", "param", "search p50 ms", "p99 ms", "recall@10", "recall@10, copies as one", f"recall@10 ties ≤{TIE:g}", "recall@10 vs exact over distinct vectors", "build s",
         "load s", "RSS after load MB", "RSS after search MB", "disk MB"],
        [[f"{r['passages']:,}", r["vectors"], r["type"], r.get("memory", "-"), r["param"] or "-", r["p50_ms"], r["p99_ms"], f"{r['recall']:.3f}",
          f"{r.get('recall_copies', float('nan')):.3f}", f"{r.get('recall_tie', float('nan')):.3f}", f"{r.get('recall_stored', float('nan')):.3f}", r["build_s"], f"{r['load_s']:.3f}", r["rss_load_mb"], r["rss_after_mb"],
          r["disk_mb"]] for r in results],
    ))
    if load_rows:
        print()
        print(table(
            ["size", "load_build mode", "page cache", "load s", "RSS after load MB", "first search ms",
             f"first {FIRST_SEARCHES} searches s", "background full check s",
             "background private copy s", "passage read µs", "build on disk MB"],
            [[r["size"], r["mode"], r.get("cache", "warm"), f"{r['load_s']:.2f}", r["rss_load_mb"],
              "-" if r.get("first_search_ms") is None else f"{r['first_search_ms']:.0f}",
              "-" if r.get("first_searches_s") is None else f"{r['first_searches_s']:.2f}", f"{r['background_full_check_s']:.1f}",
              "-" if r.get("private_copy_s") is None else f"{r['private_copy_s']:.1f}" + (" (failed)" if r.get("copy_error") else ""),
              f"{r['passage_access_us']:.1f}", r["disk_mb"]] for r in load_rows],
        ))
    if args.json:
        args.json.write_text(json.dumps({"search": results, "load": load_rows, "notes": notes}, indent=2))


if __name__ == "__main__":
    main()
