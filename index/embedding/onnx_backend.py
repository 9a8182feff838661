"""Sentence embeddings with ONNX Runtime, from a sentence-transformers model folder.

sentence-transformers' own `backend="onnx"` needs optimum-onnx, which pins transformers below the
version this project runs on, so we export the transformer ourselves with `torch.onnx.export` and
do what the model's other modules do (pooling, normalisation) in numpy, as its configuration says.
The exported file is checked against torch before it is used, cached (keyed by the model's files),
and optionally quantised to int8 weights with `onnxruntime.quantization.quantize_dynamic`.

Only models made of Transformer → Pooling (→ Normalize) are handled; anything else (Dense layers,
prompt-excluding pooling, weighted-mean pooling) raises OnnxUnavailable and the caller falls back to
torch. Exporting needs torch and transformers once; a cached export needs neither at run time.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import uuid
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

TORCH = "torch"
ONNX = "onnx"
ONNX_INT8 = "onnx-int8"
BACKENDS = (TORCH, ONNX, ONNX_INT8)

# Bump when the export recipe changes, so cached files from an older recipe are not reused.
EXPORT_VERSION = 2
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# An export whose token vectors differ from torch's by more than this is refused (float32 noise
# is ~1e-6; a wrongly traced mask or shape shows up as differences of order 0.1).
EXPORT_TOLERANCE = 1e-3
SUPPORTED_POOLING = ("cls_token", "max_tokens", "mean_tokens", "mean_sqrt_len_tokens", "lasttoken")


class OnnxUnavailable(Exception):
    """This model cannot run on ONNX Runtime here; the message says why (the caller falls back)."""


class ModelNotLocal(OnnxUnavailable):
    """The model is not on this machine: the torch path will say so in its own words."""


@dataclass(frozen=True)
class ModelLayout:
    """What a sentence-transformers folder is made of, read from its configuration files."""

    folder: Path  # the folder holding the transformer (config.json, weights, tokenizer)
    pooling: tuple[str, ...]  # enabled pooling modes, in sentence-transformers' concatenation order
    normalize: bool
    max_seq_length: int | None
    do_lower_case: bool
    dimension: int
    prompts: dict[str, str]


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def read_layout(root: Path) -> ModelLayout:
    """Parse modules.json and the module configs; OnnxUnavailable for anything we cannot mirror."""
    root = Path(root)
    modules_file = root / "modules.json"
    if not modules_file.is_file():
        raise OnnxUnavailable(f"{root} has no modules.json (not a sentence-transformers folder)")
    transformer: Path | None = None
    pooling: tuple[str, ...] = ()
    normalize = False
    dimension = 0
    for module in _read_json(modules_file):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        path = root / module.get("path", "")
        if kind == "Transformer" and transformer is None:
            transformer = path
        elif kind == "Pooling" and not pooling:
            config = _read_json(path / "config.json")
            if config.get("include_prompt", True) is False or config.get("pooling_mode_weightedmean_tokens"):
                raise OnnxUnavailable("its pooling (prompt-excluding or weighted mean) is not mirrored here")
            pooling = tuple(m for m in SUPPORTED_POOLING if config.get(f"pooling_mode_{m}"))
            dimension = int(config.get("word_embedding_dimension", 0)) * len(pooling)
        elif kind == "Normalize":
            normalize = True
        else:
            raise OnnxUnavailable(f"it has a {kind} module, which the ONNX backend does not run")
    if transformer is None or not pooling:
        raise OnnxUnavailable("it lacks a Transformer or a Pooling module")
    st_config = transformer / "sentence_bert_config.json"
    st = _read_json(st_config) if st_config.is_file() else {}
    declared = root / "config_sentence_transformers.json"
    prompts = (_read_json(declared).get("prompts") or {}) if declared.is_file() else {}
    return ModelLayout(
        folder=transformer,
        pooling=pooling,
        normalize=normalize,
        max_seq_length=st.get("max_seq_length"),
        do_lower_case=bool(st.get("do_lower_case", False)),
        dimension=dimension,
        prompts={str(k): str(v) for k, v in prompts.items()},
    )


def resolve_folder(name: str) -> Path:
    """The local folder of a model given as a folder or a hub id already in the local cache."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception as exc:  # not cached, no hub library, bad id: all mean "not here"
        raise ModelNotLocal(f"'{name}' is not a local folder nor in the local model cache ({type(exc).__name__})") from None


def export_key(layout: ModelLayout) -> str:
    """Changes whenever the model's files or the export recipe do."""
    digest = hashlib.sha256(f"v{EXPORT_VERSION}|{layout.folder.resolve()}".encode())
    for path in sorted(p for p in layout.folder.iterdir() if p.is_file()):
        stat = path.stat()
        digest.update(f"|{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def default_cache_dir(layout: ModelLayout, fallback: Path) -> Path:
    """`onnx/` inside the model folder (where sentence-transformers keeps its own ONNX files), so
    every index and process on the machine shares one export; `fallback` if that is read-only."""
    folder = layout.folder / "onnx"
    try:
        folder.mkdir(exist_ok=True)
    except OSError:
        return fallback
    return folder if os.access(folder, os.W_OK) else fallback


def cached_paths(layout: ModelLayout, cache_dir: Path) -> tuple[Path, Path]:
    """(float32 export, int8 export) for this model under the cache folder."""
    stem = f"newsqa-{layout.folder.resolve().name}-{export_key(layout)}"
    return Path(cache_dir) / f"{stem}.onnx", Path(cache_dir) / f"{stem}.int8.onnx"


def _atomic_target(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")


def export_onnx(layout: ModelLayout, target: Path) -> None:
    """Export the transformer to `target` (atomically: concurrent processes may race to do it)."""
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise OnnxUnavailable(f"exporting needs torch and transformers ({exc})") from None

    tokenizer = AutoTokenizer.from_pretrained(str(layout.folder))
    model = AutoModel.from_pretrained(str(layout.folder)).eval()
    accepted = set(inspect.signature(model.forward).parameters)
    names = [n for n in INPUTS if n in accepted]

    class LastHidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, args))).last_hidden_state

    # Reference outputs first: torch.onnx.export leaves the traced model altered (its later outputs
    # differ by ~1), so the check must compare against outputs taken before the export.
    check = _check_inputs(tokenizer, names)
    with torch.no_grad():
        expected = model(**check).last_hidden_state.numpy()
    sample = tokenizer(["a short one", "a somewhat longer sentence to pad against"], padding=True, return_tensors="pt")
    args = tuple(sample[n] if n in sample else torch.zeros_like(sample["input_ids"]) for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    tmp = _atomic_target(target)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The TorchScript exporter: the dynamo one needs onnxscript, which is not installed here.
            # Its tracer warnings mean nothing to a user; _check_export verifies the result instead.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                LastHidden(model), args, str(tmp), input_names=names, output_names=["last_hidden_state"],
                dynamic_axes=axes, opset_version=17, dynamo=False,
            )
        _check_export(tmp, check, expected)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _check_inputs(tokenizer: Any, names: list[str]) -> dict[str, Any]:
    """A padded batch of shapes other than the traced one, with a long and a one-token text."""
    import torch

    texts = ["x", "Nga yêu cầu NATO những gì? " * 6, "What did Russia demand from NATO?"]
    batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    return {n: batch[n] if n in batch else torch.zeros_like(batch["input_ids"]) for n in names}


def _check_export(path: Path, inputs: dict[str, Any], expected: np.ndarray) -> None:
    """Refuse an export whose token vectors differ from torch's (e.g. a mask traced as a constant)."""
    session = _session(path, threads=1)
    got = session.run(None, {n: a.numpy().astype(np.int64) for n, a in inputs.items()})[0]
    mask = inputs["attention_mask"].numpy().astype(bool)
    worst = float(np.abs(got - expected)[mask].max())
    if worst > EXPORT_TOLERANCE:
        raise OnnxUnavailable(f"the exported model differs from torch by {worst:.2g}")


class _DropMessage(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def quantize_int8(source: Path, target: Path) -> None:
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise OnnxUnavailable(f"int8 quantisation needs onnxruntime ({exc})") from None
    tmp = _atomic_target(target)
    try:
        # Per-channel scales: per-tensor ones cost this model ~6 points of cosine to the float
        # vectors (0.94 mean), per-channel ones under 1 (0.992), for the same speed-up.
        # ONNX Runtime logs advice for static image models on the root logger; it means nothing here.
        advice = _DropMessage("pre-processing before quantization")
        logging.getLogger().addFilter(advice)
        try:
            quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
        finally:
            logging.getLogger().removeFilter(advice)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _session(path: Path, threads: int | None):  # -> onnxruntime.InferenceSession
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise OnnxUnavailable(f"onnxruntime is not installed ({exc}); `pip install -e '.[onnx]'`") from None
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class _Tokenizer:
    """The model's fast tokenizer (tokenizer.json) with sentence-transformers' truncation."""

    def __init__(self, layout: ModelLayout, max_seq_length: int | None) -> None:
        from tokenizers import Tokenizer

        file = layout.folder / "tokenizer.json"
        if not file.is_file():
            raise OnnxUnavailable("it has no tokenizer.json (fast tokenizer)")
        self.tokenizer = Tokenizer.from_file(str(file))
        self.lower = layout.do_lower_case
        limit = max_seq_length or layout.max_seq_length or _model_max_length(layout.folder)
        if limit:
            self.tokenizer.enable_truncation(max_length=int(limit))
        else:
            self.tokenizer.no_truncation()
        pad_token = _pad_token(layout.folder)
        pad_id = self.tokenizer.token_to_id(pad_token) if pad_token else None
        self.tokenizer.enable_padding(pad_id=pad_id or 0, pad_token=pad_token or "[PAD]")

    def __call__(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        # As sentence-transformers does: surrounding whitespace dropped, lower-cased when configured.
        cleaned = [t.strip().lower() if self.lower else t.strip() for t in texts]
        encodings = self.tokenizer.encode_batch(cleaned)
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }


def _tokenizer_config(folder: Path) -> dict[str, Any]:
    path = folder / "tokenizer_config.json"
    return _read_json(path) if path.is_file() else {}


def _model_max_length(folder: Path) -> int | None:
    value = _tokenizer_config(folder).get("model_max_length")
    return int(value) if isinstance(value, int) and value < 1_000_000 else None


def _pad_token(folder: Path) -> str | None:
    special = folder / "special_tokens_map.json"
    for source in (_tokenizer_config(folder), _read_json(special) if special.is_file() else {}):
        token = source.get("pad_token")
        if isinstance(token, dict):
            token = token.get("content")
        if isinstance(token, str):
            return token
    return None


def pool(hidden: np.ndarray, mask: np.ndarray, modes: Sequence[str], normalize: bool) -> np.ndarray:
    """sentence-transformers' Pooling (+ Normalize) over token vectors, in numpy."""
    weights = mask[..., None].astype(np.float32)
    counts = np.maximum(weights.sum(axis=1), 1e-9)
    parts = []
    for mode in modes:
        if mode == "cls_token":
            parts.append(hidden[:, 0])
        elif mode == "max_tokens":
            parts.append(np.where(weights > 0, hidden, -1e9).max(axis=1))
        elif mode == "mean_tokens":
            parts.append((hidden * weights).sum(axis=1) / counts)
        elif mode == "mean_sqrt_len_tokens":
            parts.append((hidden * weights).sum(axis=1) / np.sqrt(counts))
        elif mode == "lasttoken":
            # Right padding: the last real token sits at length - 1.
            last = np.maximum(mask.sum(axis=1) - 1, 0)
            parts.append(hidden[np.arange(len(hidden)), last])
    vectors = np.concatenate(parts, axis=1).astype(np.float32)
    if normalize:
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors


class OnnxSentenceModel:
    """The bits of a SentenceTransformer the embedder uses: `encode`, `get_embedding_dimension`, `prompts`."""

    def __init__(
        self, layout: ModelLayout, model_file: Path, threads: int | None, max_seq_length: int | None = None
    ) -> None:
        self.layout = layout
        self.model_file = model_file
        # ONNX Runtime builds its session without the GIL, the tokenizer's 250k-piece vocabulary
        # loads with it: side by side, a model is ready in the time of the slower (`newsqa ask`
        # waits for this before its first answer).
        with ThreadPoolExecutor(1, thread_name_prefix="newsqa-onnx-load") as pool:
            session = pool.submit(_session, model_file, threads)
            self.tokenizer = _Tokenizer(layout, max_seq_length)
            self.session = session.result()
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.prompts = dict(layout.prompts)

    def get_embedding_dimension(self) -> int:
        return self.layout.dimension

    def _forward(self, texts: Sequence[str]) -> np.ndarray:
        batch = self.tokenizer(texts)
        hidden = self.session.run(None, {n: batch[n] for n in self.input_names})[0]
        return pool(hidden, batch["attention_mask"], self.layout.pooling, self.layout.normalize)

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        normalize_embeddings: bool = True,
        convert_to_numpy: bool = True,
        show_progress_bar: bool = False,
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.layout.dimension), dtype=np.float32)
        # Similar lengths share a batch, so little of a batch is padding. The embedder calls this
        # with one batch, in length order already: then there is nothing to sort.
        order = list(range(len(texts))) if len(texts) <= batch_size else sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            out[rows] = self._forward([texts[i] for i in rows])
        if normalize_embeddings and not self.layout.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


def load_onnx_model(
    name: str,
    backend: str,
    cache_dir: Path | None,
    threads: int | None,
    max_seq_length: int | None = None,
    fallback_dir: Path | None = None,
) -> OnnxSentenceModel:
    """Export (once, cached) and open `name` for `backend` ('onnx' or 'onnx-int8').

    The export lives in `cache_dir`, or when that is None in the model folder's `onnx/`, or
    `fallback_dir` when the model folder is read-only."""
    if backend not in (ONNX, ONNX_INT8):
        raise ValueError(f"not an ONNX backend: {backend!r}")
    layout = read_layout(resolve_folder(name))
    if cache_dir is None:
        cache_dir = default_cache_dir(layout, fallback_dir or Path.home() / ".cache" / "newsqa" / "onnx")
    fp32, int8 = cached_paths(layout, cache_dir)
    if not fp32.is_file():
        log.info("exporting %s to ONNX under %s (once)", name, fp32.parent)
        export_onnx(layout, fp32)
    target = fp32
    if backend == ONNX_INT8:
        if not int8.is_file():
            log.info("quantising the ONNX export of %s to int8 (once)", name)
            quantize_int8(fp32, int8)
        target = int8
    return OnnxSentenceModel(layout, target, threads, max_seq_length)
