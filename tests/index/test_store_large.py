"""Loading large builds: lazy rows, memory-mapped files, sampled checksums with a full check later.

The thresholds are lowered so the two seed articles count as a "large" build; what is checked is
that a lazily opened build reads exactly what an eager one does, and that damage is still found.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

from newsqa.index import format as index_format
from newsqa.index import loader
from newsqa.index.build import build_index
from newsqa.index.format import DENSE, Checksums, IndexCorrupt, resolve_build
from newsqa.index.loader import load_build, open_index
from newsqa.index.options import BuildOptions, LoadOptions
from newsqa.index.tables import JsonlRows
from tests.conftest import SEEDS

# dense.faiss and others are "large": sampled at build time, checked by their samples at load.
SMALL_CHECKSUMS = Checksums(full_check_bytes=4096, sample_blocks=4, sample_block_bytes=256)
LARGE = LoadOptions(checksums=SMALL_CHECKSUMS, lazy_rows=0, mmap_bytes=0)
UNCHECKED = replace(LARGE, verify=False)


@pytest.fixture
def large_build(tmp_path, embedder) -> Path:
    root = tmp_path / "index"
    build_index(SEEDS, root, embedder, options=BuildOptions(checksums=SMALL_CHECKSUMS))
    return root


def test_lazy_load_reads_what_an_eager_load_reads(large_build, seed_index):
    lazy = open_index(large_build, LARGE)
    eager = open_index(seed_index)
    assert isinstance(lazy.passages, JsonlRows)
    assert len(lazy.passages) == len(eager.passages)
    assert list(lazy.passages) == list(eager.passages)
    assert lazy.passages[-1] == eager.passages[-1] and lazy.passages[1:3] == eager.passages[1:3]
    assert dict(lazy.articles) == dict(eager.articles)
    first = eager.passages[0]
    assert lazy.passage_rows[first.passage_id] == 0 and len(lazy.passage_rows) == len(eager.passages)
    assert lazy.integrity.wait(30) and lazy.integrity.error is None
    with pytest.raises(IndexError):
        lazy.passages[len(lazy.passages)]


def test_passages_of_an_article_come_from_its_rows(large_build, seed_index):
    for index in (open_index(large_build, LARGE), open_index(seed_index)):
        assert index.article_rows is not None
        for article_id in index.articles:
            assert index.passages_of(article_id) == [p for p in index.passages if p.article_id == article_id]
        assert index.passages_of("no-such-article") == []


def test_large_files_carry_a_sampled_digest(large_build):
    manifest = open_index(large_build, LARGE).manifest
    assert "sample_sha256" in manifest["files"]["dense.faiss"]
    assert "rows.npz" in manifest["files"]


def test_service_answers_the_same_from_a_lazy_build(large_build, seed_index, service_factory):
    question = "Nga yêu cầu NATO những gì?"
    lazy = service_factory(large_build, load=LARGE).ask(question)
    eager = service_factory(seed_index).ask(question)
    assert lazy.answer == eager.answer and lazy.citations == eager.citations


def test_truncated_large_file_is_refused_at_load(large_build):
    path = resolve_build(large_build) / "dense.faiss"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1])
    with pytest.raises(IndexCorrupt, match="newsqa index build"):
        open_index(large_build, LARGE)


def test_damage_in_a_sampled_block_is_refused_at_load(large_build):
    path = resolve_build(large_build) / "dense.faiss"
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01  # inside the first sampled block
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt, match="checksum"):
        open_index(large_build, LARGE)


def test_damage_between_sampled_blocks_is_found_by_the_full_check(large_build):
    folder = resolve_build(large_build)
    path = folder / "dense.faiss"
    size = path.stat().st_size
    block = SMALL_CHECKSUMS.sample_block_bytes
    sampled = [range(o, o + block) for o in index_format.sample_offsets(size, SMALL_CHECKSUMS)]
    spot = next(i for i in range(size // 3, size) if not any(i in r for r in sampled))
    data = bytearray(path.read_bytes())
    data[spot] ^= 0x01
    path.write_bytes(bytes(data))
    loaded = load_build(folder, LARGE)  # the sampled check passes ...
    assert loaded.integrity.wait(30)
    assert loaded.integrity.error and "dense.faiss" in loaded.integrity.error  # ... the full one does not
    with pytest.raises(IndexCorrupt, match="checksum"):
        load_build(folder, LARGE, full_verify=True)


def test_rows_file_that_disagrees_with_the_passages_is_refused(large_build):
    import numpy as np

    folder = resolve_build(large_build)
    with np.load(folder / "rows.npz") as data:
        rows = {k: data[k] for k in data.files}
    rows["passage_offsets"] = rows["passage_offsets"][:-1]
    np.savez(folder / "rows.npz", **rows)
    with pytest.raises(IndexCorrupt):
        load_build(folder, UNCHECKED)


@pytest.fixture
def background_reads(monkeypatch) -> list[Path]:
    """The files load_build reads through in the background to cache them (the real read runs too)."""
    seen: list[Path] = []
    real = loader.read_in_background

    def recording(path: Path):
        seen.append(Path(path))
        return real(path)

    monkeypatch.setattr(loader, "read_in_background", recording)
    return seen


@pytest.fixture
def full_checks(monkeypatch) -> list[tuple[Path, str]]:
    """The folders and files hashed in full, in order (the real check runs too)."""
    seen: list[tuple[Path, str]] = []
    real = loader.check_file

    def recording(folder, name, meta, full, checksums):
        if full:
            seen.append((Path(folder), name))
        return real(folder, name, meta, full, checksums)

    monkeypatch.setattr(loader, "check_file", recording)
    return seen


def test_the_background_check_reads_the_vector_index_first(large_build, full_checks, background_reads):
    for thread in threading.enumerate():  # the build's own check of what it wrote, and earlier tests'
        if thread.name == "newsqa-verify":
            thread.join(30)
    full_checks.clear()
    loaded = open_index(large_build, LARGE)
    assert loaded.dense_mapped and DENSE in loaded.integrity.pending
    assert loaded.integrity.wait(30) and loaded.integrity.error is None
    assert [name for _, name in full_checks] == [DENSE, *(n for n in loaded.integrity.pending if n != DENSE)]
    assert background_reads == []  # the check reads it through already


def test_without_checksums_a_mapped_vector_index_is_read_into_the_page_cache(large_build, background_reads):
    loaded = load_build(resolve_build(large_build), UNCHECKED)
    assert loaded.dense_mapped and not loaded.integrity.pending
    assert background_reads == [loaded.folder / DENSE]


def test_an_index_read_into_memory_needs_no_background_read(large_build, background_reads):
    loaded = load_build(resolve_build(large_build), replace(UNCHECKED, mmap_bytes=1 << 40))
    assert not loaded.dense_mapped and background_reads == []
