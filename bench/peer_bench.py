"""newsqa side by side with txtai: same model, same passages, same questions, same run.

    .venv/bin/python bench/peer_bench.py [--questions 1000] [--runs vi,vi-nodiacritics] [--max-load 0.7]

Passages: the ViNewsQA dev contexts indexed by the product's own build (bench/retrieval_bench.py:
cleaning, sentence splitting, passage packing); txtai indexes exactly those passages' texts (title
+ passage, the text newsqa embeds), by row, with the same local model through sentence-transformers.

Systems, each with its own model instance (so no query embedding is shared or cached across them):
- newsqa dense: `HybridSearcher` with dense-only fusion (FAISS, exact at this size);
- newsqa hybrid: `HybridSearcher` as the service runs it (BM25 accented/folded fields + dense);
- txtai dense: `Embeddings(path=model)` (faiss IDMap,Flat at this size: exact);
- txtai hybrid: `Embeddings(path=model, hybrid=True)`: its BM25 (Unicode word segmentation) and
  dense scores, normalised and averaged 0.5 / 0.5 (txtai's default).

Per question, each system returns its top 10 (timed end to end: query embedding included), the
systems taking turns to go first. Recall@10 and MRR@10 use the retrieval benchmark's definition:
a passage is relevant when it holds the start of one of the question's answer spans.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import common  # noqa: F401
from common import DATA_DIR, WORK_DIR, Stats, machine_line, model_label, model_path, model_source, table, wait_for_quiet


@dataclass
class PeerResult:
    run: str
    system: str
    n: int
    recall10: float
    mrr10: float
    latency: Stats
    index_s: float


def newsqa_systems(index, backend: str, onnx_dir: Path) -> tuple[dict[str, Callable[[str], list[int]]], float]:
    from newsqa.index.embedding.embedder import SentenceTransformerEmbedder
    from newsqa.retrieval.search import DENSE_ONLY, FusionConfig, HybridSearcher

    def embedder():
        e = SentenceTransformerEmbedder(model_path(), backend=backend, onnx_cache_dir=onnx_dir)
        e.warm_up()
        return e

    dense = HybridSearcher(index, embedder(), FusionConfig(method=DENSE_ONLY))
    hybrid = HybridSearcher(index, embedder(), FusionConfig())
    suffix = "" if backend == "torch" else f" ({backend})"
    return {
        f"newsqa dense{suffix}": lambda q: [h.row for h in dense.search(q, 10)],
        f"newsqa hybrid{suffix}": lambda q: [h.row for h in hybrid.search(q, 10)],
    }, 0.0


def txtai_systems(texts: Sequence[str], log) -> tuple[dict[str, Callable[[str], list[int]]], dict[str, float]]:
    from txtai import Embeddings

    systems, seconds = {}, {}
    for name, config in (
        ("txtai dense", {"path": model_source(), "method": "sentence-transformers"}),
        ("txtai hybrid", {"path": model_source(), "method": "sentence-transformers", "hybrid": True}),
    ):
        log(f"indexing {len(texts):,} passages with {name} ...")
        embeddings = Embeddings(**config)
        started = time.perf_counter()
        embeddings.index([(row, text, None) for row, text in enumerate(texts)])
        seconds[name] = time.perf_counter() - started
        systems[name] = (lambda e: lambda q: [int(i) for i, _ in e.search(q, 10)])(embeddings)
    return systems, seconds


def backend_quality(benches, backends: Sequence[str], onnx_dir: Path, log) -> list[list[object]]:
    """Retrieval quality of each embedding backend on all questions, each with an index whose
    passage vectors all come from that backend (a fresh embedding cache per backend)."""
    import numpy as np

    import retrieval_bench as rb
    from newsqa.index.embedding.embedder import SentenceTransformerEmbedder
    from newsqa.index.split import DEFAULT_MAX_WORDS, DEFAULT_MIN_WORDS
    from newsqa.retrieval.search import DENSE_ONLY, FusionConfig, HybridSearcher

    rows = []
    for bench in benches:
        for backend in backends:
            embedder = SentenceTransformerEmbedder(model_path(), backend=backend, onnx_cache_dir=onnx_dir)
            embedder.warm_up()
            log(f"quality: indexing {bench.name} with {backend} ...")
            root = WORK_DIR / "quality" / bench.name.replace(" ", "-") / backend
            index = rb.build(bench, root, embedder, DEFAULT_MAX_WORDS, DEFAULT_MIN_WORDS)
            relevant = rb.relevant_rows(bench, index)
            for label, questions in bench.runs.items():
                vectors = np.asarray(embedder.encode_queries([q.text for q in questions]))
                for system, fusion in (("dense", FusionConfig(method=DENSE_ONLY)), ("hybrid", FusionConfig())):
                    m = rb.evaluate(questions, HybridSearcher(index, embedder, fusion), relevant, vectors)
                    rows.append([bench.name, backend, label, system, m.n, f"{m.recall[10] * 100:.1f}", f"{m.mrr10 * 100:.2f}"])
    return rows


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=1000, help="first N questions of each run (0 = all)")
    parser.add_argument("--runs", default="vi,vi|no diacritics", help="vi and/or 'vi|no diacritics' (| for the comma)")
    parser.add_argument("--backends", default="torch", help="newsqa embedding backends to include (torch, onnx, onnx-int8)")
    parser.add_argument("--quality-backends", default="", help="also: retrieval quality per backend, e.g. torch,onnx,onnx-int8")
    parser.add_argument("--quality-sets", default="vinewsqa,xquad", help="data sets for --quality-backends")
    parser.add_argument("--max-load", type=float, default=0.7)
    parser.add_argument("--wait", type=float, default=1800)
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    import retrieval_bench as rb
    from newsqa.index.embedding.embedder import SentenceTransformerEmbedder
    from newsqa.index.split import DEFAULT_MAX_WORDS, DEFAULT_MIN_WORDS

    args = parse_args(argv)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    bench = rb.load_set("vinewsqa", DATA_DIR, None)
    builder = SentenceTransformerEmbedder(model_path())
    builder.warm_up()
    started = time.perf_counter()
    index = rb.build(bench, WORK_DIR / "peer" / "vinewsqa", builder, DEFAULT_MAX_WORDS, DEFAULT_MIN_WORDS)
    newsqa_index_s = time.perf_counter() - started  # from the embedding cache after the first run
    relevant = rb.relevant_rows(bench, index)
    texts = [p.embedding_text() for p in index.passages]

    onnx_dir = WORK_DIR / "onnx"
    systems: dict[str, Callable[[str], list[int]]] = {}
    for backend in args.backends.split(","):
        systems.update(newsqa_systems(index, backend, onnx_dir)[0])
    peers, index_seconds = txtai_systems(texts, log)
    systems.update(peers)

    load = wait_for_quiet(args.max_load, args.wait, log)
    start_line = machine_line()
    results: list[PeerResult] = []
    for run in args.runs.split(","):
        label = run.replace("|", ", ")
        questions = bench.runs[label][: args.questions or None]
        names = list(systems)
        found: dict[str, list[int | None]] = {n: [] for n in names}
        times: dict[str, list[float]] = {n: [] for n in names}
        for i, q in enumerate(questions):
            wanted = frozenset().union(*(relevant.get((q.article, rb._span_key(s)), frozenset()) for s in q.answers))
            for name in names[i % len(names) :] + names[: i % len(names)]:
                t = time.perf_counter()
                rows = systems[name](q.text)
                times[name].append((time.perf_counter() - t) * 1000)
                found[name].append(next((rank for rank, r in enumerate(rows, 1) if r in wanted), None))
        for name in names:
            ranks = found[name]
            n = len(ranks) or 1
            results.append(PeerResult(
                label, name, len(ranks), sum(r is not None for r in ranks) / n,
                sum(1 / r for r in ranks if r is not None) / n, Stats.of(times[name]),
                index_seconds.get(name, newsqa_index_s),
            ))
        log(f"done: {label}")

    print(f"model: {model_label(model_path())}; {len(index.passages):,} passages (ViNewsQA dev, the product's "
          f"passages); at start: {start_line}; load when starting {load:.2f}; at end: {machine_line()}\n")
    print(table(
        ["questions", "system", "n", "recall@10", "MRR@10", "p50 ms", "p95 ms", "p99 ms"],
        [[r.run, r.system, r.n, f"{r.recall10 * 100:.1f}", f"{r.mrr10 * 100:.1f}", r.latency.p50, r.latency.p95,
          r.latency.p99] for r in results],
    ))
    print(f"\nindexing the passages: txtai dense {index_seconds['txtai dense']:.0f} s, txtai hybrid "
          f"{index_seconds['txtai hybrid']:.0f} s (both embed every passage); newsqa vectors come from its embedding cache "
          f"after the first run ({newsqa_index_s:.0f} s this run)")
    if args.quality_backends:
        sets = [bench if name == "vinewsqa" else rb.load_set(name, DATA_DIR, None) for name in args.quality_sets.split(",")]
        rows = backend_quality(sets, args.quality_backends.split(","), onnx_dir, log)
        print("\nretrieval quality by embedding backend (all questions; each index embedded by that backend):\n")
        print(table(["data set", "backend", "questions", "system", "n", "recall@10", "MRR@10"], rows))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
