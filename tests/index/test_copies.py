"""Identical vectors indexed once, searched as if every passage row were there."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsqa.index import loader, writer
from newsqa.index.copies import COPIES, Copies, CopiesExpanded


def unit(rng: np.random.Generator, n: int, dim: int = 16) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def with_copies(rng: np.random.Generator, distinct: int, total: int, dim: int = 16) -> np.ndarray:
    """`total` rows drawn (with repeats) from `distinct` vectors, in random order."""
    base = unit(rng, distinct, dim)
    picks = np.concatenate([np.arange(distinct), rng.integers(0, distinct, total - distinct)])
    return base[rng.permutation(picks)]


def exact(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    return faiss.knn(queries, vectors, k, faiss.METRIC_INNER_PRODUCT)


def test_groups_hold_every_row_once_ascending_and_numbered_by_first_row():
    v = np.array([[1, 0], [0, 1], [1, 0], [0.5, 0.5], [0, 1], [1, 0]], dtype=np.float32)
    copies = Copies.find(v)
    assert copies is not None and copies.groups == 3
    groups = [copies.rows[a:b].tolist() for a, b in zip(copies.starts, copies.starts[1:])]
    assert groups == [[0, 2, 5], [1, 4], [3]]
    assert copies.first_rows.tolist() == [0, 1, 3]
    assert copies.group_of_rows().tolist() == [0, 1, 0, 2, 1, 0]


def test_all_distinct_or_tiny_needs_no_copies_file():
    rng = np.random.default_rng(0)
    assert Copies.find(unit(rng, 50)) is None
    assert Copies.find(unit(rng, 1)) is None
    assert Copies.find(np.zeros((0, 4), np.float32)) is None


def test_one_bit_apart_is_not_a_copy():
    v = unit(np.random.default_rng(1), 2)
    v[1] = v[0]
    v[1, 3] = np.nextafter(v[1, 3], np.float32(2))
    assert Copies.find(v) is None


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(0, 60), st.integers(1, 30), st.integers(0, 2**32 - 1))
def test_expanded_search_finds_what_exact_search_over_every_row_finds(distinct, extra, k, seed):
    rng = np.random.default_rng(seed)
    vectors = with_copies(rng, distinct, distinct + extra)
    queries = unit(rng, 5)
    k = min(k, len(vectors))
    copies = Copies.find(vectors)
    if copies is None:
        return
    inner = faiss.IndexFlatIP(vectors.shape[1])
    inner.add(np.ascontiguousarray(vectors[copies.first_rows]))
    scores, rows = CopiesExpanded(inner, copies).search(queries, k)
    want_scores, want_rows = exact(vectors, queries, k)
    assert rows.shape == (5, k) and (rows >= 0).all()
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    for q in range(5):
        assert len(set(rows[q].tolist())) == k  # no row twice
        np.testing.assert_allclose(vectors[rows[q]] @ queries[q], scores[q], atol=1e-5)
        # Same rows, except where the k-th score is shared by more rows than fit.
        sure = want_scores[q] > want_scores[q, -1] + 1e-5
        assert set(want_rows[q][sure].tolist()) <= set(rows[q].tolist())


def test_asking_for_more_rows_than_there_are_pads_with_minus_one():
    vectors = with_copies(np.random.default_rng(2), 3, 5)
    copies = Copies.find(vectors)
    inner = faiss.IndexFlatIP(vectors.shape[1])
    inner.add(np.ascontiguousarray(vectors[copies.first_rows]))
    scores, rows = CopiesExpanded(inner, copies).search(vectors[:1], 8)
    assert sorted(rows[0][:5].tolist()) == [0, 1, 2, 3, 4] and rows[0][5:].tolist() == [-1, -1, -1]
    assert np.isneginf(scores[0][5:]).all()


def test_a_build_with_copies_stores_each_vector_once_and_searches_every_row(tmp_path):
    rng = np.random.default_rng(3)
    vectors = with_copies(rng, 30, 80, dim=8)
    from newsqa.index.lexical import LexicalIndex
    from newsqa.index.models import Article, Passage

    articles = [Article(article_id="a", title="t", text="x", source="s", paragraph_spans=((0, 1),))]
    passages = [Passage(passage_id=f"a:{i}", article_id="a", title="t", paragraph=0, start=0, end=1, text="x")
                for i in range(len(vectors))]
    folder = tmp_path / "build"
    lexical = LexicalIndex.build(["t\nx"] * len(vectors))
    writer.write_build_folder(folder, writer.BuildContents(articles, passages, vectors, lexical, {}))
    loaded = loader.load_build(folder)
    assert loaded.manifest["dense_index"]["distinct_vectors"] == 30
    assert (folder / COPIES).is_file() and loaded.dense.ntotal == 80 and loaded.dense.index.ntotal == 30
    scores, rows = loaded.dense.search(vectors[:4], 80)
    assert all(sorted(r.tolist()) == list(range(80)) for r in rows)


@pytest.mark.parametrize("damage", ["drop_row", "row_twice", "bad_starts", "wrong_size"])
def test_a_damaged_copies_file_is_refused(tmp_path, damage):
    vectors = with_copies(np.random.default_rng(4), 10, 25)
    copies = Copies.find(vectors)
    starts, rows = copies.starts.copy(), copies.rows.copy()
    if damage == "drop_row":
        rows, starts = rows[:-1], np.minimum(starts, len(rows) - 1)
    elif damage == "row_twice":
        rows[1] = rows[0]
    elif damage == "bad_starts":
        starts[1] = starts[2]
    path = tmp_path / COPIES
    Copies(starts, rows).save(path)
    inner = faiss.IndexFlatIP(vectors.shape[1])
    inner.add(np.ascontiguousarray(vectors[copies.first_rows][: 9 if damage == "wrong_size" else 10]))
    with pytest.raises(ValueError):
        CopiesExpanded(inner, Copies.load(path))
