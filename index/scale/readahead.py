"""Read a file ahead of a parser that faults it in through a memory map.

FAISS opens a large index memory-mapped (IO_FLAG_MMAP_IFC) but still copies the HNSW graph out of
the map as it parses it: at 1M passages the first ~345 MB of the file. With a cold page cache each
4 KiB page of that copy is its own major fault, and the kernel reads ahead little for a mapping:
84,396 faults took 6.0 s, where the same disk reads the file sequentially at 0.4-1.3 GB/s. So while
the parser runs, a thread reads the file from its start in large blocks; the parser's faults then
find the pages in the page cache (read_index took 0.26-0.69 s instead; docs/performance.md).
The thread stops as soon as the parser is done, so it reads little more than the parser needed;
with a warm cache it only copies from memory for as long as the parse lasts.

The searches that follow read vectors at random places in the map, and from a cold cache each took
~1 s at 1M passages (thousands of single-page faults) for the 15 s until they had faulted most of it
in; read through once in the background, the file is cached in a few seconds (`read_in_background`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

BLOCK_BYTES = 16 << 20


@dataclass
class Readahead:
    """What a readahead did: bytes read, and whether it reached the end of the file."""

    bytes_read: int = 0
    reached_end: bool = False
    error: str | None = None


def _read(path: Path, block_bytes: int, stop: threading.Event, done: Readahead) -> None:
    buffer = bytearray(block_bytes)
    try:
        with open(path, "rb", buffering=0) as file:
            while not stop.is_set():
                count = file.readinto(buffer)
                if not count:
                    done.reached_end = True
                    return
                done.bytes_read += count
    except OSError as exc:  # only a hint to the page cache: the parser reports a real problem itself
        done.error = exc.strerror or type(exc).__name__
        log.debug("readahead of %s stopped: %s", path, done.error)


def read_in_background(
    path: Path, block_bytes: int = BLOCK_BYTES, stop: threading.Event | None = None
) -> tuple[threading.Thread, Readahead]:
    """Read `path` through once in a daemon thread (until `stop` is set), so that its pages are in
    the page cache."""
    done = Readahead()
    thread = threading.Thread(
        target=_read, args=(path, block_bytes, stop or threading.Event(), done), name="newsqa-readahead", daemon=True
    )
    thread.start()
    return thread, done


@contextmanager
def sequential_readahead(path: Path, block_bytes: int = BLOCK_BYTES) -> Iterator[Readahead]:
    """Read `path` from its start in a background thread until the block exits or the file ends."""
    stop = threading.Event()
    thread, done = read_in_background(path, block_bytes, stop)
    try:
        yield done
    finally:
        stop.set()
        thread.join()
