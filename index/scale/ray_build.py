"""The Ray build engine: `newsqa index build --engine ray [--address ...]`.

The same build as `index.build.LocalEngine` (same passages, same vectors, same files), with its
three expensive steps on a Ray cluster:

- read, clean and split: Ray Data `map_batches` over the article files, a task per batch;
- embed: Ray Data `map_batches` on an actor pool, one model per actor (a GPU each when the cluster
  has GPUs and the model can use one: the torch backend). Only passages the embedding cache lacks
  are sent; the cache stays with the driver, so a rebuild embeds only new passages. Each row sent
  is one cache chunk of texts, exactly the chunks the local engine encodes, so both engines put
  the same passages in the same model batch; with the int8 backend, whose activations are
  quantised per batch, that is what keeps their vectors identical;
- write: one Ray task per shard writes the shard folder (vector index, BM25 slice, rows).

Without an address it starts a Ray instance on this machine and stops it afterwards. On a cluster,
every node needs this package installed (`pip install "newsqa[ray]"`) and the seeds folder and the
index root on storage all nodes see at the same path (NFS and the like), because tasks read article
files and write shard folders by path.

Ray is imported only here, and only when this engine is used: the default build needs no Ray.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from newsqa.index.articles import assign_article_ids, read_article_file, scan_article_files
from newsqa.index.build import CACHE_CHUNK, Encoder
from newsqa.index.embedding.embedder import Embedder
from newsqa.index.models import Article, Passage
from newsqa.index.scale.shard_writer import ShardJob, write_shard
from newsqa.index.split import split_passages

log = logging.getLogger(__name__)

READ_BATCH = 64  # article files per read task


class RayUnavailable(RuntimeError):
    """Ray is not installed or the cluster cannot be reached; the message says what to do."""


def _import_ray():
    # Ray Data logs each dataset's progress and its own tuning advice; the build reports progress
    # itself, and real failures arrive as exceptions.
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")
    try:
        import ray
        import ray.data
    except ImportError:
        raise RayUnavailable(
            'The Ray engine needs Ray; install it with `pip install ".[ray]"` or build with --engine local.'
        ) from None
    return ray


def read_and_split(batch: dict[str, np.ndarray], max_bytes: int, max_words: int, min_words: int) -> dict[str, list]:
    """One Ray Data batch of article files → each file's article, passages and warning (as JSON)."""
    articles, passages, warnings = [], [], []
    for path, article_id in zip(batch["path"], batch["article_id"]):
        article, warning = read_article_file(Path(str(path)), str(article_id), max_bytes)
        split = split_passages(article, max_words, min_words) if article is not None else []
        articles.append("" if article is None else json.dumps(article.to_json(), ensure_ascii=False))
        passages.append(json.dumps([p.to_json() for p in split], ensure_ascii=False))
        warnings.append(warning or "")
    return {"path": list(batch["path"]), "article": articles, "passages": passages, "warning": warnings}


class EmbedActor:
    """Holds one model for the life of the actor; each call encodes chunks of passage texts."""

    def __init__(self, make_embedder: Callable[..., Embedder], threads: int) -> None:
        # The actor's share of its node's CPUs, whatever thread count the recipe came with.
        self.embedder = make_embedder(threads=threads)
        self.embedder.warm_up()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        vectors = []
        for texts in batch["texts"]:
            encoded = np.asarray(self.embedder.encode_passages([str(t) for t in texts]), dtype=np.float32)
            vectors.append(encoded.tobytes())
        return {"chunk": list(batch["chunk"]), "count": [len(t) for t in batch["texts"]], "vectors": vectors}


@dataclass(frozen=True)
class ActorPlan:
    size: int  # actors in the pool
    threads: int  # model threads in each
    gpus: int  # GPUs each actor holds
    cpus: int  # CPUs each actor holds


class RayEngine:
    """Runs a build's read, embed and write steps on Ray (see the module's docstring)."""

    name = "ray"

    def __init__(
        self,
        make_embedder: Callable[..., Embedder] | None = None,
        address: str | None = None,
        workers: int = 0,
        cpus: int | None = None,
        gpu_actors: bool = True,
    ) -> None:
        """`make_embedder` builds the model in each actor (a picklable callable taking `threads=`:
        actors are other processes, on other machines in a cluster); `workers` is the actor pool size, 0 = one per
        GPU when the cluster has GPUs and the model can use them (`gpu_actors`), else one per two
        CPUs; `cpus` caps a local instance."""
        self.make_embedder = make_embedder
        self.address = address
        self.workers = workers
        self.cpus = cpus
        self.gpu_actors = gpu_actors
        self._ray: Any = None
        self._started_here = False

    # -- cluster --------------------------------------------------------------------------------

    def start(self) -> Any:
        if self._ray is not None:
            return self._ray
        ray = _import_ray()
        # Ray's own INFO/WARNING lines (token auth of a local instance, data progress) are not
        # for the operator of a build; errors still show.
        logging.getLogger("ray").setLevel(logging.ERROR)
        if not ray.is_initialized():
            if self.address:
                _check_reachable(self.address)
            try:
                ray.init(
                    address=self.address,
                    num_cpus=None if self.address else (self.cpus or os.cpu_count()),
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.ERROR,
                    runtime_env={"env_vars": _forwarded_env()},
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = self.address or "a local Ray instance"
                raise RayUnavailable(
                    f"Could not connect to Ray at {where} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                    "check --address / NEWSQA_RAY_ADDRESS, or build with --engine local."
                ) from None
            self._started_here = True
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # passages in corpus order, like the local build
        context.enable_progress_bars = False  # the CLI shows its own progress
        context.print_on_execution_start = False
        self._ray = ray
        return ray

    def close(self) -> None:
        if self._ray is not None and self._started_here:
            self._ray.shutdown()
        self._ray = None
        self._started_here = False

    def resources(self) -> tuple[int, int]:
        """(CPUs, GPUs) of the cluster."""
        total = self.start().cluster_resources()
        return int(total.get("CPU", 1)), int(total.get("GPU", 0))

    def actor_plan(self, cpus: int, gpus: int) -> ActorPlan:
        """How many embedding actors, and what each holds. GPUs go to the actors only when their
        model can use one: an ONNX backend would leave the GPU idle and run on one CPU thread."""
        gpus = gpus if self.gpu_actors else 0
        size = self.workers or gpus or max(1, cpus // 2)
        if gpus:
            return ActorPlan(size, threads=1, gpus=1, cpus=0)
        return ActorPlan(size, threads=max(1, cpus // size), gpus=0, cpus=max(1, cpus // size))

    # -- the three steps --------------------------------------------------------------------------

    def read(
        self, seeds: Path, max_bytes: int, max_words: int, min_words: int
    ) -> tuple[list[Article], list[Passage], list[str]]:
        ray = self.start()
        seeds = Path(seeds).resolve()
        paths, skipped = scan_article_files(seeds)
        ids = assign_article_ids(paths, seeds)  # the local reader's ids: they depend on the files alone
        items = [{"path": str(path), "article_id": ids[path]} for path in paths]
        if not items:
            return [], [], list(skipped)
        rows = (
            ray.data.from_items(items)
            .map_batches(
                read_and_split,
                batch_size=READ_BATCH,
                fn_kwargs={"max_bytes": max_bytes, "max_words": max_words, "min_words": min_words},
            )
            .take_all()
        )
        by_path = {row["path"]: row for row in rows}
        articles: list[Article] = []
        passages: list[Passage] = []
        warnings: list[str] = list(skipped)
        for warning in skipped:
            log.warning(warning)
        for path in paths:
            row = by_path[str(path)]
            if row["warning"]:  # a file skipped, or one kept with a warning
                log.warning(row["warning"])
                warnings.append(row["warning"])
            if not row["article"]:
                continue
            articles.append(Article.from_json(json.loads(row["article"])))
            passages.extend(Passage.from_json(p) for p in json.loads(row["passages"]))
        return articles, passages, warnings

    def encoder(self, embedder: Embedder) -> Encoder:
        make_embedder = self.make_embedder

        def encode(texts: list[str], tick: Callable[[int], None]) -> Iterator[np.ndarray]:
            if not texts:
                return
            if make_embedder is None:
                raise RayUnavailable("The Ray engine was given no model to load in its actors.")
            ray = self.start()
            plan = self.actor_plan(*self.resources())
            chunks = [{"chunk": n, "texts": texts[i : i + CACHE_CHUNK]} for n, i in enumerate(range(0, len(texts), CACHE_CHUNK))]
            dataset = ray.data.from_items(chunks, override_num_blocks=len(chunks)).map_batches(
                EmbedActor,
                fn_constructor_kwargs={"make_embedder": make_embedder, "threads": plan.threads},
                batch_size=1,  # one cache chunk per call: the same model batches as the local engine
                compute=ray.data.ActorPoolStrategy(size=plan.size),
                num_gpus=plan.gpus,
                num_cpus=plan.cpus,
            )
            dimension = embedder.dimension
            waiting: dict[int, np.ndarray] = {}
            next_chunk = 0
            for batch in _quietly(dataset.iter_batches(batch_size=None, batch_format="numpy")):
                for chunk, count, blob in zip(batch["chunk"], batch["count"], batch["vectors"]):
                    waiting[int(chunk)] = np.frombuffer(blob, dtype=np.float32).reshape(int(count), dimension)
                    tick(int(count))
                while next_chunk in waiting:  # hand chunks on in order, whatever order they came in
                    yield waiting.pop(next_chunk)
                    next_chunk += 1
            if waiting or next_chunk != len(chunks):
                raise RuntimeError(f"Ray returned {next_chunk} of {len(chunks)} chunks of vectors")

        return encode

    def write_shards(self, jobs: list[ShardJob]) -> None:
        ray = self.start()
        write = ray.remote(num_cpus=1)(write_shard)
        ray.get([write.remote(job) for job in jobs])


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds on an address nothing listens at: ray.init retries one for minutes."""
    if address in ("auto", "local") or ("://" in address and not address.startswith("ray://")):
        return
    hostport = address.removeprefix("ray://").rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailable(f"The Ray address {address!r} is not host:port or ray://host:port; fix --address / NEWSQA_RAY_ADDRESS.")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise RayUnavailable(
            f"Could not connect to Ray at {address} ({exc.strerror or type(exc).__name__}); "
            "check --address / NEWSQA_RAY_ADDRESS, or build with --engine local."
        ) from None


def _quietly(batches: Iterator[dict[str, np.ndarray]]) -> Iterator[dict[str, np.ndarray]]:
    """Ray Data's advice on pool sizes and block counts is for its developers, not our operator."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield from batches


def _forwarded_env() -> dict[str, str]:
    """Settings the actors' model loading must see as the driver does (offline mode above all)."""
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "TOKENIZERS_PARALLELISM")
    env = {name: os.environ[name] for name in names if name in os.environ}
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


__all__ = ["EmbedActor", "RayEngine", "RayUnavailable", "read_and_split"]
