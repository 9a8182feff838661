"""Where a large vector index lives while it serves: memory-mapped, or copied into huge pages.

A large index is opened memory-mapped (IO_FLAG_MMAP_IFC), which makes loading instant and lets
several server processes share one copy in the page cache. But an HNSW search reads a few thousand
vectors at random addresses of a 1.6 GB file, and with 4 KiB pages nearly every one of those reads
misses the TLB. Copied into memory backed by transparent huge pages (2 MiB), the same search ran
~18% faster at 1M passages (efSearch 640: 4.1-4.2 against 4.8-5.2 ms a query, interleaved in one
process; docs/performance.md). So a serving process opens the index memory-mapped, answers
from it at once, and swaps in the private copy when a background thread has read it.
FAISS parses the copy zero-copy (ZeroCopyIOReader): the vectors and the graph stay in our buffer,
so the copy costs the file's size once, not twice. Like a memory-mapped index, it must never be
added to.
"""

from __future__ import annotations

import logging
import mmap
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MMAP, PRIVATE, AUTO = "mmap", "private", "auto"
MODES = (AUTO, MMAP, PRIVATE)
THP_ENABLED = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def selected_thp_mode(text: str) -> str | None:
    """The bracketed choice of a sysfs THP file ("always [madvise] never" → "madvise")."""
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return None


def hugepages_available(enabled_file: Path = THP_ENABLED) -> bool:
    """Whether memory we ask for with MADV_HUGEPAGE can get huge pages on this kernel."""
    try:
        return selected_thp_mode(enabled_file.read_text()) in ("always", "madvise")
    except OSError:
        return False


def resolve_mode(setting: str, serving: bool, workers: int, hugepages: bool) -> str:
    """mmap or private for a setting of auto, mmap or private.

    auto copies only where the copy pays: a long-running server (a one-off question would spend
    the copy's read on one search), in one process (several processes share one memory-mapped copy
    in the page cache, and each would hold a private one), on a kernel that gives huge pages.
    """
    if setting != AUTO:
        return setting
    return PRIVATE if serving and workers == 1 and hugepages else MMAP


def read_private(path: Path) -> Any:  # -> faiss.Index
    """The index file read into huge-page-backed memory we own, parsed by FAISS without a copy."""
    import faiss

    size = path.stat().st_size
    # An anonymous mapping rather than a numpy array so the huge-page request is ours to make,
    # not an allocator's default.
    region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        region.madvise(mmap.MADV_HUGEPAGE)
    buffer = np.frombuffer(region, dtype=np.uint8)
    with path.open("rb") as fh:
        if fh.readinto(memoryview(region)) != size:
            raise OSError(f"{path.name} changed size while it was read")
    index = faiss.read_index(faiss.ZeroCopyIOReader(faiss.swig_ptr(buffer), size), 0)
    # FAISS points into the buffer: faiss's own way of keeping Python objects alive with an index.
    index.referenced_objects = [*getattr(index, "referenced_objects", []), buffer]
    return index


class SwappableDense:
    """A vector index whose FAISS object can be replaced while it serves.

    Searches read `self.index` once per call, so one that started on the memory-mapped index
    finishes on it, and the next one uses the copy.
    """

    def __init__(self, index: Any) -> None:
        self.index = index
        self.ntotal = int(index.ntotal)

    def search(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self.index.search(queries, n)


class PrivateCopy:
    """The background read of an index file into private memory, installed when it is parsed."""

    def __init__(self, path: Path, holder: Any, prepare: Callable[[Any], None]) -> None:
        self.path = path
        self.memory = MMAP  # what the holder searches now
        self.error: str | None = None  # one sentence, when the copy failed and the map stayed
        self._holder = weakref.ref(holder)  # a reload drops the holder: the copy is not wanted
        self._prepare = prepare  # search parameters the file does not store
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"private-copy {path.parent.name}", daemon=True)

    def start(self) -> PrivateCopy:
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _run(self) -> None:
        try:
            if self._holder() is None:
                return
            index = read_private(self.path)
            self._prepare(index)
            holder = self._holder()
            if holder is None:
                return
            if int(index.ntotal) != int(holder.index.ntotal):
                raise ValueError("the copy and the loaded index disagree in size")
            holder.index = index
            self.memory = PRIVATE
            log.info("vector index %s now searched from private memory", self.path.parent.name)
        except Exception as exc:  # the memory-mapped index keeps serving; say why once
            self.error = f"{type(exc).__name__}: {exc}"
            log.warning("vector index %s stays memory-mapped: the private copy failed (%s)", self.path.parent.name, self.error)
        finally:
            self._done.set()
