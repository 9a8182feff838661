"""Follow-up questions in context: the second turn's R@5 read with the first, asked alone, and on
topic switches, over two-turn conversations on ViNewsQA dev articles (bench/data/conversations_vinewsqa.json).

    .venv/bin/python bench/conversation_bench.py [--limit N]

Each conversation is asked as a person would: the first question alone, its answer remembered as
the product remembers it (`next_turn`), then the second question with that turn as context, and
once more alone. A second turn is found at 5 when a passage among its top 5 is from the labelled
article and holds the labelled answer. Prints one table: language × kind, with context and alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import DATA_DIR, machine_line, table  # noqa: E402
from bench.retrieval_bench import build, load_set  # noqa: E402
from newsqa.index.embedding.embedder import DEFAULT_MODEL, SentenceTransformerEmbedder  # noqa: E402
from newsqa.index.split import DEFAULT_MAX_WORDS, DEFAULT_MIN_WORDS  # noqa: E402
from newsqa.index.text import nfc  # noqa: E402
from newsqa.retrieval.conversation import next_turn  # noqa: E402
from newsqa.retrieval.service import QAService, ServiceConfig  # noqa: E402

CONVERSATIONS = REPO / "bench" / "data" / "conversations_vinewsqa.json"
K = 5


def found_at_k(result, article: str, answer: str) -> bool:
    return any(h.article_id == article and nfc(answer) in nfc(h.text) for h in result.hits[:K])


def main(argv: list[str] | None = None) -> dict[tuple[str, str], dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/newsqa-bench"))
    parser.add_argument("--limit", type=int, default=None, help="first N conversations only")
    args = parser.parse_args(argv)

    conversations = json.loads(CONVERSATIONS.read_text(encoding="utf-8"))["conversations"][: args.limit]
    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=args.cache_dir / "models")
    embedder.warm_up()
    bench = load_set("vinewsqa", DATA_DIR, None)
    root = args.cache_dir / "vinewsqa-dev"
    started = time.perf_counter()
    build(bench, root, embedder, DEFAULT_MAX_WORDS, DEFAULT_MIN_WORDS)
    print(f"index ready in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    service = QAService(ServiceConfig(index_dir=root, model=DEFAULT_MODEL), embedder_factory=lambda name: embedder)
    service.warm_up()

    counts: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for conversation in conversations:
        first, second = conversation["turns"]
        turn = next_turn(service.ask(first["question"]), None)
        article = f"vn{second['article']:04d}"
        with_context = service.search(second["question"], K, context=turn)
        alone = service.search(second["question"], K)
        for key in ((conversation["language"], conversation["kind"]), ("all", conversation["kind"])):
            row = counts[key]
            row["n"] += 1
            row["context"] += found_at_k(with_context, article, second["answer"])
            row["alone"] += found_at_k(alone, article, second["answer"])
            row["read with context"] += with_context.context_used

    rows = []
    for (language, kind), row in sorted(counts.items()):
        n = row["n"]
        rows.append([
            language, kind, int(n), f"{100 * row['context'] / n:.1f}", f"{100 * row['alone'] / n:.1f}",
            f"{100 * row['read with context'] / n:.1f}",
        ])
    print(f"Second turn R@{K}, {len(conversations)} conversations over ViNewsQA dev ({machine_line()})")
    print(table(["language", "kind", "n", f"R@{K} with context", f"R@{K} alone", "% read with context"], rows))
    return counts


if __name__ == "__main__":
    main()
