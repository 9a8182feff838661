"""Large indexes run the dense side of a question on a worker thread while BM25 scores: the
results must be exactly those of the plain, one-thread search, and failures must surface alike."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from newsqa.index.embedding.embedder import ModelUnavailable
from newsqa.retrieval import service as service_module
from newsqa.retrieval.query import analyse
from newsqa.retrieval.search import HybridSearcher, SearchOptions

OVERLAP = SearchOptions(overlap_min_passages=0)  # the seed index counts as large
INLINE = SearchOptions(overlap_min_passages=10**9)


class Recording:
    """The real embedder, recording the thread each encoding ran on; `releases_gil` as told;
    with `cache=False` the searcher never sees a cached vector, so every search asks the model
    (whose own cache may still answer)."""

    def __init__(self, inner, releases_gil: bool, fail: bool = False, cache: bool = True) -> None:
        self.inner = inner
        self.releases_gil = releases_gil
        self.fail = fail
        self.cache = cache
        self.threads: list[str] = []

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def warm_up(self) -> None:
        self.inner.warm_up()

    def cached_query(self, text):
        return self.inner.cached_query(text) if self.cache else None

    def encode_queries(self, texts):
        self.threads.append(threading.current_thread().name)
        if self.fail:
            raise ModelUnavailable("the model went away")
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts, progress=None):
        return self.inner.encode_passages(texts, progress)


def _results(searcher: HybridSearcher, questions, k: int = 5):
    return [[(h.row, h.score, h.lexical, h.dense) for h in searcher.search(q, k, analyse(q))] for q in questions]


@pytest.fixture
def index(seed_service):
    return seed_service._current().index


@pytest.fixture
def services(service_factory, seed_index):
    """Services over the seed index that overlap the dense side (the first) and never do."""
    return service_factory(seed_index, search=OVERLAP), service_factory(seed_index, search=INLINE)


@pytest.mark.parametrize("releases_gil", [False, True])
def test_overlapped_search_equals_inline_search(index, embedder, mixed_questions, releases_gil):
    plain = Recording(embedder, releases_gil=False, cache=False)
    inline = _results(HybridSearcher(index, plain, options=INLINE), mixed_questions)
    assert plain.threads and all(name == threading.current_thread().name for name in plain.threads)

    recording = Recording(embedder, releases_gil, cache=False)
    overlapped = _results(HybridSearcher(index, recording, options=OVERLAP), mixed_questions)
    assert overlapped == inline
    assert any(hits for hits in overlapped)
    # An ONNX-like model embeds on the worker; a torch-like one embeds here, before handing off.
    expected = "newsqa-dense" if releases_gil else threading.current_thread().name
    assert recording.threads and all(name.startswith(expected) for name in recording.threads)


def test_overlapped_search_passes_a_given_vector_through(index, embedder):
    recording = Recording(embedder, releases_gil=True)
    searcher = HybridSearcher(index, recording, options=OVERLAP)
    question = "Nga yêu cầu NATO những gì?"
    vector = np.asarray(embedder.encode_queries([question]))
    hits = searcher.search(question, 5, analyse(question), query_vector=vector)
    assert recording.threads == []  # the vector given was used, the model not asked again
    assert hits and all(h.dense is not None for h in hits[:1])


@pytest.mark.parametrize("overlap_from", [0, 10**9])
@pytest.mark.parametrize("releases_gil", [False, True])
def test_a_failing_model_fails_the_search_the_same_way(index, embedder, overlap_from, releases_gil):
    options = SearchOptions(overlap_min_passages=overlap_from)
    searcher = HybridSearcher(index, Recording(embedder, releases_gil, fail=True, cache=False), options=options)
    with pytest.raises(ModelUnavailable, match="went away"):
        searcher.search("What did Russia demand from NATO?", 5)


def test_small_indexes_search_on_the_calling_thread(index, embedder):
    assert len(index.passages) < SearchOptions().overlap_min_passages
    recording = Recording(embedder, releases_gil=True, cache=False)
    HybridSearcher(index, recording).search("Nga yêu cầu NATO những gì?", 5)
    assert recording.threads == [threading.current_thread().name]


def test_a_cached_question_vector_is_used_without_asking_the_model(index, embedder):
    recording = Recording(embedder, releases_gil=True)
    searcher = HybridSearcher(index, recording, options=OVERLAP)
    question = "Nga yêu cầu NATO những gì? (asked twice)"
    first = searcher.search(question, 5)
    assert [name.split("_")[0] for name in recording.threads] == ["newsqa-dense"]
    assert embedder.cached_query(question) is not None
    assert searcher.search(question, 5) == first
    assert len(recording.threads) == 1  # the second time the model was not asked


def test_the_real_embedder_says_whether_it_releases_the_gil(embedder, model_path):
    from newsqa.index.embedding.embedder import SentenceTransformerEmbedder

    assert embedder.active_backend == "torch"
    assert embedder.releases_gil is True  # traced (tests/index/test_traced.py)
    eager = SentenceTransformerEmbedder(model_path, trace=False)
    assert eager.releases_gil is False  # not loaded yet: nothing known to release it
    eager.warm_up()
    assert eager.active_backend == "torch" and eager.releases_gil is False


def test_answers_are_the_same_when_passages_are_prepared_during_the_embedding(services, mixed_questions, monkeypatch):
    """A large index prepares the best lexical passages while the worker embeds the question."""
    overlapping, inline_service = services
    prepared: list[int] = []
    real_prepare = service_module.prepare

    def counting(analysis, rows, index, keep_going):
        out = real_prepare(analysis, rows, index, keep_going)
        prepared.append(len(out))
        return out

    monkeypatch.setattr(service_module, "prepare", counting)
    fresh = [f"{q} (prepared)" for q in mixed_questions]
    overlapped = [overlapping.ask(q).model_dump(exclude={"took_ms", "answer_id"}) for q in fresh]
    assert sum(prepared) > 0  # the model took long enough for some passages to be prepared
    inline = [inline_service.ask(q).model_dump(exclude={"took_ms", "answer_id"}) for q in fresh]
    assert overlapped == inline and any(a["found"] for a in inline)


def test_a_cached_question_vector_prepares_nothing(services, monkeypatch):
    """With the question's vector cached the worker only searches; passages prepared meanwhile
    would hold the GIL it needs to hand the result back, so none are."""
    rows_asked: list[list[int]] = []
    real_prepare = service_module.prepare

    def recording(analysis, rows, index, keep_going):
        rows_asked.append(list(rows))
        return real_prepare(analysis, rows, index, keep_going)

    real_dense = HybridSearcher.dense_scores

    def slow_search(self, question, n, vector=None):
        time.sleep(0.05)  # a search as slow as a big index's, so the worker is still busy
        return real_dense(self, question, n, vector)

    monkeypatch.setattr(service_module, "prepare", recording)
    monkeypatch.setattr(HybridSearcher, "dense_scores", slow_search)
    service = services[0]
    question = "Nga yêu cầu NATO những gì? (cached vector)"
    first = service.ask(question).model_dump(exclude={"took_ms", "answer_id"})
    assert rows_asked[-1]  # embedding on the worker: passages were prepared meanwhile
    pending = service._current().searcher.begin(question, 5)
    assert pending.dense_job is not None and not pending.embeds_on_worker
    pending.finish()
    again = service.ask(question).model_dump(exclude={"took_ms", "answer_id"})
    assert again == first
    assert rows_asked[-1] == []


def test_a_closed_searcher_answers_on_the_calling_thread(index, embedder):
    recording = Recording(embedder, releases_gil=True, cache=False)
    searcher = HybridSearcher(index, recording, options=OVERLAP)
    question = "Nga yêu cầu NATO những gì? (closed)"
    before = searcher.search(question, 5)
    assert recording.threads[-1].startswith("newsqa-dense")
    searcher.close()
    assert searcher.search(question, 5) == before
    assert recording.threads[-1] == threading.current_thread().name


def test_a_reload_lets_the_replaced_builds_threads_go(index_copy, embedder, service_factory):
    from newsqa.index.build import build_index
    from tests.conftest import SEEDS

    service = service_factory(index_copy, search=OVERLAP)
    question = "Nga yêu cầu NATO những gì? (reloaded)"
    service.ask(question)
    replaced = service._current()
    build_index(SEEDS, index_copy, embedder)  # every vector from the cache
    assert service.reload()
    # A question still on the replaced build is answered, with its dense side on this thread.
    pending = replaced.searcher.begin(question, 5)
    assert pending.dense_job is None and pending.finish()
    fresh = service._current().searcher.begin(question, 5)
    assert fresh.dense_job is not None and fresh.finish()
