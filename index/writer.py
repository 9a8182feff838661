"""Writing a build: its files into a folder of their own, published under builds/ by one rename,
made `current` by one atomic swap of a symlink, and old builds pruned; one build at a time.

A build folder is immutable once published (index/format.py describes its files), so a reader that
opened it is never disturbed by the next build.
"""

from __future__ import annotations

import datetime as dt
import fcntl
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
    IndexUnavailable,
    corpus_digest,
    file_entry,
    finished_builds,
    resolve_build,
    write_manifest,
)
from newsqa.index.lexical import LexicalIndex
from newsqa.index.models import Article, Passage

KEEP_BUILDS = 3


@dataclass(frozen=True)
class BuildContents:
    """What one build (or one shard of a build) holds, before it is written."""

    articles: Sequence[Article]
    passages: Sequence[Passage]
    vectors: np.ndarray | None  # None: built without an embedding model
    lexical: LexicalIndex
    manifest_extra: dict[str, Any]  # model, splitter, warnings, engine, shard: added to the manifest


def write_build_folder(folder: Path, contents: BuildContents, build_id: str | None = None) -> None:
    """Write the files of one build (or one shard of a build) into `folder`, manifest last."""
    articles, passages, vectors = contents.articles, contents.passages, contents.vectors
    folder.mkdir(parents=True)
    article_offsets = _write_jsonl(folder / ARTICLES, (a.to_json() for a in articles))
    passage_offsets = _write_jsonl(folder / PASSAGES, (p.to_json() for p in passages))
    np.savez(
        folder / ROWS,
        passage_offsets=passage_offsets,
        article_offsets=article_offsets,
        article_ids=np.array([a.article_id for a in articles], dtype=str),
        article_passage_starts=_article_passage_starts(articles, passages),
    )
    index_info: dict[str, Any] = {"type": None}
    if vectors is not None:
        import faiss

        copies = Copies.find(vectors)
        distinct = vectors if copies is None else np.asarray(vectors)[copies.first_rows]
        dense = make_dense_index(distinct)
        faiss.write_index(dense, str(folder / DENSE))
        index_info = dense_index_info(dense, distinct)
        if copies is not None:
            copies.save(folder / COPIES)
            index_info["distinct_vectors"] = copies.groups
    contents.lexical.save(folder / LEXICAL)
    files = {str(p.relative_to(folder)): file_entry(p) for p in sorted(folder.rglob("*")) if p.is_file()}
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
    """Run write(folder, build id) on a temporary folder under builds/, fsync it and rename it to
    builds/<id>; on any failure remove it. Returns the final folder (not yet `current`)."""
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


def write_build(root: Path, contents: BuildContents) -> Path:
    """Write a complete build into builds/<id> (via a temporary name) and return its folder."""
    return publish_build(root, lambda folder, build_id: write_build_folder(folder, contents, build_id))


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


def _write_jsonl(path: Path, rows: Iterator[dict[str, Any]] | Sequence[dict[str, Any]]) -> np.ndarray:
    """Write one JSON object per line; return the byte offset of each line and the end offset."""
    offsets = [0]
    with open(path, "wb") as fh:
        for row in rows:
            line = json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n"
            fh.write(line)
            offsets.append(offsets[-1] + len(line))
        fh.flush()
        os.fsync(fh.fileno())
    return np.asarray(offsets, dtype=np.int64)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def new_build_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%f") + "-" + uuid.uuid4().hex[:4]
