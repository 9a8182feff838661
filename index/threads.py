"""Thread counts of the libraries that compute: torch (and ONNX Runtime) for the model, OpenMP for
FAISS.

A count is an option of the object that runs the library (the embedder's `threads`, the
`faiss_threads` of a build's or a load's options); these apply one where it takes effect. torch
keeps one count for the process, so the embedder sets it as it loads the model; OpenMP keeps one
per thread, so FAISS's is set in each thread that builds or searches a vector index. Neither
imports its library: a command that never embeds never pays torch's import.
"""

from __future__ import annotations

import sys


def apply_torch_threads(threads: int) -> None:
    """Set torch's intra-op thread count, if torch is loaded; 0 leaves its own."""
    if threads and "torch" in sys.modules:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def apply_faiss_threads(threads: int) -> None:
    """Set FAISS's thread count in the calling thread, if FAISS is loaded; 0 leaves its own.
    OpenMP keeps one per thread, so a count set in one thread does not reach the worker threads
    that search for a server."""
    if threads and "faiss" in sys.modules:
        import faiss

        if faiss.omp_get_max_threads() != threads:
            faiss.omp_set_num_threads(threads)
