"""A memory-mapped vector index copied into private memory while it serves (index/scale/dense_memory.py).

Real FAISS files on disk, read memory-mapped and then copied; `LoadOptions.mmap_bytes` is lowered so
small test indexes count as large. What is checked: the copy answers exactly as the map did, it is swapped in
only when complete, and a failed copy leaves the map serving.
"""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import faiss
import numpy as np
import pytest
from pydantic import ValidationError

from newsqa.index import ann, loader
from newsqa.index.copies import COPIES, Copies, CopiesExpanded
from newsqa.index.format import DENSE
from newsqa.index.options import LoadOptions
from newsqa.index.scale import dense_memory
from newsqa.index.scale.dense_memory import MMAP, PRIVATE, PrivateCopy, SwappableDense
from tests.index.test_copies import unit, with_copies


MAPPED = LoadOptions(mmap_bytes=0)  # every vector index counts as large
PRIVATE_COPY = LoadOptions(mmap_bytes=0, dense_memory=PRIVATE)


def write_index(folder: Path, vectors: np.ndarray, kind: str) -> dict:
    index = ann.make_dense_index(vectors, kind=kind)
    faiss.write_index(index, str(folder / DENSE))
    return {"dense_index": ann.dense_index_info(index)}


def unpack(read: loader.DenseRead) -> tuple:
    return read.index, read.copy


def searched(index, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    return index.search(np.ascontiguousarray(queries), k)


@pytest.mark.parametrize("kind", [ann.FLAT, ann.HNSW, ann.HNSW_FP16])
def test_the_private_copy_answers_as_the_memory_mapped_index_did(kind, tmp_path):
    rng = np.random.default_rng(1)
    vectors, queries = unit(rng, 3000, 32), unit(rng, 40, 32)
    manifest = write_index(tmp_path, vectors, kind)
    holder, copy = unpack(loader.read_dense(tmp_path, manifest, PRIVATE_COPY))
    assert isinstance(holder, SwappableDense) and copy is not None
    mapped = holder.index
    before = searched(holder, queries)
    assert not copy.wait(0.2) and holder.index is mapped  # started by load_build, not here
    assert copy.start().wait(30) and copy.error is None and copy.memory == PRIVATE
    assert holder.index is not mapped and holder.ntotal == len(vectors)
    after = searched(holder, queries)
    np.testing.assert_array_equal(before[1], after[1])
    np.testing.assert_array_equal(before[0], after[0])
    if kind != ann.FLAT:  # the search parameters the file does not store came along
        assert holder.index.hnsw.efSearch == manifest["dense_index"]["ef_search"] == mapped.hnsw.efSearch


def test_an_index_over_distinct_vectors_swaps_inside_its_copies(tmp_path):
    rng = np.random.default_rng(2)
    vectors, queries = with_copies(rng, 2000, 2600, 32), unit(rng, 30, 32)
    copies = Copies.find(vectors)
    assert copies is not None
    copies.save(tmp_path / COPIES)
    manifest = write_index(tmp_path, vectors[copies.first_rows], ann.HNSW)
    holder, copy = unpack(loader.read_dense(tmp_path, manifest, PRIVATE_COPY))
    assert isinstance(holder, CopiesExpanded) and copy is not None
    before = searched(holder, queries)
    assert copy.start().wait(30) and copy.memory == PRIVATE
    after = searched(holder, queries)
    assert holder.ntotal == len(vectors)
    np.testing.assert_array_equal(before[1], after[1])


def test_a_failed_copy_leaves_the_memory_mapped_index_serving(tmp_path, monkeypatch, caplog):
    def unreadable(path: Path):
        raise OSError("Input/output error")

    monkeypatch.setattr(dense_memory, "read_private", unreadable)
    rng = np.random.default_rng(3)
    vectors, queries = unit(rng, 500, 16), unit(rng, 5, 16)
    holder, copy = unpack(loader.read_dense(tmp_path, write_index(tmp_path, vectors, ann.FLAT), PRIVATE_COPY))
    mapped = holder.index
    assert copy.start().wait(30)
    assert copy.memory == MMAP and copy.error == "OSError: Input/output error"
    assert holder.index is mapped
    np.testing.assert_array_equal(searched(holder, queries)[1], faiss.knn(queries, vectors, 10, faiss.METRIC_INNER_PRODUCT)[1])
    assert "stays memory-mapped" in caplog.text


def test_a_copy_of_a_file_that_changed_size_is_refused(tmp_path):
    rng = np.random.default_rng(4)
    vectors = unit(rng, 800, 16)
    holder, _ = unpack(loader.read_dense(tmp_path, write_index(tmp_path, vectors, ann.FLAT), PRIVATE_COPY))
    # Another index in the same file: the copy must not swap in a different size.
    faiss.write_index(ann.make_dense_index(vectors[:400], kind=ann.FLAT), str(tmp_path / DENSE))
    again = PrivateCopy(tmp_path / DENSE, holder, lambda index: None).start()
    assert again.wait(30) and again.memory == MMAP and "disagree in size" in (again.error or "")
    assert holder.ntotal == 800 and holder.index.ntotal == 800


def test_a_copy_whose_index_was_dropped_is_abandoned(tmp_path):
    rng = np.random.default_rng(5)
    faiss.write_index(ann.make_dense_index(unit(rng, 100, 16), kind=ann.FLAT), str(tmp_path / DENSE))
    holder = SwappableDense(faiss.read_index(str(tmp_path / DENSE)))
    copy = PrivateCopy(tmp_path / DENSE, holder, lambda index: None)
    del holder
    gc.collect()
    assert copy.start().wait(30) and copy.memory == MMAP and copy.error is None


def test_mmap_mode_and_small_indexes_start_no_copy(tmp_path):
    rng = np.random.default_rng(6)
    manifest = write_index(tmp_path, unit(rng, 200, 16), ann.FLAT)
    # Below mmap_bytes: read into memory already.
    dense, copy = unpack(loader.read_dense(tmp_path, manifest, LoadOptions(dense_memory=PRIVATE)))
    assert copy is None and isinstance(dense, faiss.Index)
    dense, copy = unpack(loader.read_dense(tmp_path, manifest, MAPPED))
    assert copy is None and isinstance(dense, faiss.Index)


def test_a_service_answers_the_same_from_the_copy(tmp_path, embedder, service_factory):
    from newsqa.index.build import build_index
    from tests.conftest import SEEDS

    root = tmp_path / "index"
    build_index(SEEDS, root, embedder)
    question = "What did Russia demand from NATO?"
    mapped = service_factory(root, load=MAPPED).ask(question)
    service = service_factory(root, load=PRIVATE_COPY)
    service.ask("Nga yêu cầu NATO những gì?")  # loads the index and starts the copy
    copy = service._snapshot.searcher.index.dense_copy
    assert copy is not None and copy.wait(30) and copy.memory == PRIVATE
    assert service.dense_memory == PRIVATE
    copied = service.ask(question)
    assert copied.answer == mapped.answer and copied.citations == mapped.citations


def test_a_build_says_where_its_vectors_are_searched(monkeypatch, tmp_path, embedder):
    from newsqa.index.build import build_index
    from tests.conftest import SEEDS

    root = tmp_path / "index"
    build_index(SEEDS, root, embedder)
    # below mmap_bytes: read in whole
    assert loader.open_index(root, LoadOptions(dense_memory=PRIVATE)).dense_memory == "memory"
    assert loader.open_index(root, MAPPED).dense_memory == MMAP
    gate = threading.Event()
    real = dense_memory.read_private
    monkeypatch.setattr(dense_memory, "read_private", lambda path: (gate.wait(30), real(path))[1])
    loaded = loader.open_index(root, PRIVATE_COPY)
    assert loaded.dense_memory == "copying"
    gate.set()
    assert loaded.dense_copy is not None and loaded.dense_copy.wait(30)
    assert loaded.dense_memory == PRIVATE


@pytest.mark.parametrize(
    ("text", "mode", "available"),
    [("always [madvise] never", "madvise", True), ("[always] madvise never", "always", True), ("always madvise [never]", "never", False)],
)
def test_huge_pages_are_read_from_the_kernel_setting(text, mode, available, tmp_path):
    enabled = tmp_path / "enabled"
    enabled.write_text(text + "\n")
    assert dense_memory.selected_thp_mode(text) == mode
    assert dense_memory.hugepages_available(enabled) is available


def test_no_thp_file_means_no_huge_pages(tmp_path):
    assert dense_memory.hugepages_available(tmp_path / "absent") is False


@pytest.mark.parametrize(
    ("setting", "serving", "workers", "hugepages", "mode"),
    [
        ("auto", True, 1, True, PRIVATE),
        ("auto", True, 4, True, MMAP),  # processes share one mapped copy
        ("auto", False, 1, True, MMAP),  # a one-off question would not repay the copy
        ("auto", True, 1, False, MMAP),
        ("private", False, 4, False, PRIVATE),
        ("mmap", True, 1, True, MMAP),
    ],
)
def test_auto_copies_only_for_a_one_process_server_with_huge_pages(setting, serving, workers, hugepages, mode):
    assert dense_memory.resolve_mode(setting, serving, workers, hugepages) == mode


def test_the_setting_reaches_the_load_options():
    from newsqa.bot.settings import Settings

    assert Settings(dense_memory="private").load_options(serving=False).dense_memory == PRIVATE
    assert Settings(dense_memory="auto").load_options(serving=False).dense_memory == MMAP
    with pytest.raises(ValidationError):
        Settings(dense_memory="swap")
    with pytest.raises(ValueError, match="dense memory must be"):
        LoadOptions(dense_memory="auto")  # resolved by the front end before it gets here


def test_a_sharded_build_searches_each_shard_from_its_copy(one_and_four, embedder, mixed_questions):
    from newsqa.retrieval.search import HybridSearcher

    one, four = (loader.open_index(p, PRIVATE_COPY) for p in one_and_four)
    copies = [shard.dense_copy for shard in four.shards]
    assert len(copies) == 4 and all(c is not None and c.wait(30) for c in copies)
    assert four.dense_memory == PRIVATE
    a, b = HybridSearcher(one, embedder), HybridSearcher(four, embedder)
    for question in mixed_questions[:10]:
        assert [h.row for h in a.search(question, 10)] == [h.row for h in b.search(question, 10)]
