from __future__ import annotations

import ctypes
import mmap
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from newsqa.index.scale.readahead import sequential_readahead

MB = 1 << 20


def _evict(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
        os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def _resident_fraction(path: Path) -> float:
    """Share of the file's pages in the page cache (mincore over a fresh read-only mapping)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    size = path.stat().st_size
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    vector = (ctypes.c_ubyte * pages)()
    with open(path, "rb") as fh:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fh.fileno(), 0)
        if address in (None, ctypes.c_void_p(-1).value):
            pytest.skip(f"mmap failed: {os.strerror(ctypes.get_errno())}")
        try:
            if libc.mincore(address, size, vector) != 0:
                pytest.skip(f"mincore failed: {os.strerror(ctypes.get_errno())}")
        finally:
            libc.munmap(address, size)
    return float((np.frombuffer(vector, dtype=np.uint8) & 1).sum()) / pages


def _wait_for(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _readahead_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "newsqa-readahead"]


def test_it_reads_the_whole_file_into_the_page_cache(tmp_path):
    path = tmp_path / "index.bin"
    path.write_bytes(os.urandom(8 * MB))
    _evict(path)
    evicted = _resident_fraction(path)
    with sequential_readahead(path, block_bytes=MB) as done:
        assert _wait_for(lambda: done.reached_end)
    assert done.bytes_read == 8 * MB and done.error is None
    if evicted > 0.5:
        pytest.skip("this kernel kept the file cached after POSIX_FADV_DONTNEED")
    assert _resident_fraction(path) > 0.9


def test_it_stops_when_the_block_ends():
    # /dev/zero never ends: only leaving the block can stop the thread
    with sequential_readahead(Path("/dev/zero"), block_bytes=MB) as done:
        assert _wait_for(lambda: done.bytes_read >= 4 * MB)
    stopped_at = done.bytes_read
    time.sleep(0.05)
    assert done.bytes_read == stopped_at and not done.reached_end
    assert _readahead_threads() == []


def test_an_unreadable_file_is_only_noted(tmp_path):
    ran = False
    with sequential_readahead(tmp_path / "missing.faiss") as done:
        ran = True
    assert ran and done.bytes_read == 0 and not done.reached_end
    assert done.error  # the parser that follows reports the problem to the user
    assert _readahead_threads() == []


def test_an_error_in_the_block_still_stops_the_thread():
    with pytest.raises(RuntimeError, match="parse failed"):
        with sequential_readahead(Path("/dev/zero"), block_bytes=MB):
            raise RuntimeError("parse failed")
    assert _readahead_threads() == []


def test_a_background_read_caches_the_whole_file(tmp_path):
    from newsqa.index.scale.readahead import read_in_background

    path = tmp_path / "dense.faiss"
    path.write_bytes(os.urandom(6 * MB))
    _evict(path)
    evicted = _resident_fraction(path)
    thread, done = read_in_background(path, block_bytes=MB)
    thread.join(30)
    assert not thread.is_alive() and thread.daemon  # never keeps a process from exiting
    assert done.reached_end and done.bytes_read == 6 * MB and done.error is None
    if evicted > 0.5:
        pytest.skip("this kernel kept the file cached after POSIX_FADV_DONTNEED")
    assert _resident_fraction(path) > 0.9
