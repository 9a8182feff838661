"""Follow-up questions in context: the second turn's R@5 read with the first, asked alone, and on
topic switches, over two-turn conversations on ViNewsQA dev articles (bench/data/conversations_vinewsqa.json).

    .venv/bin/python bench/conversation_bench.py

Each conversation is asked as a person would: the first question alone, its answer remembered as
the product remembers it (`next_turn`), then the second question with that turn as context, and
once more alone. A second turn is found at 5 when a passage among its top 5 is from the labelled
article and holds the labelled answer. Prints one table: language × kind, with context and alone.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import DATA_DIR, machine_line  # noqa: E402
from bench.retrieval_bench import build, load_set  # noqa: E402
from newsqa.index.embedding.embedder import DEFAULT_MODEL, SentenceTransformerEmbedder  # noqa: E402
from newsqa.index.split import DEFAULT_MAX_WORDS, DEFAULT_MIN_WORDS  # noqa: E402
from newsqa.retrieval.evaluate import evaluate_conversations, format_conversations  # noqa: E402
from newsqa.retrieval.service import QAService, ServiceConfig  # noqa: E402

CONVERSATIONS = REPO / "bench" / "data" / "conversations_vinewsqa.json"
K = 5


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/newsqa-bench"))
    args = parser.parse_args(argv)

    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=args.cache_dir / "models")
    embedder.warm_up()
    bench = load_set("vinewsqa", DATA_DIR, None)
    root = args.cache_dir / "vinewsqa-dev"
    started = time.perf_counter()
    build(bench, root, embedder, DEFAULT_MAX_WORDS, DEFAULT_MIN_WORDS)
    print(f"index ready in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    service = QAService(ServiceConfig(index_dir=root, model=DEFAULT_MODEL), embedder_factory=lambda name: embedder)
    service.warm_up()

    report = evaluate_conversations(service, CONVERSATIONS, K, article_key=lambda i: f"vn{i:04d}")
    conversations = report["all follow_up"]["n"] + report.get("all switch", {"n": 0})["n"]
    print(f"Second turn R@{K}, {conversations} conversations over ViNewsQA dev ({machine_line()})")
    print(format_conversations(report, K))
    return report


if __name__ == "__main__":
    main()
