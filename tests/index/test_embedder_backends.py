"""Embedding backends (torch, ONNX, ONNX int8) and the thread settings.

The ONNX backends must give the vectors torch gives (float32: to float noise; int8: close enough
to rank alike), keep the Embedder protocol, cache their export, and step aside for a model they
cannot mirror. Thread counts from the settings must reach torch and FAISS through the objects that
run them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from newsqa.index.embedding import onnx_backend  # noqa: E402
from newsqa.index.embedding.embedder import (  # noqa: E402
    DEFAULT_BATCH_SIZE,
    Embedder,
    ModelUnavailable,
    SentenceTransformerEmbedder,
    resolve_device,
)

TEXTS = [
    "What did Russia demand from NATO?",
    "Nga yêu cầu NATO những gì?",
    "nga yeu cau nato gi",
    "   surrounding whitespace   ",
    "x",
    "Tổng thống Vladimir Putin cho biết, Nga chưa nhận được phản hồi. " * 30,  # past max_seq_length
]


@pytest.fixture(scope="session")
def onnx_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx-exports")


@pytest.fixture(scope="session")
def onnx_embedder(model_path, onnx_dir) -> SentenceTransformerEmbedder:
    e = SentenceTransformerEmbedder(model_path, backend="onnx", onnx_cache_dir=onnx_dir)
    e.warm_up()
    return e


@pytest.fixture(scope="session")
def int8_embedder(model_path, onnx_dir) -> SentenceTransformerEmbedder:
    e = SentenceTransformerEmbedder(model_path, backend="onnx-int8", onnx_cache_dir=onnx_dir)
    e.warm_up()
    return e


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_onnx_gives_the_torch_vectors(embedder, onnx_embedder):
    assert onnx_embedder.active_backend == "onnx"
    assert onnx_embedder.releases_gil  # ONNX Runtime lets BM25 run on another thread meanwhile
    expected = embedder.encode_passages(TEXTS)
    got = onnx_embedder.encode_passages(TEXTS)
    assert got.shape == expected.shape and got.dtype == np.float32
    assert np.abs(got - expected).max() < 1e-4
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_onnx_query_vectors_match_one_at_a_time_and_batched(embedder, onnx_embedder):
    one_by_one = np.stack([onnx_embedder.encode_queries([t])[0] for t in TEXTS])
    batched = SentenceTransformerEmbedder(  # a fresh query cache: nothing served from the one above
        onnx_embedder.model_id, backend="onnx", onnx_cache_dir=onnx_embedder._onnx_cache_dir
    ).encode_queries(TEXTS)
    assert np.abs(one_by_one - batched).max() < 1e-4  # padding in a batch changes nothing
    assert np.abs(batched - embedder.encode_queries(TEXTS)).max() < 1e-4


def test_int8_is_close_to_torch_and_ranks_alike(embedder, int8_embedder):
    assert int8_embedder.active_backend == "onnx-int8"
    expected = embedder.encode_passages(TEXTS)
    got = int8_embedder.encode_passages(TEXTS)
    assert cosines(got, expected).min() > 0.97
    # The nearest text of each query is the same under both.
    queries = TEXTS[:3]
    assert (np.argmax(embedder.encode_queries(queries) @ expected.T, axis=1)
            == np.argmax(int8_embedder.encode_queries(queries) @ got.T, axis=1)).all()


def test_onnx_embedder_keeps_the_protocol(onnx_embedder, embedder):
    assert isinstance(onnx_embedder, Embedder)
    assert onnx_embedder.model_id == embedder.model_id
    assert onnx_embedder.dimension == embedder.dimension == 384
    assert onnx_embedder.prompts == embedder.prompts
    ticks: list[int] = []
    vectors = onnx_embedder.encode_passages(TEXTS * 12, progress=ticks.append)
    assert vectors.shape == (len(TEXTS) * 12, 384) and sum(ticks) == len(TEXTS) * 12
    assert onnx_embedder.encode_queries([]).shape == (0, 384)


def test_the_embedding_cache_keeps_each_backends_vectors_apart(embedder, int8_embedder, tmp_path):
    """int8 vectors differ slightly from torch's: a build with the other backend embeds afresh
    and stores what that backend makes; going back reuses the first backend's vectors."""
    from newsqa.index.build import build_index
    from newsqa.index.loader import open_index

    seeds = Path(__file__).resolve().parents[2] / "seeds"
    root = tmp_path / "index"
    first = build_index(seeds, root, embedder)
    assert first.embedded == first.passages > 0
    switched = build_index(seeds, root, int8_embedder)
    assert switched.embedded == switched.passages  # nothing of torch's served to int8
    index = open_index(root)
    texts = [p.embedding_text() for p in index.passages]
    stored = index.dense.reconstruct_n(0, len(texts))
    assert np.abs(stored - int8_embedder.encode_passages(texts)).max() < 1e-5
    assert np.abs(stored - embedder.encode_passages(texts)).max() > 1e-3
    assert build_index(seeds, root, embedder).embedded == 0  # torch's are still cached


def test_the_device_is_a_gpu_only_when_torch_sees_one(embedder, model_path, onnx_dir, caplog):
    assert resolve_device("auto", lambda: True) == "cuda"
    assert resolve_device("auto", lambda: False) == "cpu"
    assert resolve_device("cpu", lambda: True) == "cpu"
    assert resolve_device("cuda:1", lambda: False) == "cuda:1"
    # This machine has no GPU: auto ran the model on the CPU, with the CPU's batch size.
    assert embedder.device == "cpu" and embedder.batch_size == DEFAULT_BATCH_SIZE
    assert str(embedder._model.device) == "cpu"
    asked = SentenceTransformerEmbedder(model_path, device="cuda", backend="torch")
    with pytest.raises(ModelUnavailable, match="NEWSQA_EMBEDDING_DEVICE is cuda, but this torch sees no CUDA GPU"):
        asked.warm_up()
    # The ONNX backends run on the CPU whatever the device setting, and say so once.
    with caplog.at_level(logging.WARNING):
        onnx = SentenceTransformerEmbedder(model_path, device="cuda", backend="onnx-int8", onnx_cache_dir=onnx_dir)
        onnx.warm_up()
    assert onnx.active_backend == "onnx-int8" and onnx.device == "cpu"
    assert "needs NEWSQA_EMBEDDING_BACKEND=torch" in caplog.text
    assert SentenceTransformerEmbedder(model_path, batch_size=3).batch_size == 3


def test_export_is_cached_and_reused(model_path, onnx_embedder, onnx_dir, monkeypatch):
    def no_export(*args, **kwargs):
        raise AssertionError("exported again although a cached export exists")

    monkeypatch.setattr(onnx_backend, "export_onnx", no_export)
    again = SentenceTransformerEmbedder(model_path, backend="onnx", onnx_cache_dir=onnx_dir)
    again.warm_up()
    assert again.active_backend == "onnx"
    assert len([p for p in onnx_dir.glob("*.onnx") if not p.name.endswith(".int8.onnx")]) == 1


def test_exports_default_to_the_model_folder(tmp_path):
    layout = onnx_backend.ModelLayout(tmp_path, ("mean_tokens",), True, 128, False, 384, {})
    assert onnx_backend.default_cache_dir(layout, tmp_path / "elsewhere") == tmp_path / "onnx"


def test_a_model_that_is_not_here_fails_as_with_torch(tmp_path, caplog):
    from newsqa.index.embedding.embedder import ModelUnavailable

    with caplog.at_level(logging.WARNING, logger="newsqa.index.embedding.embedder"), pytest.raises(ModelUnavailable, match="NEWSQA_EMBEDDING_MODEL"):
        SentenceTransformerEmbedder(str(tmp_path / "no-model"), backend="onnx-int8", onnx_cache_dir=tmp_path).warm_up()
    assert "backend is not available" not in caplog.text  # one message, torch's


def test_a_model_onnx_cannot_mirror_falls_back_to_torch(tiny_model_path, tmp_path, caplog):
    # The tiny model is a StaticEmbedding, not Transformer + Pooling.
    with caplog.at_level(logging.WARNING, logger="newsqa.index.embedding.embedder"):
        e = SentenceTransformerEmbedder(tiny_model_path, backend="onnx", onnx_cache_dir=tmp_path)
        vectors = e.encode_passages(["nga yêu cầu nato"])
    assert e.active_backend == "torch" and vectors.shape == (1, 16)
    assert "using torch" in caplog.text


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="onnx-int8"):
        SentenceTransformerEmbedder("whatever", backend="tensorrt")


def test_pooling_modes_follow_the_config():
    hidden = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    mask = np.array([[1, 1, 0], [1, 1, 1]])
    mean = onnx_backend.pool(hidden, mask, ["mean_tokens"], normalize=False)
    np.testing.assert_allclose(mean, [[1, 2], [8, 9]])
    cls_max = onnx_backend.pool(hidden, mask, ["cls_token", "max_tokens"], normalize=False)
    np.testing.assert_allclose(cls_max, [[0, 1, 2, 3], [6, 7, 10, 11]])
    last = onnx_backend.pool(hidden, mask, ["lasttoken"], normalize=True)
    np.testing.assert_allclose(np.linalg.norm(last, axis=1), 1.0, rtol=1e-6)


@pytest.fixture
def restore_threads():
    import faiss
    import torch

    before = torch.get_num_threads(), faiss.omp_get_max_threads()
    yield
    torch.set_num_threads(before[0])
    faiss.omp_set_num_threads(before[1])


def test_thread_settings_reach_torch_and_faiss(restore_threads, tiny_model_path, seed_index, monkeypatch):
    import faiss
    import torch

    from newsqa.bot.settings import Settings
    from newsqa.index.loader import open_index

    monkeypatch.setenv("NEWSQA_TORCH_THREADS", "1")
    monkeypatch.setenv("NEWSQA_FAISS_THREADS", "1")
    settings = Settings(embedding_model=tiny_model_path, embedding_backend="torch")
    torch.set_num_threads(2)
    faiss.omp_set_num_threads(2)
    settings.embedder().warm_up()  # loading the model applies its count
    assert torch.get_num_threads() == 1
    open_index(seed_index, settings.load_options())  # loading an index applies the FAISS count
    assert faiss.omp_get_max_threads() == 1
    assert settings.build_options().faiss_threads == 1


def test_automatic_thread_counts_depend_on_serving(monkeypatch):
    import os

    from newsqa.bot.settings import Settings

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert Settings(http_max_concurrency=2).thread_counts(serving=True) == (4, 1)
    assert Settings(http_max_concurrency=16).thread_counts(serving=True) == (1, 1)
    assert Settings().thread_counts(serving=False) == (0, 0)  # library defaults: every core
    assert Settings(torch_threads=3, faiss_threads=2).thread_counts(serving=True) == (3, 2)


def test_shard_search_threads_are_the_cores_beyond_a_questions_two(monkeypatch):
    import os

    from newsqa.bot.settings import Settings

    for cores, workers, serving, expected in [(2, 1, True, 1), (1, 1, False, 1), (8, 1, True, 7), (8, 2, True, 3), (8, 2, False, 7)]:
        monkeypatch.setattr(os, "cpu_count", lambda cores=cores: cores)
        assert Settings(http_workers=workers).load_options(serving).shard_search_threads == expected, (cores, workers, serving)
    monkeypatch.setenv("NEWSQA_SHARD_SEARCH_THREADS", "4")
    assert Settings().load_options(serving=True).shard_search_threads == 4  # a configured count wins on any machine


def test_a_server_gets_the_serving_thread_counts(monkeypatch, model_path):
    """`newsqa serve` (create_app) and `newsqa bot` build their service with the serving counts;
    the other commands with the library defaults."""
    import os

    from newsqa.bot.http import create_app
    from newsqa.bot.settings import Settings

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    settings = Settings(embedding_model=model_path, http_max_concurrency=2, reload_interval=0)
    service = create_app(settings).state.runtime.service
    assert service.config.load.faiss_threads == 1
    assert service._embedder_factory(model_path).threads == 4  # not loaded: the recipe only
    one_off = settings.qa_service()
    assert one_off.config.load.faiss_threads == 0 and one_off._embedder_factory(model_path).threads == 0
    assert settings.embedder_factory(serving=True)(threads=2).threads == 2  # a Ray actor's own share


def test_the_faiss_thread_count_reaches_the_threads_that_search(restore_threads, embedder, seed_index):
    import os
    import threading

    import faiss

    from newsqa.index.loader import open_index
    from newsqa.retrieval.search import HybridSearcher

    from newsqa.index.options import LoadOptions

    wanted = (os.cpu_count() or 1) + 1  # unlike any thread's default, which is the number of cores
    searcher = HybridSearcher(open_index(seed_index, LoadOptions(faiss_threads=wanted)), embedder)
    seen: list[int] = []

    def search() -> None:  # a fresh thread, as a server's worker is: OpenMP's count is per thread
        before = faiss.omp_get_max_threads()
        assert searcher.dense_scores("What did Russia demand from NATO?", 5)
        seen.extend([before, faiss.omp_get_max_threads()])

    worker = threading.Thread(target=search)
    worker.start()
    worker.join()
    assert seen[0] != wanted and seen[1] == wanted
