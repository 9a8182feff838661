"""Questions that name a time ("hôm nay", "tuần trước", "mới nhất", "in November"): the right day's
story at rank 1, with publication dates weighed and without.

    .venv/bin/python bench/time_bench.py

bench/data/time_questions.json holds the articles (the same subjects on several days) and the
labelled questions, asked on the set's "today". Each question is searched and answered twice on one
index built with the default model: as the product does (retrieval/when.py), and with dates given
no weight. Prints one table per kind of question: R@1 (the labelled article first) and answered
(found, citing it first).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from dataclasses import replace
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import machine_line, table  # noqa: E402
from newsqa.index.build import ArticlesEngine, build_index  # noqa: E402
from newsqa.index.clean import clean_article  # noqa: E402
from newsqa.index.embedding.embedder import DEFAULT_MODEL, SentenceTransformerEmbedder  # noqa: E402
from newsqa.index.models import Article  # noqa: E402
from newsqa.index.split import DEFAULT_MAX_WORDS, DEFAULT_MIN_WORDS  # noqa: E402
from newsqa.retrieval.service import QAService, ServiceConfig  # noqa: E402
from newsqa.retrieval.when import WhenOptions  # noqa: E402

QUESTIONS = REPO / "bench" / "data" / "time_questions.json"
UNWEIGHTED = WhenOptions(in_window=0.0, latest=0.0, tie_break=0.0)


def articles_of(data: dict) -> list[Article]:
    """The set's articles, cleaned as any article is, with their publisher and date."""
    return [
        replace(clean_article(item["id"], f"{item['title']}\n\n{item['text']}", source=f"bench:{item['id']}"),
                published=item["published"], site=item["site"])
        for item in data["articles"]
    ]


def run(service: QAService, questions: list[dict]) -> dict[str, dict[str, float]]:
    counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for item in questions:
        hits = service.search(item["question"], 5).hits
        answer = service.ask(item["question"], 5)
        for key in (item["kind"], "all"):
            row = counts[key]
            row["n"] += 1
            row["r@1"] += bool(hits) and hits[0].article_id == item["article"]
            row["answered"] += answer.found and answer.citations[0].article_id == item["article"]
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/newsqa-bench"))
    args = parser.parse_args(argv)
    data = json.loads(QUESTIONS.read_text(encoding="utf-8"))
    today = date.fromisoformat(data["today"])
    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=args.cache_dir / "models")
    embedder.warm_up()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        build_index(root, root, embedder, DEFAULT_MAX_WORDS, DEFAULT_MIN_WORDS, engine=ArticlesEngine(articles_of(data)))
        results = {}
        for label, options in (("dates weighed", WhenOptions()), ("dates ignored", UNWEIGHTED)):
            config = ServiceConfig(index_dir=root, model=DEFAULT_MODEL, when=options)
            service = QAService(config, embedder_factory=lambda name: embedder, today=lambda: today)
            results[label] = run(service, data["questions"])
            service.close()
    print(f"Time in questions, {len(data['questions'])} questions on {today} ({machine_line()})")
    kinds = sorted(results["dates weighed"], key=lambda k: (k == "all", k))
    rows = []
    for kind in kinds:
        weighed, ignored = results["dates weighed"][kind], results["dates ignored"][kind]
        n = int(weighed["n"])
        rows.append([kind, n, 100 * ignored["r@1"] / n, 100 * weighed["r@1"] / n,
                     100 * ignored["answered"] / n, 100 * weighed["answered"] / n])
    print(table(["kind", "n", "R@1 ignored", "R@1 weighed", "answered ignored", "answered weighed"], rows))


if __name__ == "__main__":
    main()
