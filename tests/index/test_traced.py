"""The torch backend's traced forward pass (index/embedding/traced.py) gives what `model.encode` gives."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from newsqa.index.embedding.embedder import SentenceTransformerEmbedder
from newsqa.index.embedding.traced import TracedSentenceModel, TraceUnsupported, trace_model

TEXTS = [
    "What did Russia demand from NATO?",
    "Nga yêu cầu NATO những gì?",
    "nga yeu cau nato gi",
    "a",
    "Tổng thống Putin nói rằng phương Tây phải đưa ra các bảo đảm an ninh ngay lập tức. " * 40,  # truncated
    "Anh và Mỹ điều thêm binh sĩ tới Đông Âu",
]


@pytest.fixture(scope="module")
def eager(model_path):
    e = SentenceTransformerEmbedder(model_path, trace=False, query_cache_size=0)
    e.warm_up()
    return e


def test_the_torch_backend_runs_traced(embedder):
    assert isinstance(embedder._traced, TracedSentenceModel)


def test_traced_vectors_are_the_models(model_path, embedder, eager):
    traced = SentenceTransformerEmbedder(model_path, query_cache_size=0)  # every question reaches the model
    for text in TEXTS:  # one question at a time, as the service asks
        np.testing.assert_allclose(traced.encode_queries([text]), eager.encode_queries([text]), atol=1e-6, rtol=0)
    # Batches of mixed lengths (padding), as a build embeds passages.
    np.testing.assert_allclose(traced.encode_passages(TEXTS * 7), eager.encode_passages(TEXTS * 7), atol=1e-6, rtol=0)
    direct = eager._model.encode(TEXTS[:3], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    np.testing.assert_allclose(embedder._traced.encode(TEXTS[:3]), direct, atol=1e-6, rtol=0)


def test_threads_share_one_trace(embedder):
    expected = [embedder._traced.encode([t]) for t in TEXTS]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: embedder._traced.encode([TEXTS[i % len(TEXTS)]]), range(48)))
    for i, vectors in enumerate(got):
        np.testing.assert_array_equal(vectors, expected[i % len(TEXTS)])


def test_a_model_that_is_not_a_transformer_runs_eagerly(tiny_model_path, caplog):
    caplog.set_level(logging.DEBUG, logger="newsqa.index.embedding.traced")
    e = SentenceTransformerEmbedder(tiny_model_path, query_cache_size=0)
    e.warm_up()
    assert e._traced is None and e.active_backend == "torch"
    assert "runs eagerly" in caplog.text and "not a Hugging Face transformer" in caplog.text
    got = e.encode_queries(["nga yêu cầu nato"])
    expected = e._model.encode(["nga yêu cầu nato"], normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_a_trace_that_does_not_reproduce_the_model_is_refused(eager, caplog):
    # Any difference at all counts as a mismatch here, so the check must refuse the trace.
    with pytest.raises(TraceUnsupported, match="differs from the model"):
        TracedSentenceModel(eager._model, tolerance=-1.0)
    caplog.set_level(logging.DEBUG, logger="newsqa.index.embedding.traced")
    assert trace_model(eager._model, tolerance=-1.0) is None
    assert "differs from the model" in caplog.text


def test_tracing_can_be_turned_off_by_setting(monkeypatch, model_path):
    from newsqa.bot.settings import Settings

    monkeypatch.setenv("NEWSQA_TORCH_TRACE", "false")
    settings = Settings(embedding_model=model_path, embedding_backend="torch")
    e = settings.embedder()
    e.warm_up()
    assert e._traced is None and e.active_backend == "torch"
    monkeypatch.delenv("NEWSQA_TORCH_TRACE")
    assert Settings(embedding_model=model_path).embedder()._trace is True
