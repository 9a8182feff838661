"""Thread counts of the libraries that compute: torch (and ONNX Runtime) for the model, OpenMP for
FAISS.

Chosen once at start-up by the front end (NEWSQA_TORCH_THREADS / NEWSQA_FAISS_THREADS) and applied
to each library when it is first used, so a command that never embeds never pays torch's import.
The vector index code shares them with the model code, so they live beside neither.
"""

from __future__ import annotations

import sys


class _Threads:
    model: int | None = None  # torch intra-op threads; also ONNX Runtime's intra-op pool
    faiss: int | None = None  # OpenMP threads of FAISS


def configure_threads(model: int | None = None, faiss: int | None = None) -> None:
    """Record the thread counts (None or 0: the library's default) and apply them where loaded."""
    _Threads.model = model or None
    _Threads.faiss = faiss or None
    apply_torch_threads()
    apply_faiss_threads()


def model_threads() -> int | None:
    return _Threads.model


def apply_torch_threads() -> None:
    if _Threads.model and "torch" in sys.modules:
        import torch

        if torch.get_num_threads() != _Threads.model:
            torch.set_num_threads(_Threads.model)


def apply_faiss_threads() -> None:
    """Set FAISS's thread count in the calling thread: OpenMP keeps one per thread, so a count set
    at start-up does not reach the worker threads that search for a server."""
    if _Threads.faiss and "faiss" in sys.modules:
        import faiss

        if faiss.omp_get_max_threads() != _Threads.faiss:
            faiss.omp_set_num_threads(_Threads.faiss)
