"""Scale-out: Ray builds against local ones, compressed vector indexes at 1M, sharded loads and searches.

    .venv/bin/python bench/scaleout_bench.py build [--backend onnx-int8] [--workers 1,2] [--max-load 3]
    .venv/bin/python bench/scaleout_bench.py compressed [--types flat,ivf-sq8,ivf-pq,hnsw-fp16] [--passages 1000000]
    .venv/bin/python bench/scaleout_bench.py load [--shards 4] [--rounds 3] [--cold]
    .venv/bin/python bench/scaleout_bench.py search [--passages 400000] [--shards 4] [--questions 300] [--rounds 2] [--concurrency 1,4]
        [--compare-unsharded]

`build`: the 500 ViNewsQA dev articles (bench/common.py `source_articles`, copy 0 of each: the
real articles), in one run and each into an empty index root (no embedding cache):
raw batch `encode` of every passage (the floor), `build_index` with the local engine, and
`build_index` with the Ray engine on a local Ray instance with 1 and 2 embedding actors. Prints
passages/s per build and per actor, and a 10M-passage projection from the measured per-actor
rate (stated as a projection, with its assumptions).

`compressed`: the product's compressed index kinds (`index.ann.make_dense_index`) over 1M
passage vectors (the same corpus and vectors as bench/scale_bench.py: approximate model vectors
when its cache has them, else random unit vectors, said in the output), searched with ViNewsQA
questions embedded by the real model: recall@10 against exact search, the recall the build
measured itself (sampled passages as questions, as `newsqa index build` reports it), search
p50, build time, RSS after loading the file in a fresh process, size on disk.

`load`: the 1M product build bench/scale_bench.py writes (`--product-load`) cut into `--shards`
shards (`index.scale.shard_writer.write_sharded_build`, written once and kept, ~20 minutes; each shard's
vector index the product's choice for its size, HNSW at 250k passages, over every row), then `open_index` of it in a fresh process per round, as a
server loads it (sampled checksums, vectors memory-mapped): warm (right after reading the whole
folder) and, with `--cold` (root), after dropping the page cache.

`search`: a sharded build of `--passages` synthetic passages (bench/scale_bench.py's corpus of
real ViNewsQA sentences, its approximate model vectors) in `--shards` shards, written once by the
product's own `write_sharded_build` (BM25 with article fields from `LexicalIndex.build`, each
shard's vector index the product's choice for its size); then, in one process with the
vectors memory-mapped, ViNewsQA dev questions (vectors embedded beforehand, so the model is
not what is timed) searched with the shards one after another and side by side
(`index.scale.shards.fan_out`), the two taking turns question by question: BM25 over both fields, the
vector search, and the whole `HybridSearcher.search`; then, with more `--concurrency` client
threads, searches/s and latency of `HybridSearcher.search` each way. `--compare-unsharded` adds
the same corpus written as one plain build (one vector index over every passage) as a third way.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

import common  # noqa: F401
from common import (
    PYTHON,
    REPO,
    WORK_DIR,
    Stats,
    machine_line,
    model_label,
    model_path,
    rss_mb,
    source_articles,
    table,
    vinewsqa_questions,
    wait_for_quiet,
    write_seeds,
)

K = 10
TARGET = 10_000_000


# -- build ----------------------------------------------------------------------------------------


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def build_bench(args: argparse.Namespace, log) -> None:
    from newsqa.index.build import LocalEngine, build_index
    from newsqa.index.embedding.embedder import SentenceTransformerEmbedder
    from newsqa.index.scale.ray_build import RayEngine

    work = WORK_DIR / "scaleout"
    sources = source_articles()
    seeds = write_seeds(work / "seeds-vinewsqa-dev", sources, len(sources))
    make = functools.partial(
        SentenceTransformerEmbedder, model_path(), backend=args.backend, onnx_cache_dir=WORK_DIR / "onnx"
    )
    embedder = make()
    embedder.warm_up()
    articles, passages, _ = LocalEngine().read(seeds, 2_000_000, 150, 50)
    texts = list(dict.fromkeys(p.embedding_text() for p in passages))
    log(f"{len(articles)} articles, {len(passages)} passages ({len(texts)} distinct texts)")

    rows = []
    wait_for_quiet(args.max_load, args.wait, log)
    raw_s, _ = timed(embedder.encode_passages, texts)
    rows.append({"run": "raw batch encode (floor)", "workers": 1, "seconds": raw_s, "embedded": len(texts)})
    log(json.dumps(rows[-1]))

    def fresh(name: str) -> Path:
        root = work / "roots" / name
        shutil.rmtree(root, ignore_errors=True)
        return root

    wait_for_quiet(args.max_load, args.wait, log)
    seconds, report = timed(build_index, seeds, fresh("local"), embedder)
    rows.append({"run": "build, local engine", "workers": 1, "seconds": seconds, "embedded": report.embedded})
    log(json.dumps(rows[-1]))
    for workers in [int(w) for w in args.workers.split(",")]:
        engine = RayEngine(make, workers=workers)
        try:
            started = time.perf_counter()
            engine.start()
            init_s = time.perf_counter() - started
            wait_for_quiet(args.max_load, args.wait, log)
            seconds, report = timed(build_index, seeds, fresh(f"ray-{workers}"), embedder, engine=engine)
        finally:
            engine.close()
        rows.append({"run": "build, Ray engine", "workers": workers, "seconds": seconds, "embedded": report.embedded,
                     "ray_init_s": init_s})
        log(json.dumps(rows[-1]))

    print(f"model: {model_label(model_path())}, backend {args.backend}; {machine_line()}")
    print(f"corpus: ViNewsQA dev, {len(articles)} articles, {len(passages):,} passages; every build into an empty "
          "index root (no embedding cache); Ray: a local instance started before the timed build (its start-up "
          "is shown apart)")
    print()
    print(table(
        ["run", "embedding workers", "seconds", "passages/s", "passages/s per worker", "vs raw encode", "Ray start s"],
        [[r["run"], r["workers"], r["seconds"], len(passages) / r["seconds"], len(passages) / r["seconds"] / r["workers"],
          f"{raw_s / r['seconds']:.2f}", f"{r['ray_init_s']:.1f}" if "ray_init_s" in r else "-"] for r in rows],
    ))
    ray_rows = [r for r in rows if r["run"].startswith("build, Ray")]
    if ray_rows:
        # Every run here uses all the machine's cores (one actor with all of them, or one core per
        # actor), so the rate a cluster can scale is the rate per core.
        cores = os.cpu_count() or 1
        best = max(ray_rows, key=lambda r: len(passages) / r["seconds"])
        per_core = len(passages) / best["seconds"] / cores
        print()
        print(f"Projection (not a measurement) for {TARGET:,} passages, from the best measured Ray rate, "
              f"{per_core:.1f} passages/s per CPU core ({best['workers']} actor(s) on this machine's {cores} cores), "
              "assuming it scales linearly with cores (embedding is independent per passage):")
        projection = [[f"{n} CPU cores", f"{TARGET / (per_core * n) / 3600:.1f} h"] for n in (16, 64, 256)]
        print(table(["cluster", "embedding time"], projection))
        print("GPU workers are not measured here (no GPU on this machine). sentence-transformers lists "
              "all-MiniLM-L6-v2 at ~14,200 sentences/s on one V100 for short sentences; at 150-word passages "
              "(~8x the tokens) assume ~1,800 passages/s per GPU: 10M passages ≈ 1.5 h on one GPU, ≈ 12 min "
              "on 8 (assumed rate, to be measured on the cluster itself with this script).")


# -- compressed indexes ------------------------------------------------------------------------------


def probe(path: str, kind: str, queries: str, truth: str) -> dict:
    """In a fresh process: load one index file as the product does, search, report."""
    from newsqa.index import ann
    from newsqa.index.options import LoadOptions

    import faiss

    base = rss_mb()
    q = np.load(queries)
    gt = np.load(truth)
    manifest_params = json.loads(Path(path).with_suffix(".json").read_text())
    started = time.perf_counter()
    flags = faiss.IO_FLAG_MMAP_IFC if Path(path).stat().st_size > LoadOptions().mmap_bytes else 0
    index = faiss.read_index(path, flags)
    ann.set_search_params(index, manifest_params)
    load_s = time.perf_counter() - started
    rss_load = rss_mb() - base
    faiss.omp_set_num_threads(1)
    # The product's search parameter first, then the others a deployment could choose.
    sweep = {"ivf-pq": ("nprobe", (manifest_params.get("nprobe", 32), 16, 64, 128)),
             "ivf-sq8": ("nprobe", (manifest_params.get("nprobe", 64), 16, 32, 128)),
             "hnsw-fp16": ("ef_search", (manifest_params.get("ef_search", 256), 128, 512))}.get(kind, (None, (None,)))
    rows = []
    for value in dict.fromkeys(sweep[1]):
        if value is not None:
            ann.set_search_params(index, {**manifest_params, sweep[0]: value})
        for x in q[:20]:
            index.search(x[None, :], K)
        times, found = [], []
        for x in q:
            t = time.perf_counter()
            _, ids = index.search(x[None, :], K)
            times.append((time.perf_counter() - t) * 1000)
            found.append(ids[0])
        recall = float(np.mean([len(set(f.tolist()) & set(g.tolist())) / K for f, g in zip(found, gt)]))
        rows.append({"param": f"{sweep[0]}={value}" if value is not None else "-", "p50_ms": float(np.percentile(times, 50)),
                     "p99_ms": float(np.percentile(times, 99)), "recall": recall})
    return {"load_s": load_s, "rss_load_mb": rss_load, "rss_after_mb": rss_mb() - base, "rows": rows, "mmap": bool(flags)}


def compressed_bench(args: argparse.Namespace, log) -> None:
    import faiss

    import scale_bench
    from newsqa.index import ann
    from newsqa.index.embedding.embedder import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder(model_path())
    embedder.warm_up()
    queries = scale_bench.query_vectors(args.queries, embedder)
    log(f"generating the {args.passages:,}-passage corpus (bench/scale_bench.py) ...")
    _, passages = scale_bench.corpus(args.passages)
    label = {1_000_000: "1m", 100_000: "100k"}.get(args.passages, str(args.passages))
    work = WORK_DIR / f"scale-{label}" / scale_bench.corpus_key(passages)
    work.mkdir(parents=True, exist_ok=True)
    if args.vectors == "approx":
        from common import SentenceVectors

        sentence_table = SentenceVectors(embedder, WORK_DIR / "sentences.sqlite")
        vectors = scale_bench.cached_array(work / "vectors-approx.npy", lambda: scale_bench.approx_vectors(passages, sentence_table, log))
        kind_v = "approximate model vectors (word-weighted mean of the model's sentence vectors, bench/scale_bench.py)"
    else:
        vectors = scale_bench.cached_array(work / "vectors-random.npy", lambda: scale_bench.random_vectors(len(passages), queries.shape[1]))
        kind_v = "random unit vectors"
    del passages
    np.save(work / "queries.npy", queries)
    truth = scale_bench.truth_ids(work / f"truth-{'approx' if kind_v.startswith('approx') else 'random'}.npy", np.asarray(vectors), queries)
    rows = []
    for kind in args.types.split(","):
        path = work / f"product-{kind}-{'approx' if kind_v.startswith('approx') else 'random'}.faiss"
        if not path.is_file():
            log(f"building {kind} over {len(vectors):,} vectors ...")
            started = time.perf_counter()
            index = ann.make_dense_index(np.ascontiguousarray(vectors), kind=kind)
            build_s = time.perf_counter() - started
            started = time.perf_counter()
            info = ann.dense_index_info(index, np.asarray(vectors))
            info["build_s"], info["recall_check_s"] = build_s, time.perf_counter() - started
            faiss.write_index(index, str(path))
            path.with_suffix(".json").write_text(json.dumps(info))
            del index
        info = json.loads(path.with_suffix(".json").read_text())
        wait_for_quiet(args.max_load, args.wait, log)
        out = subprocess.run([PYTHON, __file__, "probe", str(path), kind, str(work / "queries.npy"), str(truth)],
                             cwd=REPO, capture_output=True, text=True, timeout=3600)
        if out.returncode:
            raise RuntimeError(out.stderr[-3000:])
        result = json.loads(out.stdout.strip().splitlines()[-1])
        for row in result.pop("rows"):
            rows.append({"type": kind, **info, **result, **row, "disk_mb": path.stat().st_size / 2**20})
            log(json.dumps(rows[-1]))
    print(f"model: {model_label(model_path())}; {machine_line()}; {len(vectors):,} passages, {kind_v}; "
          f"{len(queries)} ViNewsQA questions, one at a time, 1 FAISS thread; recall against exact inner-product search")
    print()
    print(table(
        ["type", "search parameter", "search p50 ms", "p99 ms", "recall@10 (questions)", "recall@10 at build (sampled passages)", "build s",
         "load s", "RSS after load MB", "RSS after search MB", "disk MB", "mmap"],
        [[r["type"], r["param"], r["p50_ms"], r["p99_ms"], f"{r['recall']:.3f}",
          f"{r['recall_at_10']:.3f}" if "recall_at_10" in r else "exact", r["build_s"], f"{r['load_s']:.3f}",
          r["rss_load_mb"], r["rss_after_mb"], r["disk_mb"], "yes" if r["mmap"] else "no"] for r in rows],
    ))


# -- load ----------------------------------------------------------------------------------------


def product_1m() -> Path:
    """The newest 1M product build that bench/scale_bench.py wrote."""
    found = sorted((WORK_DIR / "scale-1m").glob("*/product*/current"), key=lambda p: p.stat().st_mtime)
    if not found:
        sys.exit("no 1M product build: run bench/scale_bench.py --sizes 1m --product-load first")
    return found[-1].resolve()


def sharded_copy(source: Path, shards: int, log) -> Path:
    """The source build's articles, passages, vectors and BM25 fields written as `shards` shards."""
    from newsqa.index import loader, writer
    from newsqa.index.copies import Copies
    from newsqa.index.options import LoadOptions
    from newsqa.index.scale.shard_writer import plan_shards, write_sharded_build

    root = WORK_DIR / f"sharded-1m-{shards}"
    if (root / "current").exists():
        return root
    log(f"writing {source} as {shards} shards under {root} (once; ~20 min at 1M: a graph per shard) ...")
    loaded = loader.load_build(source, LoadOptions(verify=False))
    articles = [loaded.articles[a] for a in loaded.articles]
    passages = list(loaded.passages)
    vectors = np.load(source.parents[2] / "vectors-approx.npy", mmap_mode="r")
    original = Copies.find
    Copies.find = lambda v: None  # type: ignore[method-assign]  # every row indexed: the load is what is measured
    try:
        extra = {"model": loaded.manifest.get("model"), "splitter": {}, "warnings": []}
        folder = write_sharded_build(root, writer.BuildContents(articles, passages, vectors, loaded.lexical, extra),
                                     plan_shards(articles, passages, shards))
    finally:
        Copies.find = original  # type: ignore[method-assign]
    writer.swap_current(root, folder)
    return root


def probe_load(root: str) -> dict:
    """In a fresh process: open a build as a server does, with its vectors memory-mapped (the
    default LoadOptions)."""
    from newsqa.index import loader

    base = rss_mb()
    started = time.perf_counter()
    loaded = loader.open_index(Path(root))
    return {"load_s": time.perf_counter() - started, "rss_mb": rss_mb() - base, "shards": len(loaded.shards),
            "passages": len(loaded.passages), "articles": len(loaded.articles)}


def load_bench(args: argparse.Namespace, log) -> None:
    from scale_bench import drop_page_cache

    root = sharded_copy(product_1m(), args.shards, log)
    folder = (root / "current").resolve()
    rows = []
    for n in range(1, args.rounds + 1):
        for cache in ("warm", "cold") if args.cold else ("warm",):
            if cache == "cold":
                drop_page_cache()
            else:
                for path in folder.rglob("*"):
                    if path.is_file():
                        with open(path, "rb") as fh:
                            while fh.read(16 << 20):
                                pass
            out = subprocess.run([PYTHON, __file__, "probe-load", str(root)], cwd=REPO, capture_output=True, text=True, timeout=600)
            if out.returncode:
                raise RuntimeError(out.stderr[-3000:])
            rows.append({"round": n, "page cache": cache, **json.loads(out.stdout.strip().splitlines()[-1])})
            log(json.dumps(rows[-1]))
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20
    print(f"{machine_line()}; {rows[0]['passages']:,} passages, {rows[0]['articles']:,} articles in {rows[0]['shards']} shards "
          f"(HNSW each), {size:,.0f} MB on disk; open_index in a fresh process, sampled checksums, vectors memory-mapped")
    print()
    print(table(["round", "page cache", "load s", "RSS after load MB"],
                [[r["round"], r["page cache"], f"{r['load_s']:.2f}", r["rss_mb"]] for r in rows]))


# -- search ----------------------------------------------------------------------------------------


def search_builds(passages_n: int, shard_counts: Sequence[int], log) -> tuple[dict[int, Path], Path]:
    """Index roots of product builds of the same `passages_n` synthetic passages, one per shard
    count (1: one plain build folder), written once and kept; and the folder holding their vectors.
    The corpus, its vectors and its BM25 are made once for every build still missing."""
    from scale_bench import SentenceVectors, approx_vectors, cached_array, corpus, corpus_key

    from newsqa.index import writer
    from newsqa.index.embedding.embedder import SentenceTransformerEmbedder
    from newsqa.index.lexical import LexicalIndex
    from newsqa.index.scale.shard_writer import plan_shards, write_sharded_build

    articles, passages = corpus(passages_n)
    work = WORK_DIR / f"shard-search-{passages_n}" / corpus_key(passages)
    roots = {n: work / (f"shards-{n}" if n > 1 else "one-index") for n in shard_counts}
    missing = [n for n, root in roots.items() if not (root / "current").exists()]
    if not missing:
        return roots, work
    work.mkdir(parents=True, exist_ok=True)
    embedder = SentenceTransformerEmbedder(model_path())
    embedder.warm_up()
    log(f"approximate vectors for {len(passages):,} passages ...")
    vectors = cached_array(work / "vectors-approx.npy",
                           lambda: approx_vectors(passages, SentenceVectors(embedder, WORK_DIR / "sentences.sqlite"), log))
    log("BM25 over the whole corpus (LexicalIndex.build) ...")
    lexical = LexicalIndex.build([p.embedding_text() for p in passages], groups=[p.article_id for p in passages])
    extra = {"model": {"id": model_path(), "dimension": int(vectors.shape[1]), "query_prompt": "", "passage_prompt": ""},
             "splitter": {}, "warnings": []}
    contents = writer.BuildContents(articles, passages, np.asarray(vectors), lexical, extra)
    for n in missing:
        if n > 1:
            log(f"writing {n} shards (a vector index each) ...")
            folder = write_sharded_build(roots[n], contents, plan_shards(articles, passages, n))
        else:
            log("writing one plain build (its vector index) ...")
            folder = writer.write_build(roots[n], contents)
        writer.swap_current(roots[n], folder)
    return roots, work


def recall_at_10(index, passage_vectors: np.ndarray, questions: np.ndarray) -> float:
    """Share of the exact top 10 (by inner product over every passage) that `index.dense.search`
    returns in its top 10; a returned passage tied with the exact 10th (synthetic articles reuse
    sentences, so copies tie) counts as found."""
    found = 0
    for q in questions:
        exact = passage_vectors @ q
        tenth = np.partition(exact, -K)[-K]
        _, rows = index.dense.search(q.reshape(1, -1), 100)
        top = rows[0][:K]
        found += int(np.sum(exact[top[top >= 0]] >= tenth - 1e-6))
    return found / (K * len(questions))


def search_bench(args: argparse.Namespace, log) -> None:
    from scale_bench import query_vectors

    from newsqa.index import loader
    from newsqa.index.embedding.embedder import SentenceTransformerEmbedder
    from newsqa.index.options import LoadOptions
    from newsqa.retrieval.query import analyse
    from newsqa.retrieval.search import HybridSearcher

    roots, work = search_builds(args.passages, [args.shards, 1] if args.compare_unsharded else [args.shards], log)
    embedder = SentenceTransformerEmbedder(model_path())
    embedder.warm_up()
    questions = list(dict.fromkeys(vinewsqa_questions()))[: args.questions]
    vectors = query_vectors(len(questions), embedder)
    options = LoadOptions(faiss_threads=args.faiss_threads)  # a server's automatic count is 1 (docs/configuration.md)
    loaded = {}
    for count, root in roots.items():
        started = time.perf_counter()
        loaded[count] = loader.open_index(root, options)
        log(f"{count} shard(s): opened in {time.perf_counter() - started:.2f} s")
    side = max(2, os.cpu_count() or 1)  # what auto_search_threads gives a machine of side + 1 cores
    # The same build opened again with its own shard search pool (the files are shared in the page cache).
    side_by_side = loader.open_index(roots[args.shards], replace(options, shard_search_threads=side))
    # (label, index, shard search threads)
    ways = [(f"{args.shards} shards, one after another", loaded[args.shards], 1),
            (f"{args.shards} shards, side by side ({side} threads)", side_by_side, side)]
    if args.compare_unsharded:
        ways.append(("one index", loaded[1], 1))
    searchers = {id(index): HybridSearcher(index, embedder) for _, index, _ in ways}
    parts = {
        "BM25, both fields": lambda index, q, v: searchers[id(index)].lexical_scores(analyse(q).lexical),
        "vector search": lambda index, q, v: index.dense.search(v.reshape(1, -1), 100),
        "HybridSearcher.search": lambda index, q, v: searchers[id(index)].search(q, 5, query_vector=v.reshape(1, -1)),
    }
    samples: dict[tuple[str, str], list[float]] = {(w, p): [] for w, _, _ in ways for p in parts}
    busy: dict[tuple[int, str], list[tuple[float, list[float]]]] = {}
    # Side by side returns what one after another does: its recall is not measured again.
    passage_vectors = np.load(work / "vectors-approx.npy", mmap_mode="r")
    recall = {way: recall_at_10(index, passage_vectors, vectors) for way, index, count in ways if count == 1}
    wait_for_quiet(args.max_load, args.wait, log)
    load_before = os.getloadavg()[0]
    try:
        for round_ in range(args.rounds + 1):  # round 0 warms the page cache and the pools
            for i, (q, v) in enumerate(zip(questions, vectors)):
                turn = (i + round_) % len(ways)
                for way, index, count in ways[turn:] + ways[:turn]:
                    for part, fn in parts.items():
                        t = time.perf_counter()
                        fn(index, q, v)
                        if round_:
                            samples[(way, part)].append((time.perf_counter() - t) * 1000)
        # Several questions at once: does searching each one's shards side by side cost throughput?
        for clients in [int(c) for c in args.concurrency.split(",") if c and int(c) > 1]:
            for round_ in range(args.rounds):
                turn = round_ % len(ways)
                for way, index, count in ways[turn:] + ways[:turn]:
                    searcher = searchers[id(index)]
                    latencies: list[float] = []

                    def one(item, searcher=searcher, latencies=latencies) -> None:
                        t = time.perf_counter()
                        searcher.search(item[0], 5, query_vector=item[1].reshape(1, -1))
                        latencies.append((time.perf_counter() - t) * 1000)

                    t0 = time.perf_counter()
                    with ThreadPoolExecutor(max_workers=clients) as clients_pool:
                        list(clients_pool.map(one, zip(questions, vectors)))
                    wall = time.perf_counter() - t0
                    busy.setdefault((clients, way), []).append((len(latencies) / wall, latencies))
    finally:
        side_by_side.close()

    sharded = loaded[args.shards]
    print(f"{machine_line()}; load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after; "
          f"{len(sharded.passages):,} passages, {len(sharded.articles):,} articles in {len(sharded.shards)} shards "
          f"({', '.join(sorted({str(s.manifest.get('dense_index', {}).get('type')) for s in sharded.shards}))})"
          + (f" and as one index ({loaded[1].manifest.get('dense_index', {}).get('type')})" if 1 in loaded else "")
          + f"; {len(questions)} ViNewsQA questions x {args.rounds} rounds, vectors embedded beforehand, "
          f"{args.faiss_threads} FAISS thread(s) per search; the ways take turns question by question")
    for count, index in loaded.items():
        print(f"vector index, {count} shard(s): {json.dumps(index.manifest.get('dense_index', {}), sort_keys=True)}")
    for way, value in recall.items():
        print(f"vector search recall@10 against exact search over every passage, these questions, {way}: {value:.4f}")
    print()
    rows = []
    for part in parts:
        for way, _, _ in ways:
            st = Stats.of(samples[(way, part)])
            rows.append([part, way, f"{st.p50:.2f}", f"{st.p95:.2f}", f"{st.p99:.2f}"])
    print(table(["step", "searched", "p50 ms", "p95 ms", "p99 ms"], rows))
    if busy:
        print()
        print("HybridSearcher.search with several questions at once (client threads), each way in turn per round:")
        print()
        rows = []
        for (clients, way), runs in busy.items():
            st = Stats.of([x for _, lat in runs for x in lat])
            rows.append([clients, way, " / ".join(f"{qps:.0f}" for qps, _ in runs), f"{st.p50:.2f}", f"{st.p99:.2f}"])
        print(table(["clients", "searched", "searches/s per round", "p50 ms", "p99 ms"], rows))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("--backend", default="onnx-int8")
    b.add_argument("--workers", default="1,2")
    c = sub.add_parser("compressed")
    c.add_argument("--types", default="flat,ivf-sq8,ivf-pq")
    c.add_argument("--passages", type=int, default=1_000_000)
    c.add_argument("--vectors", default="approx", choices=["approx", "random"])
    c.add_argument("--queries", type=int, default=500)
    for p in (b, c):
        p.add_argument("--max-load", type=float, default=0.7)
        p.add_argument("--wait", type=float, default=600, help="seconds to wait for a quiet machine before measuring anyway")
    ld = sub.add_parser("load")
    ld.add_argument("--shards", type=int, default=4)
    ld.add_argument("--rounds", type=int, default=3)
    ld.add_argument("--cold", action="store_true", help="also load after dropping the page cache (root)")
    se = sub.add_parser("search")
    se.add_argument("--passages", type=int, default=400_000)
    se.add_argument("--shards", type=int, default=4)
    se.add_argument("--questions", type=int, default=300)
    se.add_argument("--rounds", type=int, default=2)
    se.add_argument("--concurrency", default="1,4", help="client threads; 1 is the interleaved table, more a throughput table")
    se.add_argument("--faiss-threads", type=int, default=1)
    se.add_argument("--compare-unsharded", action="store_true", help="also the same corpus as one plain build (written once)")
    se.add_argument("--max-load", type=float, default=1.0)
    se.add_argument("--wait", type=float, default=600)
    pr = sub.add_parser("probe")
    pr.add_argument("args", nargs=4)
    pl = sub.add_parser("probe-load")
    pl.add_argument("root")
    args = parser.parse_args(argv)
    if args.command == "probe":
        print(json.dumps(probe(*args.args)))
        return
    if args.command == "probe-load":
        print(json.dumps(probe_load(args.root)))
        return
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    {"build": build_bench, "compressed": compressed_bench, "load": load_bench, "search": search_bench}[args.command](args, log)


if __name__ == "__main__":
    main()
