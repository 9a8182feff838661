"""Retrieval quality and the found decision measured through the HTTP API, as a service sees them.

    .venv/bin/python bench/http_quality.py [--sets seed,xquad,vinewsqa] [--limit N]

Each set's articles are written as files, indexed by `newsqa index build` and served by
`newsqa serve` on 127.0.0.1, with the product's defaults: NEWSQA_EMBEDDING_MODEL is removed from the
environment, so the default model and backend are what is measured. Benchmark questions go to
`GET /search?k=10` (R@1/5/10 and MRR@10, as bench/retrieval_bench.py counts them); the labelled seed
questions go to `POST /ask` (found decision, and whether the answer quotes an evidence string from
the passage it cites [1]). NEWSQA_MODELS_DIR is shared by the sets, so the model is converted and
exported once.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import bench.retrieval_bench as rb  # noqa: E402
from bench.common import DATA_DIR, PYTHON, SEED_QUESTIONS, SEEDS, WORK_DIR, machine_line, serve, table  # noqa: E402
from newsqa.index.format import resolve_build  # noqa: E402
from newsqa.index.loader import load_build  # noqa: E402
from newsqa.index.options import LoadOptions  # noqa: E402
from newsqa.retrieval.evaluate import quotes_evidence  # noqa: E402
from newsqa.retrieval.models import Answer  # noqa: E402


def product_env(index_root: Path, seeds: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NEWSQA_EMBEDDING_MODEL"}
    return env | {
        "NEWSQA_INDEX_DIR": str(index_root),
        "NEWSQA_SEEDS_DIR": str(seeds),
        "NEWSQA_MODELS_DIR": str(WORK_DIR / "models"),
        "HF_HUB_OFFLINE": "1",
        "NEWSQA_HTTP_RATE_LIMIT": "0",  # one benchmark client asks far more than a person
    }


def build(index_root: Path, seeds: Path) -> None:
    subprocess.run([PYTHON, "-m", "newsqa.bot.cli", "index", "build"], cwd=REPO, env=product_env(index_root, seeds), check=True,
                   stdout=subprocess.DEVNULL)


def search_metrics(client, url: str, questions: Sequence[rb.Question], relevant, row_of: dict[str, int]) -> list[object]:
    ranks = []
    for q in questions:
        wanted = frozenset().union(*(relevant.get((q.article, rb._span_key(s)), frozenset()) for s in q.answers))
        hits = client.get(url + "/search", params={"q": q.text, "k": 10}).raise_for_status().json()["hits"]
        ranks.append(next((h["rank"] for h in hits if row_of[h["passage_id"]] in wanted), None))
    n = len(ranks) or 1
    recall = [100 * sum(r is not None and r <= k for r in ranks) / n for k in (1, 5, 10)]
    return [len(ranks), *(round(x, 1) for x in recall), round(100 * sum(1 / r for r in ranks if r) / n, 1)]


def seed_metrics(client, url: str) -> list[list[object]]:
    questions = json.loads(SEED_QUESTIONS.read_text(encoding="utf-8"))["questions"]
    per_kind: dict[str, list[int]] = {}
    tp = fp = fn = 0
    for item in questions:
        reply = client.post(url + "/ask", json={"question": item["question"]}).raise_for_status().json()
        answer = Answer.model_validate(reply)  # the API's schema is the service's Answer
        answerable = bool(item["answers"])
        stats = per_kind.setdefault(item["kind"], [0, 0, 0])
        stats[0] += 1
        stats[1] += answer.found
        stats[2] += quotes_evidence(answer, item)
        tp += answer.found and answerable
        fp += answer.found and not answerable
        fn += answerable and not answer.found
    rows = [[kind, n, round(100 * found / n, 1), round(100 * quoted / n, 1)] for kind, (n, found, quoted) in sorted(per_kind.items())]
    rows.append(["found decision", f"precision {100 * tp / max(tp + fp, 1):.1f}", f"recall {100 * tp / max(tp + fn, 1):.1f}", ""])
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="seed,xquad,vinewsqa")
    parser.add_argument("--limit", type=int, default=None, help="first N articles of each benchmark set")
    args = parser.parse_args(argv)
    import httpx

    search_rows: list[list[object]] = []
    seed_rows: list[list[object]] = []
    for name in args.sets.split(","):
        root, seeds = WORK_DIR / f"http-{name}", WORK_DIR / f"http-{name}-seeds"
        bench = None
        if name == "seed":
            seeds = SEEDS
        else:
            bench = rb.load_set(name, DATA_DIR, args.limit)
            seeds.mkdir(parents=True, exist_ok=True)
            for old in seeds.glob("*.txt"):
                old.unlink()
            for article in bench.articles:
                (seeds / f"{article.key}.txt").write_text(article.file_text(), encoding="utf-8")
        build(root, seeds)
        env = product_env(root, seeds)
        with serve(root, {}, WORK_DIR / "logs", env_override=env) as server, httpx.Client(timeout=60) as client:
            model = client.get(server.url + "/readyz").json()["model"]
            if bench is None:
                seed_rows += seed_metrics(client, server.url)
                continue
            index = load_build(resolve_build(root), LoadOptions(verify=False))
            relevant = rb.relevant_rows(bench, index)
            row_of = {p.passage_id: row for row, p in enumerate(index.passages)}
            for label, questions in bench.runs.items():
                search_rows.append([bench.name, label, *search_metrics(client, server.url, questions, relevant, row_of)])
                print(search_rows[-1], file=sys.stderr, flush=True)
    print(f"model served: {model}; {machine_line()}")
    if search_rows:
        print(table(["set", "questions", "n", "R@1", "R@5", "R@10", "MRR@10"], search_rows))
    if seed_rows:
        print()
        print("labelled seed questions through POST /ask:")
        print(table(["kind", "n", "found %", "quoted from [1] %"], seed_rows))


if __name__ == "__main__":
    main()
