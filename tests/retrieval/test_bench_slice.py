"""The retrieval benchmark on a small slice of the shared public sets: it runs end to end through
the product's build and searcher and its numbers are sane. Full runs: docs/quality.md.

bench/retrieval_bench.py runs as a script in a process of its own, as a person runs it (the suite
never imports bench/): its JSON (`--json`, `--show-set`) and printed table are what is checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from newsqa.index.text import has_diacritics
from tests.conftest import REPO

SCRIPT = REPO / "bench" / "retrieval_bench.py"
DATA = Path(os.environ.get("NEWSQA_BENCHDATA", REPO.parent / "shared" / "benchdata"))  # the script's default
HEADER = "| dataset | questions | n | system | R@1 | R@5 | R@10 | MRR@10 |"
pytestmark = pytest.mark.skipif(
    not (DATA / "vinewsqa_dev.json").is_file() or not (DATA / "xquad.vi.json").is_file(),
    reason=f"benchmark data not found in {DATA} (set NEWSQA_BENCHDATA)",
)
SLICE = 20


def bench(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def show_set(name: str, data: Path, limit: int) -> dict:
    """The set as the script loads it (`--show-set`): articles, and questions by run label."""
    [loaded] = json.loads(bench("--dataset", name, "--limit", str(limit), "--data-dir", str(data), "--show-set").stdout)
    return loaded


class Metrics:
    """One run's metrics as the script writes them to --json (recall keyed by k)."""

    def __init__(self, raw: dict) -> None:
        self.n, self.mrr10, self.answer_rows_missing = raw["n"], raw["mrr10"], raw["answer_rows_missing"]
        self.recall = {int(k): v for k, v in raw["recall"].items()}


@pytest.fixture(scope="module")
def vinewsqa_results(model_path, tmp_path_factory):
    """The slice through the script with the stand-in model (torch, as the session's `embedder`)."""
    out = tmp_path_factory.mktemp("bench-out")
    bench("--dataset", "vinewsqa", "--limit", str(SLICE), "--model", model_path, "--backend", "torch", "--quiet",
          "--cache-dir", str(out / "cache"), "--data-dir", str(DATA), "--json", str(out / "results.json"))
    runs = json.loads((out / "results.json").read_text(encoding="utf-8"))["runs"]
    return show_set("vinewsqa", DATA, SLICE), {(r["questions"], r["system"]): Metrics(r["metrics"]) for r in runs}


def test_slice_loads_articles_and_both_question_forms():
    loaded = show_set("vinewsqa", DATA, SLICE)
    assert len(loaded["articles"]) == SLICE
    accented, plain = loaded["runs"]["vi"], loaded["runs"]["vi, no diacritics"]
    assert len(accented) == len(plain) > SLICE
    assert all(a["qid"] == p["qid"] and a["answers"] == p["answers"] for a, p in zip(accented, plain))
    assert not any(has_diacritics(q["text"]) for q in plain) and any(has_diacritics(q["text"]) for q in accented)


@pytest.mark.slow
def test_every_answer_is_placed_in_a_passage(vinewsqa_results):
    loaded, results = vinewsqa_results
    assert len(results) == 2 * 6  # both question forms, every system
    for metrics in results.values():
        assert metrics.answer_rows_missing == 0
        assert metrics.n == len(loaded["runs"]["vi"])


@pytest.mark.slow
def test_metrics_are_sane(vinewsqa_results):
    _, results = vinewsqa_results
    for m in results.values():
        assert 0 <= m.recall[1] <= m.recall[5] <= m.recall[10] <= 1
        assert m.recall[1] <= m.mrr10 <= m.recall[10]
    lexical = results[("vi", "lexical (BM25)")]
    hybrid = results[("vi", "hybrid weighted")]
    dense = results[("vi", "dense")]
    # Floors far below what the full set measures (lexical R@10 ~0.91), so a slice can't flake.
    assert lexical.recall[10] >= 0.75
    assert hybrid.recall[10] >= 0.75
    assert dense.recall[10] > 0.05  # the English-only stand-in still finds something
    # Vietnamese questions lean on BM25: fusion must not drown it (the naive average does).
    assert hybrid.mrr10 >= lexical.mrr10 - 0.05
    assert hybrid.mrr10 >= results[("vi", "weighted, equal weights")].mrr10


@pytest.mark.slow
def test_questions_without_diacritics_stay_close(vinewsqa_results):
    _, results = vinewsqa_results
    accented = results[("vi", "hybrid weighted")]
    plain = results[("vi, no diacritics", "hybrid weighted")]
    assert plain.recall[10] >= accented.recall[10] - 0.1


def test_answer_offsets_follow_the_cleaned_text(tmp_path):
    raw = "  Một   câu. Câu hai có đáp án ở đây."
    at = raw.index("đáp án")
    answers = [("exact", at, "đáp án"), ("off", at - 3, "đáp án"), ("absent", 0, "không có")]
    paragraph = {"context": raw, "qas": [{"id": qid, "question": f"Câu hỏi {qid}?", "answers": [{"answer_start": start, "text": text}]}
                                         for qid, start, text in answers]}
    (tmp_path / "vinewsqa_dev.json").write_text(json.dumps({"data": [{"title": "Tin", "paragraphs": [paragraph]}]}), encoding="utf-8")
    located = {q["qid"]: q["answers"][0]["start"] for q in show_set("vinewsqa", tmp_path, 1)["runs"]["vi"]}
    assert located["exact"] == at
    # A labelled offset a few characters off still finds the answer text nearest to it.
    assert located["off"] == at
    assert located["absent"] == -1


@pytest.mark.slow
def test_command_line_prints_the_table(tmp_path):
    out = tmp_path / "results.json"
    printed = bench("--dataset", "xquad", "--limit", "10", "--no-dense", "--quiet",
                    "--cache-dir", str(tmp_path / "cache"), "--data-dir", str(DATA), "--json", str(out)).stdout
    assert HEADER in printed
    assert "| XQuAD | vi |" in printed and "| XQuAD | en |" in printed
    data = json.loads(out.read_text(encoding="utf-8"))
    assert {r["questions"] for r in data["runs"]} == {"vi", "en"}
    assert all(r["system"] == "lexical (BM25)" for r in data["runs"])
