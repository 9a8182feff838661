"""Writing a build: its files into a folder of their own, published under builds/ by one rename,
made `current` by one atomic swap of a symlink, and old builds pruned; one build at a time.

A build folder is immutable once published (index/format.py describes its files), so a reader that
opened it is never disturbed by the next build.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import io
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from newsqa.index.ann import dense_index_info, make_dense_index
from newsqa.index.copies import COPIES, Copies
from newsqa.index.format import (
    ARTICLES,
    BUILDS,
    CURRENT,
    DENSE,
    FORMAT_VERSION,
    LEXICAL,
    PASSAGES,
    ROWS,
    Checksums,
    IndexUnavailable,
    corpus_digest,
    file_entry,
    finished_builds,
    resolve_build,
    write_manifest,
)
from newsqa.index.lexical import LexicalIndex
from newsqa.index.models import Article, Passage
from newsqa.index.options import BuildOptions

KEEP_BUILDS = 3


@dataclass(frozen=True)
class BuildContents:
    """What one build (or one shard of a build) holds, before it is written."""

    articles: Sequence[Article]
    passages: Sequence[Passage]
    vectors: np.ndarray | None  # None: built without an embedding model
    lexical: LexicalIndex
    manifest_extra: dict[str, Any]  # model, splitter, warnings, engine, shard: added to the manifest


def write_build_folder(
    folder: Path, contents: BuildContents, build_id: str | None = None, options: BuildOptions = BuildOptions()
) -> None:
    """Write the files of one build (or one shard of a build) into `folder`, manifest last; `options`
    choose the kind of vector index and how files are checksummed."""
    articles, passages, vectors = contents.articles, contents.passages, contents.vectors
    checksums = options.checksums
    folder.mkdir(parents=True)
    # Each file this module writes is hashed on the way out and fsynced before it closes, so it
    # is written once and never read back here; files the libraries write (FAISS, bm25s, the
    # copies' np.savez) are read once, to hash them, and fsynced.
    written: dict[str, dict[str, Any]] = {}
    article_offsets, written[ARTICLES] = _write_jsonl(folder / ARTICLES, (a.to_json() for a in articles), checksums)
    passage_offsets, written[PASSAGES] = _write_jsonl(folder / PASSAGES, (p.to_json() for p in passages), checksums)
    rows = io.BytesIO()  # zipfile wants to seek back over what it wrote; the file is then written whole
    np.savez(
        rows,
        passage_offsets=passage_offsets,
        article_offsets=article_offsets,
        article_ids=np.array([a.article_id for a in articles], dtype=str),
        article_passage_starts=_article_passage_starts(articles, passages),
    )
    with HashingWriter(folder / ROWS, checksums) as out:
        out.write(rows.getbuffer())
    written[ROWS] = out.entry
    index_info: dict[str, Any] = {"type": None}
    if vectors is not None:
        import faiss

        copies = Copies.find(vectors)
        distinct = vectors if copies is None else np.asarray(vectors)[copies.first_rows]
        dense = make_dense_index(distinct, options=options)
        # Written by FAISS and read once to hash it: hashing it on the way out through a
        # faiss.PyCallbackIOWriter measured no faster (0.24 s for 183 MB either way).
        faiss.write_index(dense, str(folder / DENSE))
        index_info = dense_index_info(dense, distinct)
        if copies is not None:
            copies.save(folder / COPIES)
            index_info["distinct_vectors"] = copies.groups
    contents.lexical.save(folder / LEXICAL)
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            name = str(path.relative_to(folder))
            files[name] = written[name] if name in written else _synced_entry(path, checksums)
    manifest = {
        "format_version": FORMAT_VERSION,
        "build_id": build_id or new_build_id(),
        "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "article_count": len(articles),
        "passage_count": len(passages),
        "corpus_digest": corpus_digest(articles),
        "dense_index": index_info,
        **contents.manifest_extra,
        "files": files,
    }
    write_manifest(folder, manifest)


def publish_build(root: Path, write: Callable[[Path, str], None]) -> Path:
    """Run write(folder, build id) on a temporary folder under builds/, fsync its folders and rename
    it to builds/<id>; on any failure remove it. Returns the final folder (not yet `current`).
    `write` leaves every file it writes fsynced (write_build_folder and write_manifest do)."""
    builds = Path(root) / BUILDS
    builds.mkdir(parents=True, exist_ok=True)
    build_id = new_build_id()
    tmp = builds / f".tmp-{build_id}"
    try:
        write(tmp, build_id)
        _fsync_tree(tmp)
        final = builds / build_id
        os.rename(tmp, final)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_build(root: Path, contents: BuildContents, options: BuildOptions = BuildOptions()) -> Path:
    """Write a complete build into builds/<id> (via a temporary name) and return its folder."""
    return publish_build(root, lambda folder, build_id: write_build_folder(folder, contents, build_id, options))


def swap_current(root: Path, build_folder: Path) -> None:
    """Point `current` at the build in one atomic rename; readers see the old or the new, never neither."""
    root = Path(root)
    link_tmp = root / f".current-{uuid.uuid4().hex[:8]}"
    os.symlink(Path(BUILDS) / build_folder.name, link_tmp)
    os.replace(link_tmp, root / CURRENT)
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prune_builds(root: Path, keep: int = KEEP_BUILDS) -> list[Path]:
    """Remove old builds and leftovers of interrupted ones, keeping `current` and the newest few."""
    builds = Path(root) / BUILDS
    if not builds.is_dir():
        return []
    current = resolve_build(root, must_exist=False)
    doomed = [p for p in finished_builds(root)[keep:] if current is None or p.resolve() != current.resolve()]
    doomed += [p for p in builds.iterdir() if p.name.startswith(".tmp-")]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    # A build killed between creating the new link and renaming it over `current` leaves this.
    for link in Path(root).glob(".current-*"):
        link.unlink(missing_ok=True)
        doomed.append(link)
    return doomed


@contextmanager
def build_lock(root: Path) -> Iterator[None]:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".build.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexUnavailable(
                f"Another `newsqa index build` is running on {root}; wait for it to finish."
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _article_passage_starts(articles: Sequence[Article], passages: Sequence[Passage]) -> np.ndarray:
    """Row of each article's first passage, and the end: passages come grouped by article, in
    article order. Empty when they do not (then readers fall back to scanning)."""
    position = {a.article_id: i for i, a in enumerate(articles)}
    owners = np.fromiter((position.get(p.article_id, -1) for p in passages), dtype=np.int64, count=len(passages))
    if len(owners) and ((owners < 0).any() or (np.diff(owners) < 0).any()):
        return np.zeros(0, dtype=np.int64)
    return np.searchsorted(owners, np.arange(len(articles) + 1), side="left").astype(np.int64)


class HashingWriter:
    """A file being written that takes its SHA-256 on the way out and is fsynced before it closes:
    its manifest entry (`entry`, once closed) then costs no read of it, but for the ~4 MB of
    sampled blocks of a file above the full-check size (their places depend on the final size)."""

    def __init__(self, path: Path, checksums: Checksums) -> None:
        self.path = Path(path)
        self.checksums = checksums
        self.entry: dict[str, Any] = {}
        self._digest = hashlib.sha256()
        self._size = 0
        self._file = open(self.path, "wb")

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._file.write(data)
        self._digest.update(data)
        size = memoryview(data).nbytes
        self._size += size
        return size

    def __enter__(self) -> HashingWriter:
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        try:
            if kind is None:
                self._file.flush()
                os.fsync(self._file.fileno())
        finally:
            self._file.close()
        if kind is None:
            self.entry = file_entry(self.path, self.checksums, self._digest.hexdigest())
            if self.entry["bytes"] != self._size:
                raise OSError(f"{self.path} holds {self.entry['bytes']} bytes, {self._size} were written to it")


def _synced_entry(path: Path, checksums: Checksums) -> dict[str, Any]:
    """The manifest entry of a file a library wrote (FAISS, bm25s): one read to hash it, and an fsync."""
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
    return file_entry(path, checksums)


def _write_jsonl(
    path: Path, rows: Iterator[dict[str, Any]] | Sequence[dict[str, Any]], checksums: Checksums
) -> tuple[np.ndarray, dict[str, Any]]:
    """Write one JSON object per line; return the byte offset of each line and the end offset,
    and the file's manifest entry."""
    offsets = [0]
    chunk: list[bytes] = []
    pending = 0
    with HashingWriter(path, checksums) as out:
        for row in rows:
            line = json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n"
            chunk.append(line)
            pending += len(line)
            offsets.append(offsets[-1] + len(line))
            if pending >= 1 << 20:  # hashed and written a megabyte at a time, not a line at a time
                out.write(b"".join(chunk))
                chunk, pending = [], 0
        out.write(b"".join(chunk))
    return np.asarray(offsets, dtype=np.int64), out.entry


def _fsync_tree(folder: Path) -> None:
    """fsync the folders of a written build, deepest first, so the names of its files (each
    fsynced by its writer) are on disk too."""
    for path in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True) + [folder]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def new_build_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%f") + "-" + uuid.uuid4().hex[:4]
