"""Tuning of a build and of a load, as small frozen option objects passed to what they tune.

The front end (bot/settings.py) makes them from the environment; nothing under index/ reads the
environment or keeps a process-wide setting, so two indexes in one process (a test, a benchmark, a
server swapping builds) can be tuned apart. The defaults are what an ordinary build or load uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from newsqa.index.format import CHECKSUMS, Checksums
from newsqa.index.scale.dense_memory import MMAP, PRIVATE


@dataclass(frozen=True)
class BuildOptions:
    # Exact search costs ~0.15 µs per passage here (20k passages ≈ 3 ms, 200k ≈ 30 ms); from this
    # size on a question's search would cost more than embedding it, so the vectors go in HNSW.
    hnsw_threshold: int = 20_000
    # Past this many passages a shard's vectors are compressed (index.ann.COMPRESSED_TYPE).
    compress_threshold: int = 1_000_000
    # `newsqa index build` cuts a corpus into shards of at most this many passages unless told
    # otherwise (NEWSQA_SHARD_PASSAGES, --shards). Past compress_threshold (1M) a shard's vectors
    # are compressed (IVF-PQ: ~430 bytes a passage instead of 1,536 for 384 float32 dimensions),
    # so a full shard's vectors take ~2 GB of memory and one machine can serve a few shards.
    shard_passages: int = 5_000_000
    checksums: Checksums = CHECKSUMS  # what the manifest records; the build's own read-back uses it too
    faiss_threads: int = 0  # OpenMP threads of FAISS while building; 0 = its default (every core)


@dataclass(frozen=True)
class LoadOptions:
    verify: bool = True  # check the files against the manifest's checksums (NEWSQA_VERIFY_CHECKSUMS)
    checksums: Checksums = CHECKSUMS  # as the build wrote them
    # Above this many passages a build is opened lazily: parsing 1M JSON rows takes seconds,
    # reading the offsets of them milliseconds.
    lazy_rows: int = 50_000
    # Vector indexes above this size are memory-mapped (zero-copy; FAISS must never add to them),
    # and may then be copied into huge pages in the background (index/scale/dense_memory.py).
    mmap_bytes: int = 64 << 20
    # Where a memory-mapped vector index is searched: mmap, or private (the huge-page copy);
    # NEWSQA_DENSE_MEMORY's auto is resolved by the front end, which knows whether it serves.
    dense_memory: str = MMAP
    # Threads that search one question's shards side by side, the caller included (sharded
    # builds); 1 = one after another.
    shard_search_threads: int = 1
    faiss_threads: int = 0  # OpenMP threads of each FAISS search; 0 = its default (every core)

    def __post_init__(self) -> None:
        if self.dense_memory not in (MMAP, PRIVATE):
            raise ValueError(f"dense memory must be {MMAP} or {PRIVATE}, not {self.dense_memory!r}")
