"""Sharded builds: the same ranking as one index, one top-level manifest, damaged shards refused."""

from __future__ import annotations

import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from newsqa.index.build import build_index
from newsqa.index.format import IndexCorrupt, resolve_build
from newsqa.index.lexical import FIELDS, LexicalIndex, Vocabularies
from newsqa.index.loader import load_build, open_index
from newsqa.index.options import BuildOptions, LoadOptions
from newsqa.index.pools import LazyPool
from newsqa.index.scale.shard_writer import plan_shards
from newsqa.index.scale.shards import ShardedDense, ShardedLexical, fan_out
from newsqa.retrieval.query import analyse
from newsqa.retrieval.search import HybridSearcher

# one_and_four (the generated corpus as one index and as four shards) is in tests/index/conftest.py.


@pytest.mark.parametrize("threads", [1, 2], ids=["shards one after another", "shards side by side"])
def test_sharded_search_ranks_exactly_as_one_index(one_and_four, embedder, mixed_questions, threads):
    one, four = (open_index(p, LoadOptions(shard_search_threads=threads)) for p in one_and_four)
    assert len(four.shards) == 4 and not one.shards
    assert [p.passage_id for p in four.passages] == [p.passage_id for p in one.passages]
    assert list(four.articles) == list(one.articles)
    a, b = HybridSearcher(one, embedder), HybridSearcher(four, embedder)
    for question in mixed_questions:
        analysis = analyse(question)
        np.testing.assert_array_equal(a.lexical_scores(analysis.lexical)[1], b.lexical_scores(analysis.lexical)[1])
        hits_one, hits_four = a.search(question, 10, analysis), b.search(question, 10, analysis)
        assert [(h.row, round(h.score, 6)) for h in hits_one] == [(h.row, round(h.score, 6)) for h in hits_four]
        assert len(hits_one) == 10
        for token in analysis.lexical.tokens:
            assert one.lexical.idf_of(analysis.lexical.field, [token]) == pytest.approx(
                four.lexical.idf_of(analysis.lexical.field, [token])
            )


class _MeetingShard:
    """A shard whose searches wait until `barrier.parties` of them run at once."""

    def __init__(self, barrier: threading.Barrier, offset: float) -> None:
        self.barrier, self.offset, self.ntotal = barrier, offset, 3
        self.threads: list[str] = []

    def _meet(self) -> None:
        self.threads.append(threading.current_thread().name)
        self.barrier.wait(timeout=10)  # one after another, the first shard would wait alone: BrokenBarrierError

    def search(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        self._meet()
        scores = np.array([[0.9, 0.5, 0.1]]) - self.offset
        return scores[:, :n].astype(np.float32), np.array([[0, 1, 2]])[:, :n]

    def scores(self, query) -> np.ndarray:
        self._meet()
        return np.full(self.ntotal, self.offset)

    def article_scores(self, query) -> np.ndarray:
        return self.scores(query)


def test_a_questions_shards_are_searched_side_by_side():
    barrier = threading.Barrier(2)
    parts = [_MeetingShard(barrier, 0.0), _MeetingShard(barrier, 0.05)]
    pool = LazyPool("newsqa-shard-search", 1)
    dense = ShardedDense(parts, [0, 3], pool)
    scores, rows = dense.search(np.zeros((1, 4), np.float32), 4)
    # Merged by score across the shards, with the second shard's rows offset by its start.
    np.testing.assert_array_equal(rows, [[0, 3, 1, 4]])
    np.testing.assert_allclose(scores, [[0.9, 0.85, 0.5, 0.45]], rtol=1e-6)
    lexical = ShardedLexical.__new__(ShardedLexical)  # its IDF tables are not what is tested here
    lexical._parts, lexical._pool = parts, pool
    np.testing.assert_array_equal(lexical.scores(None), [0, 0, 0, 0.05, 0.05, 0.05])
    np.testing.assert_array_equal(lexical.article_scores(None), [0, 0, 0, 0.05, 0.05, 0.05])
    assert parts[0].threads[0] == threading.current_thread().name  # the caller searches one shard itself
    assert all(name.startswith("newsqa-shard-search") for name in parts[1].threads)


def test_fan_out_keeps_order_and_raises_the_first_shards_error():
    pool = LazyPool("newsqa-shard-search", 1)
    assert fan_out(pool, lambda x: x * x, list(range(7))) == [x * x for x in range(7)]
    assert fan_out(pool, lambda x: x, []) == []

    def fail_on(bad: int):
        def work(x: int) -> int:
            if x == bad:
                raise ValueError(f"shard {x}")
            return x

        return work

    for bad in (0, 3):  # the one this thread searches, and one a pool thread searches
        with pytest.raises(ValueError, match=f"shard {bad}"):
            fan_out(pool, fail_on(bad), list(range(5)))
    seen: list[str] = []
    fan_out(None, lambda x: seen.append(threading.current_thread().name), [1, 2, 3])
    assert seen == [threading.current_thread().name] * 3  # one thread: nothing handed off
    pool.close()  # the index that owned it was replaced: the caller does every part
    seen.clear()
    assert fan_out(pool, lambda x: seen.append(threading.current_thread().name) or x, [1, 2, 3]) == [1, 2, 3]
    assert seen == [threading.current_thread().name] * 3


def test_sharded_service_answers_like_one_index(one_and_four, service_factory, mixed_questions):
    one, four = (service_factory(p) for p in one_and_four)
    for service in (one, four):
        service.warm_up()
    for question in mixed_questions:
        x, y = one.ask(question, top_k=5), four.ask(question, top_k=5)
        assert x.answer == y.answer and x.found == y.found
        assert [c.passage_id for c in x.citations] == [c.passage_id for c in y.citations]
    article = next(iter(open_index(one_and_four[1]).articles))
    assert [p.passage_id for p in four.view().passages_of(article)] == [p.passage_id for p in one.view().passages_of(article)]


def test_sharded_article_rows_are_the_rows_of_one_index(one_and_four):
    one, four = (open_index(p) for p in one_and_four)
    assert one.article_rows is not None and four.article_rows is not None
    assert len(four.article_rows) == len(one.article_rows) == len(one.articles)
    assert dict(four.article_rows) == dict(one.article_rows)
    assert four.article_rows.get("no such article") is None
    assert "no such article" not in four.article_rows


def test_the_shards_share_one_parsed_vocabulary(one_and_four):
    four = open_index(one_and_four[1])
    for name in FIELDS:
        vocabularies = [shard.lexical._fields[name].retriever.vocab_dict for shard in four.shards]
        assert all(v is vocabularies[0] for v in vocabularies)  # one dict, not one per shard
        alone = LexicalIndex.load(four.shards[2].folder / "lexical")._fields[name].retriever
        assert vocabularies[0] == alone.vocab_dict
        assert four.shards[2].lexical._fields[name].retriever.unique_token_ids_set == alone.unique_token_ids_set


def test_vocabularies_parse_each_distinct_file_once(tmp_path, monkeypatch):
    import bm25s

    parses = []
    real = bm25s.utils.json_functions.loads
    monkeypatch.setattr(bm25s.utils.json_functions, "loads", lambda raw: parses.append(1) or real(raw))
    for name, text in (("a", '{"nga": 0, "nato": 1}'), ("b", '{"nga": 0, "nato": 1}'), ("c", '{"nga": 1}')):
        (tmp_path / name).write_text(text, encoding="utf-8")
    shared = Vocabularies()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(shared.read, [tmp_path / n for n in "ab" * 8]))
    assert len(parses) == 1 and all(r[0] is results[0][0] for r in results)
    assert results[0] == ({"nga": 0, "nato": 1}, {0, 1})
    assert shared.read(tmp_path / "c") == ({"nga": 1}, {1}) and len(parses) == 2
    (tmp_path / "bad").write_text("{not json", encoding="utf-8")
    for _ in range(2):  # a broken file fails every load that asks for it; none waits forever
        with pytest.raises(ValueError):
            shared.read(tmp_path / "bad")


def test_the_first_damaged_shard_in_list_order_is_named(one_and_four, tmp_path):
    root = tmp_path / "idx"
    shutil.copytree(one_and_four[1], root, symlinks=True)
    folder = resolve_build(root)
    for shard in ("003", "001"):  # shards load two at a time; the message must not depend on which finished first
        with open(folder / "shards" / shard / "passages.jsonl", "r+b") as fh:
            fh.truncate(fh.seek(0, 2) - 10)
    for _ in range(3):
        with pytest.raises(IndexCorrupt) as caught:
            open_index(root)
        assert "shard shards/001 is damaged" in str(caught.value)


def test_top_level_manifest_lists_the_shards(one_and_four):
    four = open_index(one_and_four[1])
    m = four.manifest
    assert [s["name"] for s in m["shards"]] == ["shards/000", "shards/001", "shards/002", "shards/003"]
    assert sum(s["passages"] for s in m["shards"]) == m["passage_count"] == len(four.passages)
    assert [s["first_row"] for s in m["shards"]] == [0] + list(np.cumsum([s["passages"] for s in m["shards"]])[:-1])
    assert set(m["files"]) == {f"shards/00{i}/{f}" for i in range(4) for f in ("manifest.json", "manifest.sha256")}
    # Each shard is a build folder of its own; an article never spans two shards.
    owners: dict[str, str] = {}
    for shard in m["shards"]:
        part = load_build(four.folder / shard["name"])
        for p in part.passages:
            assert owners.setdefault(p.article_id, shard["name"]) == shard["name"]


@pytest.mark.parametrize("damage", ["delete_shard", "flip_vector_byte", "truncate_passages", "swap_shards"])
def test_missing_or_corrupt_shard_is_refused_in_one_sentence(one_and_four, tmp_path, damage):
    root = tmp_path / "idx"
    shutil.copytree(one_and_four[1], root, symlinks=True)
    folder = resolve_build(root)
    shard = folder / "shards" / "002"
    if damage == "delete_shard":
        shutil.rmtree(shard)
    elif damage == "flip_vector_byte":
        data = bytearray((shard / "dense.faiss").read_bytes())
        data[len(data) // 2] ^= 0x01
        (shard / "dense.faiss").write_bytes(bytes(data))
    elif damage == "truncate_passages":
        with open(shard / "passages.jsonl", "r+b") as fh:
            fh.truncate(fh.seek(0, 2) - 10)
    else:  # two complete shards swapped: each is intact, but not where the manifest says
        shutil.move(shard, folder / "tmp")
        shutil.move(folder / "shards" / "001", shard)
        shutil.move(folder / "tmp", folder / "shards" / "001")
    with pytest.raises(IndexCorrupt) as caught:
        open_index(root)
    message = str(caught.value)
    assert "\n" not in message and "run `newsqa index build`" in message
    assert "shard" in message or "shards/00" in message


def test_a_corpus_that_fits_one_shard_is_a_plain_build(seed_index):
    m = open_index(seed_index).manifest
    assert "shards" not in m and m["files"]["dense.faiss"]


def test_plan_cuts_at_article_boundaries_into_balanced_shards(generated_seeds):
    from newsqa.index.build import LocalEngine

    articles, passages, _ = LocalEngine().read(generated_seeds, 2_000_000, 150, 50)
    plans = plan_shards(articles, passages, 4)
    assert len(plans) == 4
    assert plans[0].rows.start == 0 and plans[-1].rows.stop == len(passages)
    assert all(a.rows.stop == b.rows.start and a.articles.stop == b.articles.start for a, b in zip(plans, plans[1:]))
    sizes = [len(p.rows) for p in plans]
    assert max(sizes) - min(sizes) <= 2 * max(len([q for q in passages if q.article_id == a.article_id]) for a in articles)
    assert len(plan_shards(articles[:2], passages[: sum(1 for p in passages if p.article_id in {articles[0].article_id, articles[1].article_id})], 8)) == 2


# -- compressed vector indexes ------------------------------------------------------------------------


def clustered_vectors(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    """Unit vectors around a few hundred centres: structure like text embeddings have."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((200, dim)).astype(np.float32)
    x = centres[rng.integers(0, 200, n)] + 0.35 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# Training product quantisers takes seconds: `make check` leaves ivf-pq out.
@pytest.mark.parametrize("kind", ["ivf-sq8", pytest.param("ivf-pq", marks=pytest.mark.slow), "hnsw-fp16"])
def test_compressed_index_records_its_measured_recall_and_survives_a_round_trip(kind, tmp_path):
    import faiss

    from newsqa.index import ann, loader

    vectors = clustered_vectors(12_000)
    index = ann.make_dense_index(vectors, kind=kind)
    info = ann.dense_index_info(index, vectors)
    assert info["type"] == kind and info["recall_queries"] == 200
    # Measured against exact search on sampled passages: a real figure, not a constant.
    assert 0.8 <= info["recall_at_10"] <= 1.0
    faiss.write_index(index, str(tmp_path / "dense.faiss"))
    reread = loader.read_dense(tmp_path, {"dense_index": info}).index
    assert ann.dense_index_type(reread) == kind
    assert ann.measure_recall(reread, vectors) == pytest.approx(info["recall_at_10"], abs=1e-4)
    bytes_per_vector = (tmp_path / "dense.faiss").stat().st_size / len(vectors)
    # Flat float32 takes 4 bytes a dimension: the IVF kinds half that at most; HNSW-fp16 less than
    # the float32 vectors plus the graph's level-0 links that float32 HNSW would take.
    limit = vectors.shape[1] * 2 if kind != "hnsw-fp16" else vectors.shape[1] * 4 + 2 * ann.HNSW_M * 4
    assert bytes_per_vector < limit


def test_recall_of_a_poor_index_is_reported_as_poor():
    from newsqa.index import ann

    vectors = clustered_vectors(5_000)
    index = ann.make_dense_index(vectors, kind="ivf")
    index.nprobe = 1
    assert ann.measure_recall(index, vectors) < ann.measure_recall(ann.make_dense_index(vectors, kind="flat"), vectors) == 1.0


def test_index_type_follows_the_size_of_the_shard():
    from newsqa.index import ann

    assert ann.choose_index_type(19_999) == "flat"
    assert ann.choose_index_type(500_000) == "hnsw"
    assert ann.choose_index_type(BuildOptions().compress_threshold + 1) == ann.COMPRESSED_TYPE
    assert ann.choose_index_type(500, BuildOptions(hnsw_threshold=100, compress_threshold=400)) == ann.COMPRESSED_TYPE


def test_build_reports_the_recall_of_an_approximate_index(one_and_four, generated_seeds, embedder, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from newsqa.bot.cli import cli

    (tmp_path / "idx").mkdir()
    shutil.copy(one_and_four[0] / "embeddings.sqlite", tmp_path / "idx" / "embeddings.sqlite")  # vectors known
    # Thresholds below each of the two shards' sizes, so both are compressed.
    total = int(open_index(one_and_four[0]).manifest["passage_count"])
    options = BuildOptions(hnsw_threshold=total // 8, compress_threshold=total // 3)
    report = build_index(generated_seeds, tmp_path / "idx", embedder, shards=2, options=options)
    shards = open_index(tmp_path / "idx").manifest["shards"]
    assert [s["dense_index"]["type"] for s in shards] == ["ivf-sq8", "ivf-sq8"]
    assert all(0 < s["dense_index"]["recall_at_10"] <= 1 for s in shards)
    assert report.dense_index["recall_at_10"] == min(s["dense_index"]["recall_at_10"] for s in shards)
    monkeypatch.setenv("NEWSQA_INDEX_DIR", str(tmp_path / "idx"))
    out = CliRunner().invoke(cli, ["index", "info"])
    assert out.exit_code == 0, out.output
    assert "Shards:    2" in out.output and "ivf-sq8 (recall@10 " in out.output


@pytest.mark.parametrize(
    "width, small, large",
    [("hnsw_ef_search", "HNSW_EF_SEARCH", "HNSW_EF_SEARCH_MAX"),
     ("hnsw_ef_construction", "HNSW_EF_CONSTRUCTION", "HNSW_EF_CONSTRUCTION_MAX")],
)
def test_hnsw_search_and_construction_widen_as_the_graph_grows(width, small, large):
    from newsqa.index import ann

    sizes = [20_000, 100_000, 300_000, 1_000_000, 3_000_000]
    widths = [getattr(ann, width)(n) for n in sizes]
    assert widths[0] == widths[1] == getattr(ann, small) and widths[3] == widths[4] == getattr(ann, large)
    assert widths == sorted(widths) and widths[1] < widths[2] < widths[3]


def test_the_manifest_records_the_graph_as_built(tmp_path):
    from newsqa.index import ann

    vectors = clustered_vectors(BuildOptions().hnsw_threshold + 10)
    info = ann.dense_index_info(ann.make_dense_index(vectors, kind="hnsw"))
    assert (info["m"], info["ef_construction"], info["ef_search"]) == (
        ann.HNSW_M, ann.HNSW_EF_CONSTRUCTION, ann.HNSW_EF_SEARCH)
    other = ann.make_dense_index(vectors[:500], kind="hnsw", hnsw=(16, 40))
    faiss_file = tmp_path / "dense.faiss"
    import faiss

    faiss.write_index(other, str(faiss_file))
    reread = ann.dense_index_info(faiss.read_index(str(faiss_file)))
    assert (reread["m"], reread["ef_construction"]) == (16, 40)
