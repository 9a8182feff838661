"""The kinds of vector index a build can hold, how each is made and searched, and what the
manifest records about one (its type, search parameters and measured recall)."""

from __future__ import annotations

from typing import Any

import numpy as np

from newsqa.index.options import BuildOptions
from newsqa.index.threads import apply_faiss_threads

# Exact (flat) below BuildOptions.hnsw_threshold passages, HNSW from there.
FLAT, HNSW, IVF = "flat", "hnsw", "ivf"
# Compressed kinds, for shards past BuildOptions.compress_threshold: IVF over 8-bit scalar-quantised vectors
# (a quarter of flat's memory, builds 1M vectors in seconds), IVF-PQ codes re-scored from 8-bit
# vectors (smaller still, but its ranking is coarse: recall@10 0.5-0.8 at 1M in
# bench/scaleout_bench.py), or HNSW over float16 vectors (half the vector memory of HNSW; its graph
# takes hours to build at millions of passages on CPU). Their recall@10 against exact search is
# measured at build time and recorded in the manifest.
IVF_SQ8, HNSW_FP16, IVF_PQ = "ivf-sq8", "hnsw-fp16", "ivf-pq"
INDEX_TYPES = (FLAT, HNSW, IVF, IVF_SQ8, HNSW_FP16, IVF_PQ)
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
# slower day, 4.0 ms that day from huge pages as a server searches it (index/scale/dense_memory.py);
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


def choose_index_type(n: int, options: BuildOptions = BuildOptions(), compressed: str = COMPRESSED_TYPE) -> str:
    if n < options.hnsw_threshold:
        return FLAT
    return HNSW if n <= options.compress_threshold else compressed


def make_dense_index(
    vectors: np.ndarray,
    kind: str | None = None,
    hnsw: tuple[int, int] | None = None,
    options: BuildOptions = BuildOptions(),
):  # -> faiss.Index
    """The vector index for `vectors`: `kind` (one of INDEX_TYPES) or the one `options` choose by
    their number. `hnsw` = (M, efConstruction) instead of the ones chosen by size (benchmarks
    compare graphs)."""
    import faiss

    apply_faiss_threads(options.faiss_threads)
    n, dim = vectors.shape
    kind = kind or choose_index_type(n, options)
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
        set_search_params(index, {})
    else:
        raise ValueError(f"unknown vector index type {kind!r}; use one of {', '.join(INDEX_TYPES)}")
    if n:
        index.add(data)
    return index


def set_search_params(index, params: dict[str, Any]) -> None:
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

