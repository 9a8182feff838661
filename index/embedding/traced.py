"""A TorchScript trace of a sentence-transformers model's transformer, for the torch backend.

`SentenceTransformer.encode` runs the Hugging Face model eagerly, and for a short question most of
the time is Python: building masks, dispatching attention, wrapping outputs, one interpreter round
trip per op. A trace records the ops once and replays them in C++, which measured ~30% faster for
one question on this machine (all-MiniLM-L6-v2, one thread) with bit-identical output. The trace is
only used after it reproduces `model.encode` on probe texts (one question, a padded batch of two);
anything it cannot mirror keeps the eager path. Truncation and padding are the tokenizer's, shared
by both paths.

Only the transformer is traced. The modules after it (pooling, normalisation, dense layers) are the
model's own, run as `encode` runs them.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Tracing replays the same kernels on the same shapes, so the output is normally identical; a trace
# that took a different branch (a mask dropped, a shape baked in) is off by orders more than this.
TOLERANCE = 1e-5
PROBES = (
    ["nga yeu cau nato gi"],
    ["a", "Nga yêu cầu NATO những gì về việc mở rộng về phía đông?"],  # padding inside a batch
)


class TraceUnsupported(Exception):
    """The model is not a transformer followed by plain modules, or its trace does not match."""


class TracedSentenceModel:
    """`encode` for a list of texts, as `SentenceTransformer.encode(normalize_embeddings=True)`."""

    def __init__(self, model: Any, tolerance: float = TOLERANCE) -> None:
        """`tolerance`: the largest difference from the model's own output on the probes that
        the trace may show and still be used."""
        import torch

        self._torch = torch
        self._model = model
        self._tolerance = tolerance
        modules = list(model)
        first = modules[0] if modules else None
        transformer = getattr(first, "model", None)
        if not isinstance(transformer, torch.nn.Module) or not hasattr(first, "preprocess"):
            raise TraceUnsupported("the first module is not a Hugging Face transformer")
        config = getattr(first, "modality_config", {}).get("text", {})
        if config.get("method") != "forward" or config.get("method_output_name") != "last_hidden_state":
            raise TraceUnsupported(f"the transformer's text output is {config!r}, not its last hidden state")
        if getattr(first, "module_output_name", None) != "token_embeddings":
            raise TraceUnsupported("the transformer does not output token embeddings")
        if getattr(transformer.config, "output_hidden_states", False):
            raise TraceUnsupported("a later module reads every layer's output")
        self._rest = modules[1:]
        example = self._inputs(self._features(["trace example", "a somewhat longer trace example text"]))
        # Tracing warns about Python values taken from shapes (the probes decide whether that
        # matters), and reading every attribute trips transformers' "loss_type" notice.
        quiet = logging.getLogger("transformers")
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            try:
                self._traced = torch.jit.trace(transformer.eval(), example_kwarg_inputs=example, strict=False)
            except Exception as exc:  # tracing raises many kinds on models it cannot follow
                raise TraceUnsupported(f"tracing failed ({type(exc).__name__}: {exc})") from None
            finally:
                quiet.setLevel(level)
        self._check()

    def _features(self, texts: Sequence[str]) -> dict[str, Any]:
        return self._model.preprocess(list(texts))

    def _inputs(self, features: dict[str, Any]) -> dict[str, Any]:
        device = self._model.device
        return {k: features[k].to(device) for k in MODEL_INPUTS if k in features}

    def _output(self, result: Any) -> Any:
        return result["last_hidden_state"] if isinstance(result, dict) else result[0]

    def _check(self) -> None:
        for texts in PROBES:
            expected = self._model.encode(
                texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
            try:
                got = self.encode(texts)
            except Exception as exc:
                raise TraceUnsupported(f"the trace failed on a probe ({type(exc).__name__}: {exc})") from None
            difference = float(np.abs(got - expected).max())
            if got.shape != expected.shape or difference > self._tolerance:
                raise TraceUnsupported(f"the trace differs from the model by {difference:.2g}")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One forward pass over `texts` (one batch): normalised float32 vectors, one per text."""
        torch = self._torch
        features = self._features(texts)
        with torch.inference_mode():
            features["token_embeddings"] = self._output(self._traced(**self._inputs(features)))
            for module in self._rest:
                features = module(features)
            vectors = torch.nn.functional.normalize(features["sentence_embedding"], p=2, dim=1)
        return vectors.float().cpu().numpy()


def trace_model(model: Any, tolerance: float = TOLERANCE) -> TracedSentenceModel | None:
    """The traced model, or None (with the reason at debug level) when `model` must run eagerly."""
    try:
        return TracedSentenceModel(model, tolerance)
    except TraceUnsupported as exc:
        log.debug("torch backend runs eagerly: %s", exc)
        return None
