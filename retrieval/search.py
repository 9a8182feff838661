"""Hybrid search: BM25 (accented or folded field) fused with dense FAISS similarity.

Each signal is weighted by the kind of question. For a Vietnamese question BM25 is the stronger
signal (with multilingual-e5-small: ViNewsQA dev MRR@10 82.0 against 60.4 for dense alone) and the
model breaks its near-ties; for an English question over Vietnamese text the model is what bridges
the languages (XQuAD 80.1 against 45.1), while names and numbers still match lexically. Averaging the
two with equal shares costs both kinds of question (docs/quality.md).

The lexical score of a passage adds a share of its whole article's BM25 score: a question is
usually about one article, and the article as a whole says which one better than a passage does.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from newsqa.index.embedding.embedder import Embedder
from newsqa.index.lexical import LexicalQuery
from newsqa.index.loaded import LoadedIndex
from newsqa.index.pools import LazyPool
from newsqa.index.threads import apply_faiss_threads
from newsqa.retrieval.calibration import DenseBaseline
from newsqa.retrieval.query import QueryAnalysis, analyse

WEIGHTED = "weighted"
RRF = "rrf"
LEXICAL_ONLY = "lexical"  # diagnostics and benchmarks: one signal alone
DENSE_ONLY = "dense"
METHODS = (WEIGHTED, RRF, LEXICAL_ONLY, DENSE_ONLY)
RRF_K = 60
# The lexical candidates' threshold is read off one score in this many (`top_k_positive`).
SAMPLE_STEP = 16


@dataclass(frozen=True)
class SearchOptions:
    # From this many passages on, the dense side of a question (its embedding when the model lets
    # go of the GIL, then the FAISS search, which always does) runs on a worker thread while this
    # thread scores BM25 (its posting sums release the GIL too) and the service prepares the best
    # lexical passages for the answer: at 100k passages BM25 takes 1-2 ms and the HNSW search
    # 1-2 ms, so overlapping saves ~1 ms with eager torch, ~2 ms with ONNX int8 and ~4 ms with a
    # torch trace (docs/performance.md). Below it BM25 costs less than a thread hand-off.
    overlap_min_passages: int = 5_000
    dense_threads: int = 32  # worker threads: at most one per question in flight; idle ones cost nothing


@dataclass(frozen=True)
class FusionConfig:
    method: str = WEIGHTED
    # Share of the (min-max normalised) dense signal, by the question's language; measured with
    # multilingual-e5-small on 300-word passages (bench/retrieval_bench.py --sweep, 2026-12-07).
    # Vietnamese: BM25 is the stronger signal (ViNewsQA dev MRR@10 82.0 alone, dense 60.4), the
    # model breaks its ties; 0.1-0.2 is best on ViNewsQA (82.2 / 81.9) and XQuAD (96.0 / 96.5).
    # Without diacritics the model reads little (dense 12.8), so the same small share costs nothing.
    dense_weight_vi: float = 0.15
    # English over Vietnamese text: dense is what bridges the languages (XQuAD 80.1 alone, BM25
    # 45.1), while names and numbers still match lexically: 0.7-0.8 best (81.2-81.5).
    dense_weight_en: float = 0.75
    article_weight: float = 0.5  # share of the article's BM25 added to each of its passages
    candidates: int = 100  # dense neighbours fetched before fusion
    rrf_k: int = RRF_K


@dataclass(frozen=True)
class ScoredPassage:
    row: int
    score: float
    lexical: float  # raw BM25 of the passage (without the article's share)
    dense: float | None  # cosine similarity, None when no dense signal


def top_k_positive(values: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest positive values, ties to the lower position, in increasing order:
    the set a stable sort by decreasing value would put first. All positive ones when fewer than k.

    A full sort of 100k passage scores cost 5 ms a question, `np.partition` over all of them
    0.8 ms (BM25 scores tie a lot, which slows introselect); a threshold read off a strided sample
    leaves a few hundred candidates to partition exactly (0.2 ms)."""
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if len(values) <= k:
        return np.flatnonzero(values > 0)
    candidates = _at_least_kth(values, k)
    pool = values[candidates]
    kth = np.partition(pool, len(pool) - k)[len(pool) - k]
    if kth <= 0:
        return np.flatnonzero(values > 0)
    keep = pool > kth
    ties = np.flatnonzero(pool == kth)  # every tie is a candidate, in row order
    keep[ties[: k - int(keep.sum())]] = True
    return candidates[keep]


def _at_least_kth(values: np.ndarray, k: int) -> np.ndarray:
    """Increasing positions of a superset of the k largest values: every value at or above a
    threshold that at least k values reach (all positions when the sample does not find one)."""
    sample = values[::SAMPLE_STEP]
    # Enough sampled values above the threshold that ~3k of the whole lie above it.
    j = 3 * k // SAMPLE_STEP + 8
    if len(sample) > 4 * j:
        threshold = np.partition(sample, len(sample) - j)[len(sample) - j]
        candidates = np.flatnonzero(values >= threshold)
        if len(candidates) >= k:
            return candidates
    return np.arange(len(values))


def _minmax(values: np.ndarray) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-9:
        return np.ones_like(values) if hi > 0 else np.zeros_like(values)
    return (values - lo) / (hi - lo)


def cached_query(embedder: Embedder, question: str) -> np.ndarray | None:
    """The question's vector if the model has it cached (repeated questions), else None."""
    lookup = getattr(embedder, "cached_query", None)
    return lookup(question) if lookup is not None else None


@dataclass
class PendingSearch:
    """A search whose BM25 side is done and whose dense side may still be running."""

    searcher: HybridSearcher
    question: str
    k: int
    analysis: QueryAnalysis
    n_dense: int
    query_vector: np.ndarray | None
    dense_job: Future[tuple[dict[int, float], float | None]] | None
    raw_lexical: np.ndarray  # passage BM25, every passage
    lexical: np.ndarray  # plus the article's share
    lex_rows: np.ndarray  # the best `candidates` rows by `lexical`, in row order
    embeds_on_worker: bool = False  # the worker embeds the question before its FAISS search
    # The question's cosine with unrelated news (retrieval/calibration.py), once finished; None
    # without a dense side.
    background: float | None = None

    @property
    def waiting(self) -> bool:
        """True while the dense side is still running on its worker."""
        return self.dense_job is not None and not self.dense_job.done()

    def leaders(self, n: int) -> list[int]:
        """The n best rows by lexical score, best first (ties to the lower row)."""
        if n <= 0 or len(self.lex_rows) == 0:
            return []
        order = np.argsort(-self.lexical[self.lex_rows], kind="stable")[:n]
        return [int(r) for r in self.lex_rows[order]]

    def finish(self) -> list[ScoredPassage]:
        searcher = self.searcher
        if self.k <= 0:
            return []
        dense: dict[int, float] = {}
        if self.dense_job is not None:
            dense, self.background = self.dense_job.result()
        elif searcher.fusion.method != LEXICAL_ONLY:
            dense, self.background = searcher.dense_side(self.question, self.n_dense, self.query_vector)
        return searcher._fuse(self, dense)


class HybridSearcher:
    def __init__(
        self,
        index: LoadedIndex,
        embedder: Embedder | None,
        fusion: FusionConfig | None = None,
        baseline: DenseBaseline | None = None,
        options: SearchOptions | None = None,
        dense_pool: LazyPool | None = None,
    ) -> None:
        """`dense_pool`: the worker threads of the dense side, when shared with another searcher
        (`with_fusion`); by default the searcher's own, started by the first question that
        overlaps and let go by `close`."""
        self.index = index
        self.embedder = embedder if index.dense is not None else None
        self.fusion = fusion or FusionConfig()
        self.options = options or SearchOptions()
        self._baseline = baseline
        self._dense_pool = dense_pool or LazyPool("newsqa-dense", self.options.dense_threads)
        if self.fusion.method not in METHODS:
            raise ValueError(f"fusion method must be one of {', '.join(METHODS)}, not {self.fusion.method!r}")

    def with_fusion(self, fusion: FusionConfig) -> HybridSearcher:
        """The same index, model and worker threads under another fusion setting."""
        return HybridSearcher(self.index, self.embedder, fusion, self._baseline, self.options, self._dense_pool)

    def close(self) -> None:
        """Let the dense side's worker threads go (a reload replaced this searcher); a question
        still in flight, or asked later, runs its dense side on the calling thread."""
        self._dense_pool.close()

    @property
    def mode(self) -> str:
        return "hybrid" if self.embedder is not None else "lexical"

    def dense_scores(self, question: str, n: int, vector: np.ndarray | None = None) -> dict[int, float]:
        if self.embedder is None or self.index.dense is None or not self.index.passages:
            return {}
        if vector is None:
            vector = self.embedder.encode_queries([question])
        vector = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        apply_faiss_threads(self.index.options.faiss_threads)  # this may be a server's worker thread
        scores, rows = self.index.dense.search(np.ascontiguousarray(vector, dtype=np.float32), n)
        return {int(r): float(s) for r, s in zip(rows[0], scores[0]) if r >= 0}

    @property
    def baseline(self) -> DenseBaseline | None:
        """The background the found decision measures dense scores against (embedded on first use)."""
        if self._baseline is None and self.embedder is not None:
            self._baseline = DenseBaseline.of(self.embedder)
        return self._baseline

    def dense_side(self, question: str, n: int, vector: np.ndarray | None = None) -> tuple[dict[int, float], float | None]:
        """(dense neighbours, the question's background level) for one question."""
        if self.embedder is None or self.index.dense is None or not self.index.passages:
            return {}, None
        if vector is None:
            vector = self.embedder.encode_queries([question])[0]
        baseline = self.baseline
        return self.dense_scores(question, n, vector), None if baseline is None else baseline.level(vector)

    def _start_dense(
        self, question: str, n: int, vector: np.ndarray | None
    ) -> tuple[Future[tuple[dict[int, float], float | None]] | None, bool]:
        """The dense side of a question started on a worker thread (None when it should run
        inline: small corpus, no model), and whether the worker embeds the question too.

        A model that holds the GIL while it encodes (eager torch runs many small ops, each taking
        the GIL back) would stall the BM25 scoring it overlapped (measured at 100k: 21.1 against
        14.4 ms inline with two model threads), so its question is embedded here first and only
        the FAISS search moves; an ONNX Runtime session or a torch trace releases the GIL while it
        runs, so a question still to embed is embedded on the worker too. Below
        `options.overlap_min_passages` nothing moves: BM25 then costs less than the hand-off, and
        on this 2-core machine a forward pass overlapped with Python work slows by about what it
        overlapped (measured: 1 ms of work beside a 17.6 ms int8 encode, 18.7 ms; after it, 18.4).
        """
        if (
            self.embedder is None
            or self.index.dense is None
            or len(self.index.passages) < self.options.overlap_min_passages
        ):
            return None, False
        if vector is None and not getattr(self.embedder, "releases_gil", False):
            vector = self.embedder.encode_queries([question])
        # None once the searcher is closed: the dense side then runs inline, in `finish`.
        job = self._dense_pool.submit(self.dense_side, question, n, vector)
        return job, job is not None and vector is None

    def lexical_scores(self, query: LexicalQuery) -> tuple[np.ndarray, np.ndarray]:
        """(passage BM25, passage BM25 + the article's share) for every passage.

        Indexes built before article fields existed have none; they score passages alone until
        rebuilt (`newsqa index build`).
        """
        passage = self.index.lexical.scores(query).astype(np.float64)
        combined = passage
        if self.fusion.article_weight > 0:
            article = self.index.lexical.article_scores(query)
            if article is not None:
                combined = passage + self.fusion.article_weight * article
        return passage, combined

    def begin(
        self,
        question: str,
        k: int,
        analysis: QueryAnalysis | None = None,
        query_vector: np.ndarray | None = None,
    ) -> PendingSearch:
        """Start a search: the dense side (on a worker when that pays), then the question's
        analysis and BM25 here. `finish()` waits for the dense side and fuses; in between the
        caller may use `pending.leaders()` (the best lexical passages) for work of its own."""
        n_passages = len(self.index.passages)
        method = self.fusion.method
        n_dense = min(max(self.fusion.candidates, k), n_passages)
        empty = n_passages == 0 or k <= 0
        dense_job, embeds = None, False
        if not empty and method != LEXICAL_ONLY:
            if query_vector is None and self.embedder is not None:
                query_vector = cached_query(self.embedder, question)
            dense_job, embeds = self._start_dense(question, n_dense, query_vector)
        analysis = analysis or analyse(question)
        if empty:
            zeros = np.zeros(n_passages)
            return PendingSearch(self, question, 0, analysis, 0, query_vector, None, zeros, zeros, np.zeros(0, np.int64))
        raw_lexical, lexical = self.lexical_scores(analysis.lexical)
        # The fusion sees the best `candidates` passages by lexical score (ties to the lower row)
        # and the dense neighbours.
        lex_rows = top_k_positive(lexical, self.fusion.candidates) if method != DENSE_ONLY else np.zeros(0, np.int64)
        return PendingSearch(
            self, question, k, analysis, n_dense, query_vector, dense_job, raw_lexical, lexical, lex_rows, embeds
        )

    def search(
        self,
        question: str,
        k: int,
        analysis: QueryAnalysis | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[ScoredPassage]:
        return self.begin(question, k, analysis, query_vector).finish()

    def _fuse(self, pending: PendingSearch, dense: dict[int, float]) -> list[ScoredPassage]:
        method = self.fusion.method
        lexical, raw_lexical = pending.lexical, pending.raw_lexical
        rows = np.union1d(pending.lex_rows, np.fromiter(dense, dtype=np.int64, count=len(dense)))
        if len(rows) == 0:
            return []
        lex = lexical[rows] if method != DENSE_ONLY else np.zeros(len(rows))
        raw = raw_lexical[rows]
        den = np.array([dense.get(r, np.nan) for r in rows.tolist()], dtype=np.float64)

        if not dense:
            fused = lex
        elif method == DENSE_ONLY:
            fused = np.where(np.isnan(den), -np.inf, den)
        elif method == RRF:
            fused = self._rrf(lex, den, pending.analysis.vietnamese)
        else:
            fused = self._weighted(lex, den, pending.analysis.vietnamese)
        order = np.argsort(-fused, kind="stable")[: pending.k]
        return [
            ScoredPassage(
                row=int(rows[i]),
                score=float(fused[i]),
                lexical=float(raw[i]),
                dense=None if np.isnan(den[i]) else float(den[i]),
            )
            for i in order
        ]

    def _dense_weight(self, vietnamese: bool) -> float:
        return self.fusion.dense_weight_vi if vietnamese else self.fusion.dense_weight_en

    def _weighted(self, lex: np.ndarray, den: np.ndarray, vietnamese: bool) -> np.ndarray:
        w = self._dense_weight(vietnamese)
        lex_norm = lex / lex.max() if lex.max() > 0 else np.zeros_like(lex)
        present = ~np.isnan(den)
        den_norm = np.zeros_like(den)
        den_norm[present] = _minmax(den[present])
        if lex.max() <= 0:  # nothing matched lexically (an English question): dense alone decides
            w = 1.0
        return (1 - w) * lex_norm + w * den_norm

    def _rrf(self, lex: np.ndarray, den: np.ndarray, vietnamese: bool) -> np.ndarray:
        w = self._dense_weight(vietnamese)
        k = self.fusion.rrf_k
        fused = np.zeros_like(lex)
        lex_rank = np.argsort(np.argsort(-lex, kind="stable"), kind="stable")
        fused += np.where(lex > 0, (1 - w) / (k + 1 + lex_rank), 0.0)
        present = ~np.isnan(den)
        den_filled = np.where(present, den, -np.inf)
        den_rank = np.argsort(np.argsort(-den_filled, kind="stable"), kind="stable")
        fused += np.where(present, w / (k + 1 + den_rank), 0.0)
        return fused


__all__ = [
    "DENSE_ONLY",
    "LEXICAL_ONLY",
    "RRF",
    "WEIGHTED",
    "FusionConfig",
    "HybridSearcher",
    "PendingSearch",
    "ScoredPassage",
]
