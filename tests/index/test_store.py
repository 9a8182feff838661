"""The index folder: manifest, atomic swap, and clear one-sentence errors for every way it can be unusable."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from newsqa.index.build import build_index
from newsqa.index.embedding.embedder import ModelUnavailable, SentenceTransformerEmbedder
from newsqa.index.format import CURRENT, IndexCorrupt, IndexMissing, IndexUnavailable, resolve_build
from newsqa.index.loader import open_index
from newsqa.retrieval.service import ModelMismatch
from tests.conftest import REPO, SEEDS


def test_manifest_describes_the_build(seed_index, model_path):
    loaded = open_index(seed_index)
    m = loaded.manifest
    assert m["format_version"] == 1
    assert m["model"]["id"] == model_path and m["model"]["dimension"] == 384
    assert m["article_count"] == 2 and m["passage_count"] == len(loaded.passages) > 2
    assert len(m["corpus_digest"]) == 64 and m["built_at"].startswith("20")
    assert m["dense_index"]["type"] == "flat"  # a small corpus is searched exactly
    assert {"passages.jsonl", "articles.jsonl", "dense.faiss"} <= set(m["files"])
    assert loaded.dense.ntotal == len(loaded.passages)


def test_checksums_taken_while_writing_match_the_files(tmp_path):
    """The writer hashes the files it writes on the way out (index/writer.py `HashingWriter`) and
    hashes what the libraries wrote once: every entry is what reading the file gives, sampled
    digests included, and dense.faiss holds the bytes faiss.write_index writes to a path."""
    import faiss

    from newsqa.index import writer
    from newsqa.index.format import Checksums, file_entry, read_manifest
    from newsqa.index.lexical import LexicalIndex
    from newsqa.index.models import Article, Passage
    from newsqa.index.options import BuildOptions

    checksums = Checksums(full_check_bytes=1024, sample_blocks=4, sample_block_bytes=256)
    vectors = np.random.default_rng(5).standard_normal((60, 16)).astype(np.float32)
    vectors[1] = vectors[0]  # a copy, so copies.npz is written too
    articles = [Article(article_id="a", title="t", text="x", source="s", paragraph_spans=((0, 1),))]
    passages = [
        Passage(passage_id=f"a#{i}", article_id="a", title="t", paragraph=1, start=0, end=1, text=f"x {i} " * 40)
        for i in range(len(vectors))
    ]
    folder = tmp_path / "build"
    lexical = LexicalIndex.build([p.embedding_text() for p in passages])
    contents = writer.BuildContents(articles, passages, vectors, lexical, {})
    writer.write_build_folder(folder, contents, options=BuildOptions(checksums=checksums))
    files = read_manifest(folder)["files"]
    on_disk = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    assert set(files) == on_disk - {"manifest.json", "manifest.sha256"}
    assert {"passages.jsonl", "rows.npz", "dense.faiss", "copies.npz"} <= set(files)
    assert "sample_sha256" in files["passages.jsonl"] and "sample_sha256" in files["dense.faiss"]
    for name, entry in files.items():
        assert entry == file_entry(folder / name, checksums), name
    faiss.write_index(faiss.read_index(str(folder / "dense.faiss")), str(tmp_path / "again.faiss"))
    assert (tmp_path / "again.faiss").read_bytes() == (folder / "dense.faiss").read_bytes()


def test_missing_index_is_one_sentence(tmp_path):
    with pytest.raises(IndexMissing, match=r"run `newsqa index build`"):
        open_index(tmp_path / "nowhere")


@pytest.mark.parametrize("victim", ["passages.jsonl", "dense.faiss", "manifest.json", "lexical/folded/vocab.index.json"])
def test_corrupt_or_truncated_files_are_detected(index_copy, victim):
    build = resolve_build(index_copy)
    path = build / victim
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexCorrupt) as err:
        open_index(index_copy)
    message = str(err.value)
    assert "newsqa index build" in message and "\n" not in message


def test_a_flipped_bit_is_detected(index_copy):
    path = resolve_build(index_copy) / "dense.faiss"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt, match="checksum"):
        open_index(index_copy)


def test_index_built_with_another_model_is_refused_clearly(seed_index, tiny_model_path, service_factory):
    from newsqa.retrieval.service import QAService, ServiceConfig

    service = QAService(ServiceConfig(index_dir=seed_index, model=tiny_model_path))
    with pytest.raises(ModelMismatch) as err:
        service.warm_up()
    assert "was built with the model" in str(err.value) and "newsqa index build" in str(err.value)


def test_unloadable_model_fails_fast_with_instructions(tmp_path):
    started = time.monotonic()
    with pytest.raises(ModelUnavailable, match="NEWSQA_EMBEDDING_MODEL"):
        SentenceTransformerEmbedder("intfloat/multilingual-e5-small").warm_up()
    with pytest.raises(ModelUnavailable, match="does not exist"):
        SentenceTransformerEmbedder(str(tmp_path / "no-model")).warm_up()
    # No minute-long hub retries (a generous bound: the point is "not 60+ s").
    assert time.monotonic() - started < 30


class ExplodingEmbedder:
    """The real embedder, but the build is interrupted after the first batch."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0
        self.model_id, self.dimension, self.prompts = inner.model_id, inner.dimension, inner.prompts

    def warm_up(self):
        self.inner.warm_up()

    def encode_queries(self, texts):
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts, progress=None):
        self.calls += 1
        if self.calls > 1:
            raise KeyboardInterrupt("simulated Ctrl-C in the middle of embedding")
        return self.inner.encode_passages(texts, progress)


def grown_seeds(tmp_path: Path, n_extra: int) -> Path:
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    for i in range(n_extra):
        (seeds / f"extra_{i:03d}.txt").write_text(
            f"Bài thêm số {i}\n\nĐây là bài báo thử nghiệm số {i} về thời tiết ở tỉnh số {i}. "
            f"Trời nắng đẹp và nhiệt độ khoảng {20 + i} độ.",
            encoding="utf-8",
        )
    return seeds


def test_interrupted_build_leaves_the_old_index_serving(index_copy, embedder, tmp_path):
    before = resolve_build(index_copy)
    seeds = grown_seeds(tmp_path, 300)  # enough new passages for more than one embedding chunk
    with pytest.raises(KeyboardInterrupt):
        build_index(seeds, index_copy, ExplodingEmbedder(embedder))
    assert resolve_build(index_copy) == before
    assert open_index(index_copy).manifest["article_count"] == 2
    assert not [p for p in (index_copy / "builds").iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.slow
def test_build_killed_with_sigkill_leaves_the_old_index_and_the_next_build_succeeds(index_copy, model_path, tmp_path):
    before = resolve_build(index_copy)
    seeds = grown_seeds(tmp_path, 400)
    env = os.environ | {"NEWSQA_EMBEDDING_MODEL": model_path, "NEWSQA_INDEX_DIR": str(index_copy), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "newsqa.bot.cli", "index", "build", "--seeds", str(seeds)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # Kill it once it is embedding (the cache file grows), i.e. in the middle of real work.
    cache = index_copy / "embeddings.sqlite"
    size0 = cache.stat().st_size
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and cache.stat().st_size == size0:
        time.sleep(0.05)
    assert proc.poll() is None, "the build finished before it could be killed: " + (proc.stdout.read() if proc.stdout else "")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert resolve_build(index_copy) == before
    assert open_index(index_copy).manifest["article_count"] == 2

    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert open_index(index_copy).manifest["article_count"] == 402
    assert resolve_build(index_copy) != before


def test_build_swaps_current_atomically_and_prunes_old_builds(index_copy, embedder, tmp_path):
    seeds = grown_seeds(tmp_path, 1)
    for _ in range(4):
        build_index(seeds, index_copy, embedder)
    link = index_copy / CURRENT
    assert link.is_symlink() and os.readlink(link).startswith("builds/")
    assert len([p for p in (index_copy / "builds").iterdir()]) <= 3
    assert open_index(index_copy).manifest["article_count"] == 3


def test_incremental_rebuild_embeds_only_new_passages(index_copy, embedder, tmp_path):
    seeds = grown_seeds(tmp_path, 1)
    report = build_index(seeds, index_copy, embedder)
    assert report.embedded == 1 and report.cached == report.passages - 1
    again = build_index(seeds, index_copy, embedder)
    assert again.embedded == 0


def test_lexical_only_build_answers_without_a_model(tmp_path, service_factory):
    root = tmp_path / "lexical"
    build_index(SEEDS, root, None)
    loaded = open_index(root)
    assert loaded.dense is None and loaded.manifest["model"]["id"] is None
    answer = service_factory(root).ask("nga yeu cau nato gi")
    assert answer.mode == "lexical" and answer.found
    assert "Nga yêu cầu NATO chấm dứt mở rộng" in answer.citations[0].text


def test_empty_or_missing_seeds_fail_clearly_and_write_nothing(tmp_path, embedder):
    from newsqa.index.articles import SeedsError

    with pytest.raises(SeedsError, match="does not exist"):
        build_index(tmp_path / "none", tmp_path / "idx", embedder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SeedsError, match="No usable articles"):
        build_index(tmp_path / "empty", tmp_path / "idx", embedder)
    assert resolve_build(tmp_path / "idx", must_exist=False) is None


def test_manifest_json_that_is_not_json_is_reported(index_copy):
    (resolve_build(index_copy) / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexUnavailable, match="not valid JSON"):
        open_index(index_copy)


class PoisonedEmbedder(ExplodingEmbedder):
    """The real embedder, but one passage's vector comes back as NaN (a damaged model file)."""

    def encode_passages(self, texts, progress=None):
        vectors = np.array(self.inner.encode_passages(texts, progress))
        vectors[0, 3] = np.nan
        return vectors


def test_vectors_that_are_not_numbers_stop_the_build_in_one_sentence(index_copy, embedder, tmp_path):
    before = (index_copy / "current").resolve()
    with pytest.raises(ModelUnavailable, match="not numbers .*NaN or infinite.*reinstall"):
        build_index(grown_seeds(tmp_path, 1), index_copy, PoisonedEmbedder(embedder))
    assert (index_copy / "current").resolve() == before  # the old build keeps serving


def test_a_cache_with_nan_rows_is_embedded_again(index_copy, embedder, tmp_path):
    import sqlite3

    db = sqlite3.connect(index_copy / "embeddings.sqlite")
    rows = db.execute("SELECT model, hash, vector FROM vectors").fetchall()
    db.executemany("UPDATE vectors SET vector = ? WHERE model = ? AND hash = ?",
                   [(np.full(len(v) // 4, np.nan, np.float32).tobytes(), m, h) for m, h, v in rows])
    db.commit()
    db.close()
    report = build_index(SEEDS, index_copy, embedder)
    assert report.embedded == len(rows)
    assert np.isfinite(open_index(index_copy).dense.reconstruct_n(0, 2)).all()


def test_a_damaged_cache_is_set_aside_and_the_build_goes_on(index_copy, embedder, caplog):
    (index_copy / "embeddings.sqlite").write_bytes(b"this is not an SQLite database" * 100)
    report = build_index(SEEDS, index_copy, embedder)
    assert report.embedded > 0 and open_index(index_copy).passages
    assert list(index_copy.glob("embeddings.sqlite.damaged-*"))
    assert "is damaged" in caplog.text


def test_what_cleaning_removed_is_counted_per_article_in_the_manifest(seed_index):
    removed = open_index(seed_index).manifest["removed"]
    assert removed["004_418f61029048f05a"]["byline"] == 1
    assert removed["004_418f61029048f05a"]["related-stories tail"] == 1
    assert removed["000_a04ea2cbfe5e1bb5"]["photo caption"] >= 1


@pytest.mark.parametrize("where", ["write", "cache"])
def test_a_full_disk_is_one_sentence_and_the_old_build_keeps_serving(index_copy, embedder, tmp_path, monkeypatch, where):
    import errno
    import sqlite3

    from newsqa.index import build
    from newsqa.index.build import DiskFull

    before = (index_copy / "current").resolve()
    if where == "write":
        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(build, "write_build", full)
    else:
        def full(self, model, items):
            raise sqlite3.OperationalError("database or disk is full")
        monkeypatch.setattr(build.EmbeddingCache, "put_many", full)
    with pytest.raises(DiskFull, match=rf"The disk holding {index_copy} is full \(.* MB free; a build of this index takes about .* MB\)"):
        build_index(grown_seeds(tmp_path, 1), index_copy, embedder)
    assert (index_copy / "current").resolve() == before
    assert resolve_build(index_copy) == before
