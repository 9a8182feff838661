"""The vectorised BM25 build (index/bm25.py) must give what bm25s' own `index` gives, to the bit:
every token's postings (rows and float32 scores, in order), for passages and for articles."""

from __future__ import annotations

import random

import bm25s
import numpy as np
import pytest

from newsqa.index import bm25
from newsqa.index.lexical import FIELDS, LexicalIndex, _TOKENIZERS
from newsqa.retrieval.query import analyse_query

K1, B = 1.2, 0.75


def _columns(retriever: bm25s.BM25) -> dict[str, tuple[bytes, bytes]]:
    """token → (rows, scores) of its column, as raw bytes (bit-for-bit comparison)."""
    s = retriever.scores
    data, indices, indptr = np.asarray(s["data"]), np.asarray(s["indices"]), np.asarray(s["indptr"])
    out = {}
    for token, column in retriever.vocab_dict.items():
        if column < len(indptr) - 1:
            lo, hi = indptr[column], indptr[column + 1]
            out[token] = (indices[lo:hi].tobytes(), data[lo:hi].tobytes())
    return out


def _assert_same(ours: bm25s.BM25, reference: bm25s.BM25) -> None:
    assert ours.scores["num_docs"] == reference.scores["num_docs"]
    assert set(ours.vocab_dict) == set(reference.vocab_dict)
    for key in ("data", "indices", "indptr"):
        assert np.asarray(ours.scores[key]).dtype == np.asarray(reference.scores[key]).dtype, key
    mine, theirs = _columns(ours), _columns(reference)
    assert mine.keys() == theirs.keys()
    different = [t for t in theirs if mine[t] != theirs[t]]
    assert not different, different[:5]


def _reference(docs) -> bm25s.BM25:
    retriever = bm25s.BM25(k1=K1, b=B)
    retriever.index(docs, show_progress=False)
    return retriever


def test_random_documents_score_as_bm25s_scores_them():
    rng = random.Random(0)
    words = [f"w{i}" for i in range(300)]
    for trial in range(20):
        docs = [[rng.choice(words[: rng.randint(1, 300)]) for _ in range(rng.randint(0, 80))] for _ in range(rng.randint(1, 60))]
        if not any(docs):
            docs[0] = ["w0"]
        _assert_same(bm25.build_retriever(docs, K1, B), _reference(docs))


@pytest.fixture(scope="module")
def seed_texts(seed_service) -> list[tuple[str, str]]:
    """(article id, passage text as indexed) of the seed build's passages."""
    return [(p.article_id, p.embedding_text()) for p in seed_service._current().index.passages]


def test_seed_passages_and_articles_score_as_bm25s_scores_them(seed_texts):
    texts = [t for _, t in seed_texts]
    groups = [g for g, _ in seed_texts]
    built = LexicalIndex.build(texts, k1=K1, b=B, groups=groups)
    numbers: dict[str, int] = {}
    rows = [numbers.setdefault(g, len(numbers)) for g in groups]
    for name in FIELDS:
        tokens = [_TOKENIZERS[name](t) for t in texts]
        _assert_same(built._fields[name].retriever, _reference(tokens))
        articles: list[list[str]] = [[] for _ in numbers]
        for row, passage_tokens in zip(rows, tokens):
            articles[row].extend(passage_tokens)
        _assert_same(built._articles[name].retriever, _reference(articles))


def test_the_scores_of_a_query_are_bm25s_get_scores(seed_texts):
    texts = [t for _, t in seed_texts]
    built = LexicalIndex.build(texts, groups=[g for g, _ in seed_texts])
    for question in ("Nga yêu cầu NATO những gì?", "nga yeu cau nato gi", "What did Russia demand?"):
        query = analyse_query(question)
        field = built._fields[query.field].retriever
        reference = _reference([_TOKENIZERS[query.field](t) for t in texts])
        expected = np.zeros(len(texts), dtype=np.float32)
        for weight, tokens in query.groups:
            known = [t for t in tokens if t in reference.vocab_dict]
            if known and weight:
                expected += weight * reference.get_scores(known)
        assert field.scores["num_docs"] == len(texts)
        assert np.array_equal(built.scores(query), expected)


def test_an_empty_corpus_builds_an_empty_index():
    empty = LexicalIndex.build([])
    assert empty.size == 0
    assert empty.scores(analyse_query("Nga yêu cầu NATO những gì?")).shape == (0,)
