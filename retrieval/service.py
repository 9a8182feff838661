"""The one object front ends talk to: load once (`warm_up`), then `ask`, `search`, `reload`.

State that a request uses (index + searcher) lives in one immutable snapshot replaced by a single
reference assignment, so a reload never shows a request half of the old index and half of the new.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cached_property
from pathlib import Path

from newsqa.index.embedding.embedder import Embedder, ModelUnavailable, SentenceTransformerEmbedder
from newsqa.index.format import IndexCorrupt, IndexUnavailable, earlier_builds, read_manifest, resolve_build
from newsqa.index.loaded import LoadedIndex
from newsqa.index.loader import load_build
from newsqa.index.models import Article, Passage
from newsqa.index.options import LoadOptions
from newsqa.index.text import nfc
from newsqa.retrieval.answer import AnswerConfig, compose, prepare
from newsqa.retrieval.calibration import DenseBaseline
from newsqa.retrieval.conversation import ContextOptions, Turn, blend, boost_article, reads_with, with_context
from newsqa.retrieval.models import Answer, SearchHit, SearchResult
from newsqa.retrieval.query import QueryAnalysis, analyse
from newsqa.retrieval.search import FusionConfig, HybridSearcher, ScoredPassage, SearchOptions
from newsqa.retrieval.sentences import SentenceSimilarity
from newsqa.retrieval.sources import Sources
from newsqa.retrieval.when import When, WhenOptions, by_date, published_date, read_when

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 1000
MAX_TOP_K = 50
# Lexical leaders prepared for the answer while the question is embedded: the default five hits
# plus a few that the dense signal may lift into them.
PREPARE_PASSAGES = 8


class BadQuestion(ValueError):
    """The question or its parameters are unusable; the message is for the person who asked."""


class ModelMismatch(IndexUnavailable):
    pass


@dataclass(frozen=True)
class ServiceConfig:
    index_dir: Path
    model: str
    default_top_k: int = 5
    max_question_chars: int = MAX_QUESTION_CHARS
    max_top_k: int = MAX_TOP_K
    fusion: FusionConfig = field(default_factory=FusionConfig)
    answer: AnswerConfig = field(default_factory=AnswerConfig)
    load: LoadOptions = field(default_factory=LoadOptions)  # how each build it serves is loaded
    search: SearchOptions = field(default_factory=SearchOptions)
    context: ContextOptions = field(default_factory=ContextOptions)  # how a follow-up is steered
    when: WhenOptions = field(default_factory=WhenOptions)  # how publication dates move a passage


class IndexView:
    """What one build holds, for listing: every read through one view sees the same build.

    Nothing is read at load: listing every article of a 1M-passage build parses 271k articles and
    took ~25 s, which a server did before it answered its first question. The list is read on
    first use instead, and one article's passages come from the rows the build stores.
    """

    def __init__(self, index: LoadedIndex) -> None:
        self._index = index
        self.build_id = str(index.manifest.get("build_id", index.folder.name))
        self.manifest = index.manifest

    @cached_property
    def articles(self) -> list[Article]:
        return list(self._index.articles.values())

    @cached_property
    def passage_counts(self) -> dict[str, int]:
        return {article_id: self.passage_count(article_id) for article_id in self._index.articles}

    def passage_count(self, article_id: str) -> int:
        if self._index.article_rows is not None:
            return len(self._index.article_rows.get(article_id, range(0)))
        return self._counted.get(article_id, 0)

    @cached_property
    def _counted(self) -> dict[str, int]:  # a build without stored rows: one pass over its passages
        return dict(Counter(passage.article_id for passage in self._index.passages))

    @property
    def article_count(self) -> int:
        return len(self._index.articles)

    def articles_page(self, offset: int, limit: int) -> list[Article]:
        """Articles offset..offset+limit in build order, reading only those (unless all were read)."""
        if "articles" in self.__dict__:
            return self.articles[offset : offset + limit]
        if offset >= self.article_count:
            return []
        ids = itertools.islice(iter(self._index.articles), offset, offset + limit)
        return [self._index.articles[article_id] for article_id in ids]

    def article(self, article_id: str) -> Article | None:
        return self._index.articles.get(article_id)

    def passages_of(self, article_id: str) -> list[Passage]:
        return self._index.passages_of(article_id)


@dataclass(frozen=True)
class _Snapshot:
    index: LoadedIndex
    searcher: HybridSearcher
    notice: str | None
    view: IndexView

    @property
    def dated(self) -> bool:
        """Whether any article of the build says when it was published (the build counts them)."""
        return bool((self.index.manifest.get("published") or {}).get("count"))

    def close(self) -> None:
        """Let the threads its searches started go; a request still on it finishes without them."""
        self.searcher.close()
        self.index.close()


def same_model(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a == b
    if a == b:
        return True
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()


class QAService:
    def __init__(
        self,
        config: ServiceConfig,
        embedder_factory: Callable[[str], Embedder] = SentenceTransformerEmbedder,
        today: Callable[[], date] = date.today,
    ) -> None:
        """`today`: the date "hôm nay" and "this week" in a question count from."""
        self.config = config
        self._today = today
        self._embedder_factory = embedder_factory
        self._embedder: Embedder | None = None
        self._model_error: str | None = None
        self._model_loading: Future[Embedder] | None = None
        self._baseline: DenseBaseline | None = None
        self._similarity: SentenceSimilarity | None = None
        self._snapshot: _Snapshot | None = None
        self._reload_lock = threading.Lock()
        self._asking = 0  # questions in flight (prepare only uses a core no other question needs)
        self._asking_lock = threading.Lock()

    # -- loading ---------------------------------------------------------------------------

    def _embedder_for(self, index: LoadedIndex) -> tuple[Embedder | None, str | None]:
        """The embedder to query this index with, or (None, why) when we must answer lexically."""
        if index.dense is None:
            return None, "This index was built without an embedding model, so answers use keyword search only."
        if not same_model(index.model_id, self.config.model):
            raise ModelMismatch(
                f"The index at {index.folder} was built with the model '{index.model_id}' but "
                f"NEWSQA_EMBEDDING_MODEL is '{self.config.model}'; run `newsqa index build` to rebuild it, "
                "or set NEWSQA_EMBEDDING_MODEL to the model it was built with."
            )
        if self._embedder is None and self._model_error is None:
            loading = self._model_loading or self._load_model_in_background()
            try:
                self._embedder = loading.result()
            except ModelUnavailable as exc:
                self._model_error = str(exc)
                log.warning("%s Answering with keyword search only.", exc)
            finally:
                self._model_loading = None
        if self._embedder is None:
            return None, f"{self._model_error} Until then, answers use keyword search only."
        return self._embedder, None

    def _load_model_in_background(self) -> Future[Embedder]:
        """The configured model, loading on a thread of its own: the first load reads the index
        meanwhile (ONNX Runtime builds its session without the GIL; reading a large build is
        mostly I/O), and `_embedder_for` checks it is the index's model before using it."""
        loading: Future[Embedder] = Future()

        def load() -> None:
            try:
                embedder = self._embedder_factory(self.config.model)
                embedder.warm_up()
                loading.set_result(embedder)
            except BaseException as exc:  # handed to the waiting thread, which decides
                loading.set_exception(exc)

        threading.Thread(target=load, name="newsqa-model-load", daemon=True).start()
        self._model_loading = loading
        return loading

    def _load(self, folder: Path) -> _Snapshot:
        if self._embedder is None and self._model_error is None and self._model_loading is None:
            try:  # the manifest alone (a small file) says whether this build needs the model
                model = read_manifest(folder).get("model") or {}
            except IndexUnavailable:
                model = {}  # load_build says what is wrong
            if model.get("id") is not None and same_model(model["id"], self.config.model):
                self._load_model_in_background()
        index = load_build(folder, self.config.load)
        embedder, notice = self._embedder_for(index)
        if embedder is not None and self._baseline is None:
            self._baseline = DenseBaseline.of(embedder)  # once per model, not per reload
            self._similarity = SentenceSimilarity(embedder)
        searcher = HybridSearcher(
            index, embedder, self.config.fusion, self._baseline if embedder else None, self.config.search
        )
        return _Snapshot(index, searcher, notice, IndexView(index))

    def warm_up(self) -> None:
        """Load the current index and the model. Raises IndexUnavailable with a one-sentence message.

        When the build `current` points at is damaged, the newest earlier build that verifies is
        served instead, and the notice says so: a server that restarts after its disk was damaged
        answers from the last good build rather than not at all."""
        if self._snapshot is not None:
            return
        folder = resolve_build(self.config.index_dir)
        try:
            self._snapshot = self._load(folder)  # type: ignore[arg-type]
        except IndexCorrupt as damaged:
            for earlier in earlier_builds(self.config.index_dir, folder):  # type: ignore[arg-type]
                try:
                    snapshot = self._load(earlier)
                except IndexUnavailable:
                    continue
                notice = (
                    f"{damaged} Until then the earlier build {earlier.name} is served."
                    + (f" {snapshot.notice}" if snapshot.notice else "")
                )
                log.warning("%s", notice)
                self._snapshot = replace(snapshot, notice=notice)
                return
            raise

    def reload(self) -> bool:
        """Switch to the index `current` now points at. Returns True when it changed.

        A new build that fails to load (corrupt, other model) raises and the old one keeps serving.
        """
        with self._reload_lock:
            folder = resolve_build(self.config.index_dir)
            old = self._snapshot
            if old is not None and folder is not None and old.index.folder.resolve() == folder.resolve():
                return False
            self._snapshot = self._load(folder)  # type: ignore[arg-type]
            log.info("serving index %s", self._snapshot.index.manifest.get("build_id"))
            if old is not None:
                old.close()
            return True

    def close(self) -> None:
        """Let the worker threads of the build being served go (the owner is done with the
        service); it still answers, with every search on the calling thread."""
        if self._snapshot is not None:
            self._snapshot.close()

    @property
    def ready(self) -> bool:
        return self._snapshot is not None

    def _current(self) -> _Snapshot:
        if self._snapshot is None:
            self.warm_up()
        return self._snapshot  # type: ignore[return-value]

    # -- queries -----------------------------------------------------------------------------

    def _validate(self, question: object, top_k: object) -> tuple[str, int]:
        if not isinstance(question, str):
            raise BadQuestion("The question must be text.")
        # The limit applies to what the person typed: normalisation may lengthen it (U+0958 → 2 code points).
        if len(question) > self.config.max_question_chars:
            raise BadQuestion(
                f"The question is {len(question):,} characters long; the limit is {self.config.max_question_chars:,}."
            )
        cleaned = " ".join(nfc(question).split())
        if not cleaned:
            raise BadQuestion("The question is empty; type a question about the articles.")
        k = self.config.default_top_k if top_k is None else top_k
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.config.max_top_k:
            raise BadQuestion(f"top_k must be a whole number from 1 to {self.config.max_top_k}.")
        return cleaned, k

    def ask(self, question: str, top_k: int | None = None, context: Turn | None = None) -> Answer:
        """Answer one question. `context`: the conversation's previous turn, which a follow-up
        ("vì sao?", "what about Britain?") is read with (retrieval/conversation.py); without it,
        or when the question stands on its own, the answer is the one it gets asked alone."""
        started = time.perf_counter()
        cleaned, k = self._validate(question, top_k)
        snap = self._current()
        analysis, steer = self._read(cleaned, context)
        with self._asking_lock:
            self._asking += 1
            alone = self._asking == 1
        try:
            when = self._when(snap, cleaned)
            n = max(k, self.config.when.pool) if when is not None else k
            if steer is not None:
                analysis, hits, background = self._search_in_context(snap, cleaned, analysis, steer, n)
                prepared: dict[int, Passage] = {}
            else:
                pending = snap.searcher.begin(cleaned, n, analysis)
                # While the model embeds the question on its worker, the best lexical passages are
                # read and their text prepared for the answer (a Vietnamese question's top hits are
                # nearly always among them), until the dense side is done. Only for a question asked
                # alone: with others in flight no core is idle, and the passages prepared that the
                # answer does not use would cost them throughput. Not when the worker only searches
                # (a cached question vector): the search is done within ~2 ms, and Python work here
                # holds the GIL the worker needs to hand its result back (measured at 100k: cached
                # questions 4.5 ms with preparation, 3.4 without).
                overlap = alone and pending.embeds_on_worker and pending.waiting
                leaders = pending.leaders(PREPARE_PASSAGES) if overlap else []
                prepared = prepare(pending.analysis, leaders, snap.index, lambda: pending.waiting)
                hits = pending.finish()
                background = pending.background
            hits = self._by_date(snap, hits, when, k)
        finally:
            with self._asking_lock:
                self._asking -= 1
        composed = compose(
            cleaned, analysis, hits, snap.index, self.config.answer, prepared, background, self._similarity,
            context=None if steer is None else steer.topic,
            decide_on=None if when is None or when.span is None else analyse(when.without_words(cleaned)),
        )
        return Answer(
            question=question,
            answer=composed.text,
            found=composed.found,
            citations=composed.citations,
            also_retrieved=list(composed.also_retrieved),
            language="vi" if analysis.vietnamese else "en",
            answer_id=uuid.uuid4().hex,
            build_id=snap.view.build_id,
            took_ms=round((time.perf_counter() - started) * 1000, 2),
            mode=snap.searcher.mode,
            notice=snap.notice,
            context_used=steer is not None,
            context_question=None if steer is None else steer.question,
        )

    def _when(self, snap: _Snapshot, question: str) -> When | None:
        """The publication dates the question asks about; None in a build whose articles carry no
        dates (a folder of plain files), where dates cannot matter."""
        return read_when(question, self._today()) if snap.dated else None

    def _by_date(self, snap: _Snapshot, hits: list[ScoredPassage], when: When | None, k: int) -> list[ScoredPassage]:
        if not snap.dated:
            return hits[:k]
        passages, articles = snap.index.passages, snap.index.articles

        def published(row: int) -> date | None:
            article = articles.get(passages[row].article_id)
            return None if article is None else published_date(article.published)

        return by_date(hits, published, when, self.config.when, k)

    @staticmethod
    def _read(question: str, context: Turn | None) -> tuple[QueryAnalysis, Turn | None]:
        """The question's analysis, and the previous turn when the question is read with it."""
        analysis = analyse(question)
        return analysis, context if reads_with(question, analysis, context) else None

    def _search_in_context(
        self, snap: _Snapshot, question: str, analysis: QueryAnalysis, previous: Turn, k: int
    ) -> tuple[QueryAnalysis, list[ScoredPassage], float | None]:
        """A follow-up's search, steered by the previous turn: its topic's words in the BM25 query
        at a lower weight, its vector blended into the question's, a boost for the article its
        answer cited first. Returns (the analysis searched, the hits, the dense background)."""
        options = self.config.context
        steered = with_context(analysis, previous.topic, options.lexical_weight)
        vector = None
        embedder = snap.searcher.embedder
        if embedder is not None and snap.index.dense is not None:
            own, topic = embedder.encode_queries([question, previous.topic])
            vector = blend(own, topic, options.vector_share)
        pending = snap.searcher.begin(question, max(k, options.pool), steered, vector)
        hits = pending.finish()
        passages = snap.index.passages
        first = previous.articles[0] if previous.articles else None
        hits = boost_article(hits, lambda row: passages[row].article_id, first, options.article_boost, k)
        return steered, hits, pending.background

    def search(self, query: str, top_k: int | None = None, context: Turn | None = None) -> SearchResult:
        """The best passages for a query, ranked; `context` as for `ask`."""
        started = time.perf_counter()
        cleaned, k = self._validate(query, top_k)
        snap = self._current()
        analysis, steer = self._read(cleaned, context)
        when = self._when(snap, cleaned)
        n = max(k, self.config.when.pool) if when is not None else k
        if steer is None:
            hits = snap.searcher.search(cleaned, n, analysis)
        else:
            _, hits, _ = self._search_in_context(snap, cleaned, analysis, steer, n)
        hits = self._by_date(snap, hits, when, k)
        passages = snap.index.passages
        sources = Sources(snap.index)
        read = [passages[h.row] for h in hits]  # read once: on a large build each read parses a JSON line
        return SearchResult(
            query=query,
            hits=[
                SearchHit.of(
                    passage,
                    rank=rank,
                    score=round(h.score, 6),
                    lexical_score=round(h.lexical, 6),
                    dense_score=None if h.dense is None else round(h.dense, 6),
                    **sources.of(passage.article_id),
                )
                for rank, (h, passage) in enumerate(zip(hits, read, strict=True), start=1)
            ],
            took_ms=round((time.perf_counter() - started) * 1000, 2),
            mode=snap.searcher.mode,
            context_used=steer is not None,
        )

    # -- what is indexed -----------------------------------------------------------------------

    @property
    def manifest(self) -> dict:
        return self._current().index.manifest

    @property
    def notice(self) -> str | None:
        return self._current().notice

    @property
    def dense_memory(self) -> str | None:
        """Where the served build's vector index is searched (see LoadedIndex.dense_memory)."""
        return self._current().index.dense_memory

    def view(self) -> IndexView:
        """The articles and passages of the build being served, as one consistent view."""
        return self._current().view

    def articles(self) -> list[Article]:
        return self.view().articles

    def article(self, article_id: str) -> Article | None:
        return self.view().article(article_id)

    def passages_of(self, article_id: str) -> list[Passage]:
        return self.view().passages_of(article_id)
