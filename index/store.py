"""The index folder on disk: writing a build, swapping it in atomically, loading and verifying it.

Layout under the index root (NEWSQA_INDEX_DIR):

    current -> builds/<build id>      symlink, swapped atomically with os.replace
    builds/<build id>/                immutable once written
        manifest.json                 format, model, counts, corpus digest, file checksums
        articles.jsonl, passages.jsonl
        dense.faiss                   absent when the build had no embedding model
        lexical/accented/*, lexical/folded/*
    embeddings.sqlite                 embedding cache shared by builds
    .build.lock                       one build at a time

Readers resolve `current` once and keep that folder for as long as they serve from it, so a build
that swaps in a new one, or dies half way, never changes what a running reader sees.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index.lexical import LexicalIndex
from index.models import Article, Passage

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PASSAGES = "passages.jsonl"
ARTICLES = "articles.jsonl"
DENSE = "dense.faiss"
LEXICAL = "lexical"
CURRENT = "current"
BUILDS = "builds"
CACHE = "embeddings.sqlite"
KEEP_BUILDS = 3

# Exact search costs ~0.15 µs per passage here (20k passages ≈ 3 ms, 200k ≈ 30 ms); above this
# size a question's search would cost more than embedding it, so we switch to HNSW.
HNSW_THRESHOLD = 20_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


class IndexUnavailable(Exception):
    """The index cannot be served; the message is one sentence saying what to run."""


class IndexMissing(IndexUnavailable):
    pass


class IndexCorrupt(IndexUnavailable):
    pass


@dataclass
class LoadedIndex:
    folder: Path
    manifest: dict[str, Any]
    articles: dict[str, Article]
    passages: list[Passage]
    lexical: LexicalIndex
    dense: Any | None  # faiss.Index
    passage_rows: dict[str, int] = field(default_factory=dict)

    @property
    def model_id(self) -> str | None:
        return self.manifest.get("model", {}).get("id")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def corpus_digest(articles: Sequence[Article]) -> str:
    digest = hashlib.sha256()
    for article in sorted(articles, key=lambda a: a.article_id):
        digest.update(article.article_id.encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256((article.title + "\n" + article.text).encode()).digest())
    return digest.hexdigest()


def make_dense_index(vectors: np.ndarray):  # -> faiss.Index
    import faiss

    n, dim = vectors.shape
    if n < HNSW_THRESHOLD:
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    if n:
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def dense_index_type(index) -> str:
    return "hnsw" if "HNSW" in type(index).__name__ else "flat"


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False))
            fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())


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


def write_build(
    root: Path,
    articles: Sequence[Article],
    passages: Sequence[Passage],
    vectors: np.ndarray | None,
    lexical: LexicalIndex,
    manifest_extra: dict[str, Any],
) -> Path:
    """Write a complete build into builds/<id> (via a temporary name) and return its folder."""
    builds = Path(root) / BUILDS
    builds.mkdir(parents=True, exist_ok=True)
    build_id = new_build_id()
    tmp = builds / f".tmp-{build_id}"
    tmp.mkdir()
    try:
        _write_jsonl(tmp / ARTICLES, [a.to_json() for a in articles])
        _write_jsonl(tmp / PASSAGES, [p.to_json() for p in passages])
        index_info: dict[str, Any] = {"type": None}
        if vectors is not None:
            import faiss

            dense = make_dense_index(vectors)
            faiss.write_index(dense, str(tmp / DENSE))
            index_info = {"type": dense_index_type(dense)}
            if index_info["type"] == "hnsw":
                index_info.update(m=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION, ef_search=HNSW_EF_SEARCH)
        lexical.save(tmp / LEXICAL)
        files = {
            str(p.relative_to(tmp)): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
            for p in sorted(tmp.rglob("*"))
            if p.is_file()
        }
        manifest = {
            "format_version": FORMAT_VERSION,
            "build_id": build_id,
            "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "article_count": len(articles),
            "passage_count": len(passages),
            "corpus_digest": corpus_digest(articles),
            "dense_index": index_info,
            **manifest_extra,
            "files": files,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        _fsync_tree(tmp)
        final = builds / build_id
        os.rename(tmp, final)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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
    finished = sorted((p for p in builds.iterdir() if p.is_dir() and not p.name.startswith(".")), reverse=True)
    doomed = [p for p in finished[keep:] if current is None or p.resolve() != current.resolve()]
    doomed += [p for p in builds.iterdir() if p.name.startswith(".tmp-")]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
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


def resolve_build(root: Path, must_exist: bool = True) -> Path | None:
    """The build folder a reader should open: `current`'s target, or `root` itself if it is one."""
    root = Path(root)
    if (root / MANIFEST).is_file():
        return root
    link = root / CURRENT
    if link.is_dir():
        return link.resolve()
    if must_exist:
        raise IndexMissing(f"No index found at {root}; run `newsqa index build` to create it.")
    return None


def _corrupt(folder: Path, what: str) -> IndexCorrupt:
    return IndexCorrupt(
        f"The index at {folder} is damaged ({what}); run `newsqa index build` to rebuild it."
    )


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _corrupt(folder, "manifest.json is missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _corrupt(folder, "manifest.json is not valid JSON") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise _corrupt(folder, "manifest.json lacks its file list")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexUnavailable(
            f"The index at {folder} has format version {manifest.get('format_version')!r}, this newsqa reads "
            f"version {FORMAT_VERSION}; run `newsqa index build` to rebuild it."
        )
    return manifest


def verify_files(folder: Path, manifest: dict[str, Any]) -> None:
    for name, meta in manifest["files"].items():
        path = Path(folder) / name
        if not path.is_file():
            raise _corrupt(folder, f"{name} is missing")
        if path.stat().st_size != meta.get("bytes") or sha256_file(path) != meta.get("sha256"):
            raise _corrupt(folder, f"{name} does not match its checksum")


def load_build(folder: Path, verify: bool = True) -> LoadedIndex:
    """Load one build folder, checking every file against the manifest's checksums first."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if verify:
        verify_files(folder, manifest)
    try:
        articles = {a.article_id: a for a in map(Article.from_json, _read_jsonl(folder / ARTICLES))}
        passages = [Passage.from_json(row) for row in _read_jsonl(folder / PASSAGES)]
        lexical = LexicalIndex.load(folder / LEXICAL)
        dense = None
        if (folder / DENSE).is_file():
            import faiss

            dense = faiss.read_index(str(folder / DENSE))
            if dense.ntotal != len(passages):
                raise _corrupt(folder, "the vector index and the passages disagree in size")
            if dense_index_type(dense) == "hnsw":
                dense.hnsw.efSearch = int(manifest.get("dense_index", {}).get("ef_search", HNSW_EF_SEARCH))
    except IndexUnavailable:
        raise
    except Exception as exc:  # any parse error in a file means the build is unusable
        raise _corrupt(folder, f"{type(exc).__name__} while reading it") from None
    if len(passages) != manifest.get("passage_count"):
        raise _corrupt(folder, "the passage count does not match the manifest")
    return LoadedIndex(
        folder=folder,
        manifest=manifest,
        articles=articles,
        passages=passages,
        lexical=lexical,
        dense=dense,
        passage_rows={p.passage_id: i for i, p in enumerate(passages)},
    )


def open_index(root: Path, verify: bool = True) -> LoadedIndex:
    return load_build(resolve_build(root), verify=verify)  # type: ignore[arg-type]
