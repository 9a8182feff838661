"""The retrieval benchmark on a small slice of the shared public sets: it runs end to end through
the product's build and searcher and its numbers are sane. Full runs: docs/quality.md."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench import retrieval_bench as rb
from newsqa.index.text import has_diacritics

DATA = Path(os.environ.get("NEWSQA_BENCHDATA", rb.DEFAULT_DATA_DIR))
pytestmark = pytest.mark.skipif(
    not (DATA / "vinewsqa_dev.json").is_file() or not (DATA / "xquad.vi.json").is_file(),
    reason=f"benchmark data not found in {DATA} (set NEWSQA_BENCHDATA)",
)
SLICE = 20


@pytest.fixture(scope="module")
def vinewsqa_results(embedder, tmp_path_factory):
    bench = rb.load_set("vinewsqa", DATA, SLICE)
    cache = tmp_path_factory.mktemp("bench-cache")
    results = rb.run_set(bench, embedder, cache, rb.DEFAULT_MAX_WORDS, rb.DEFAULT_MIN_WORDS, rb.FusionConfig())
    return bench, {(r.questions, r.system): r.metrics for r in results}


def test_slice_loads_articles_and_both_question_forms():
    bench = rb.load_set("vinewsqa", DATA, SLICE)
    assert len(bench.articles) == SLICE
    accented, plain = bench.runs["vi"], bench.runs["vi, no diacritics"]
    assert len(accented) == len(plain) > SLICE
    assert all(a.qid == p.qid and a.answers == p.answers for a, p in zip(accented, plain))
    assert not any(has_diacritics(q.text) for q in plain) and any(has_diacritics(q.text) for q in accented)


def test_every_answer_is_placed_in_a_passage(vinewsqa_results):
    bench, results = vinewsqa_results
    for metrics in results.values():
        assert metrics.answer_rows_missing == 0
        assert metrics.n == len(bench.runs["vi"])


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


def test_questions_without_diacritics_stay_close(vinewsqa_results):
    _, results = vinewsqa_results
    accented = results[("vi", "hybrid weighted")]
    plain = results[("vi, no diacritics", "hybrid weighted")]
    assert plain.recall[10] >= accented.recall[10] - 0.1


def test_answer_offsets_follow_the_cleaned_text():
    raw = "  Một   câu. Câu hai có đáp án ở đây."
    assert rb.locate(raw, raw.index("đáp án"), "đáp án") == raw.index("đáp án")
    # A labelled offset a few characters off still finds the answer text nearest to it.
    assert rb.locate(raw, raw.index("đáp án") - 3, "đáp án") == raw.index("đáp án")
    assert rb.locate(raw, 0, "không có") == -1


def test_command_line_prints_the_table(tmp_path, capsys):
    out = tmp_path / "results.json"
    rb.main(["--dataset", "xquad", "--limit", "10", "--no-dense", "--quiet",
             "--cache-dir", str(tmp_path / "cache"), "--data-dir", str(DATA), "--json", str(out)])
    printed = capsys.readouterr().out
    assert rb.HEADER.splitlines()[0] in printed
    assert "| XQuAD | vi |" in printed and "| XQuAD | en |" in printed
    data = json.loads(out.read_text(encoding="utf-8"))
    assert {r["questions"] for r in data["runs"]} == {"vi", "en"}
    assert all(r["system"] == "lexical (BM25)" for r in data["runs"])
