"""Index build throughput against the model's own batch encoding, and incremental rebuilds.

    .venv/bin/python bench/build_bench.py [--passages 10000] [--backends torch] [--max-load 0.7]

On ~10k passages of synthetic articles (real ViNewsQA sentences recombined, bench/common.py),
embedded by the real model, in one run:

1. raw: `model.encode(all passage texts, batch_size=B)`, B the build's batch size: the floor of a build, every passage
   through the model once, nothing else (the same texts the build embeds: title + passage);
2. full: `build_index` into an empty index root (empty embedding cache): read, clean, split,
   embed, BM25, write, re-read and verify, swap; with the time of each step;
3. raw again (the machine is shared: the two raw runs bracket the build, showing drift);
4. incremental: one new article file added, `build_index` again (the cache has every other
   passage), and a rebuild with nothing new.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import common  # noqa: F401
from common import (
    WORK_DIR,
    article_text,
    articles_for,
    machine_line,
    MODELS_DIR,
    model_label,
    model_path,
    model_source,
    source_articles,
    table,
    variant,
    wait_for_quiet,
    write_seeds,
)
from newsqa.index.embedding.embedder import DEFAULT_BATCH_SIZE


@dataclass
class BuildRun:
    backend: str
    passages: int
    raw_before_s: float
    raw_after_s: float
    full_s: float
    steps: dict[str, float]
    incremental_s: float
    incremental_embedded: int
    unchanged_s: float
    extra: dict = field(default_factory=dict)


class StepClock:
    """Turns build_index's progress events into seconds per step."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.last = self.started
        self.steps: dict[str, float] = {}
        self.current: str | None = None

    def __call__(self, step: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if step != self.current:
            if self.current is None:
                self.steps["read"] = now - self.last  # the first event arrives after reading
                self.last = now
                self.current = step
                return
            self.current = step
        if done >= total:
            self.steps[step] = self.steps.get(step, 0.0) + now - self.last
            self.last = now


def passage_texts(seeds: Path) -> list[str]:
    from newsqa.index.articles import read_articles
    from newsqa.index.split import split_passages

    return [p.embedding_text() for a in read_articles(seeds).articles for p in split_passages(a)]


def raw_encode(backend: str, texts: Sequence[str], onnx_dir: Path, batch_size: int) -> float:
    if backend == "torch":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(model_source(), device="cpu")
    else:
        from newsqa.index.embedding.onnx_backend import load_onnx_model

        # ONNX Runtime's own thread count, as the build's embedder has by default
        model = load_onnx_model(model_source(), backend, onnx_dir, None)
    model.encode(list(texts[:64]), batch_size=batch_size)  # warm
    started = time.perf_counter()
    model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return time.perf_counter() - started


def run(backend: str, seeds: Path, extra_article: tuple[str, str], onnx_dir: Path, batch_size: int, log) -> BuildRun:
    from newsqa.index.build import build_index
    from newsqa.index.embedding.embedder import SentenceTransformerEmbedder

    texts = passage_texts(seeds)
    log(f"[{backend}] raw encode of {len(texts):,} passages ...")
    raw_before = raw_encode(backend, texts, onnx_dir, batch_size)
    root = WORK_DIR / f"build-bench-{backend}"
    shutil.rmtree(root, ignore_errors=True)
    embedder = SentenceTransformerEmbedder(
        model_path(), batch_size=batch_size, backend=backend, onnx_cache_dir=onnx_dir, models_dir=MODELS_DIR
    )
    embedder.warm_up()  # loading the model is start-up, not build throughput
    log(f"[{backend}] full build ...")
    clock = StepClock()
    report = build_index(seeds, root, embedder, progress=clock)
    full = time.perf_counter() - clock.started
    log(f"[{backend}] raw encode again ...")
    raw_after = raw_encode(backend, texts, onnx_dir, batch_size)

    grown = seeds.parent / f"{seeds.name}-plus-one"
    shutil.rmtree(grown, ignore_errors=True)
    shutil.copytree(seeds, grown)
    (grown / f"{extra_article[0]}.txt").write_text(extra_article[1], encoding="utf-8")
    started = time.perf_counter()
    incremental = build_index(grown, root, embedder)
    incremental_s = time.perf_counter() - started
    started = time.perf_counter()
    build_index(grown, root, embedder)
    unchanged_s = time.perf_counter() - started
    return BuildRun(
        backend, report.passages, raw_before, raw_after, full, clock.steps, incremental_s, incremental.embedded,
        unchanged_s, {"articles": report.articles, "embedded": report.embedded},
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=10_000)
    parser.add_argument("--backends", default="torch")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="NEWSQA_BATCH_SIZE (default: the product's)")
    parser.add_argument("--max-load", type=float, default=0.7)
    parser.add_argument("--wait", type=float, default=1800)
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    sources = source_articles()
    n_articles = articles_for(sources, args.passages)
    seeds = write_seeds(WORK_DIR / f"build-{args.passages // 1000}k" / "seeds", sources, n_articles)
    key, title, paragraphs = variant(sources, n_articles + 7, seed=1)
    extra = (f"new-{key}", article_text(title, paragraphs))
    onnx_dir = WORK_DIR / "onnx"
    runs = []
    loads = []
    for backend in args.backends.split(","):
        loads.append(wait_for_quiet(args.max_load, args.wait, log))
        runs.append(run(backend, seeds, extra, onnx_dir, args.batch_size, log))
    print(f"model: {model_label(model_path())}; load when starting each backend: {', '.join(f'{x:.2f}' for x in loads)}; "
          f"at end: {machine_line()}\n")
    rows = []
    for r in runs:
        raw = (r.raw_before_s + r.raw_after_s) / 2
        rows.append([
            r.backend, f"{r.passages:,}", f"{r.passages / r.raw_before_s:.1f} / {r.passages / r.raw_after_s:.1f}",
            f"{r.passages / r.full_s:.1f}", f"{raw / r.full_s:.2f}", f"{r.full_s:.1f}",
            ", ".join(f"{k} {v:.1f}" for k, v in r.steps.items()),
        ])
    print(table(["backend", "passages", "raw encode passages/s (before / after)", "build passages/s",
                 "build ÷ raw (mean)", "full build s", "steps (s)"], rows))
    print()
    print(table(["backend", "full build s", "+1 article s", "passages embedded", "+1 article ÷ full", "rebuild, nothing new s"],
                [[r.backend, f"{r.full_s:.1f}", f"{r.incremental_s:.2f}", r.incremental_embedded,
                  f"{r.incremental_s / r.full_s * 100:.1f}%", f"{r.unchanged_s:.2f}"] for r in runs]))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=2))


if __name__ == "__main__":
    main()
