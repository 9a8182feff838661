"""The index folder's format, shared by the writer and the loader: names, manifest, checksums.

Layout under the index root (NEWSQA_INDEX_DIR):

    current -> builds/<build id>      symlink, swapped atomically with os.replace
    builds/<build id>/                immutable once written
        manifest.json                 format, model, counts, corpus digest, file checksums
        manifest.sha256               the manifest's own checksum
        articles.jsonl, passages.jsonl
        rows.npz                      byte offset of every row of both, and the article ids, so a
                                      large build reads rows on demand instead of parsing them all
        dense.faiss                   absent when the build had no embedding model; one entry
                                      per distinct vector
        copies.npz                    only when passages share a vector: which rows each entry
                                      stands for (index/copies.py)
        lexical/accented/*, lexical/folded/*
        shards/000/ ...               a sharded build instead holds build folders of its own
                                      (index/scale/shards.py)
    embeddings.sqlite                 embedding cache shared by builds
    .build.lock                       one build at a time

Readers resolve `current` once and keep that folder for as long as they serve from it, so a build
that swaps in a new one, or dies half way, never changes what a running reader sees.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsqa.index.models import Article

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_DIGEST = "manifest.sha256"  # the manifest's own checksum: its fields are checked too
PASSAGES = "passages.jsonl"
ARTICLES = "articles.jsonl"
DENSE = "dense.faiss"
ROWS = "rows.npz"
LEXICAL = "lexical"
SHARDS = "shards"
CURRENT = "current"
BUILDS = "builds"
CACHE = "embeddings.sqlite"


@dataclass(frozen=True)
class Checksums:
    """How files are checksummed. A file above `full_check_bytes` also gets a digest of its size
    and `sample_blocks` blocks of `sample_block_bytes`, which a load checks at once; its full
    SHA-256 is then checked in the background. A sampled digest only matches one taken the same
    way, so a build and the loads of it use the same value (the defaults, outside tests)."""

    # Hashing 5 GB in full takes ~4 s on this machine; ~4 MB of sampled blocks, milliseconds.
    full_check_bytes: int = 64 << 20
    sample_blocks: int = 64
    sample_block_bytes: int = 64 << 10


CHECKSUMS = Checksums()


class IndexUnavailable(Exception):
    """The index cannot be served; the message is one sentence saying what to run."""


class IndexMissing(IndexUnavailable):
    pass


class IndexCorrupt(IndexUnavailable):
    pass


def corrupt(folder: Path, what: str) -> IndexCorrupt:
    """The error for a damaged build, `what` saying which part is damaged."""
    return IndexCorrupt(
        f"The index at {folder} is damaged ({what}); run `newsqa index build` to rebuild it."
    )


# -- checksums ------------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sample_offsets(size: int, checksums: Checksums = CHECKSUMS) -> list[int]:
    """Where the sampled blocks of a file of `size` bytes start: first, last and evenly between."""
    blocks, block = checksums.sample_blocks, checksums.sample_block_bytes
    if size <= blocks * block:
        return [0]
    last = size - block
    return sorted({round(i * last / (blocks - 1)) for i in range(blocks)})


def sample_sha256(path: Path, checksums: Checksums = CHECKSUMS) -> str:
    """SHA-256 of a file's size and sampled blocks: catches truncation, a rewritten header or
    footer, and damage in the sampled blocks, for ~4 MB of reading whatever the file's size."""
    size = path.stat().st_size
    block = checksums.sample_block_bytes
    digest = hashlib.sha256(size.to_bytes(8, "little"))
    offsets = sample_offsets(size, checksums)
    with open(path, "rb") as fh:
        if hasattr(os, "posix_fadvise"):  # ask for every block at once: one seek at a time when the page cache is cold
            for offset in offsets:
                os.posix_fadvise(fh.fileno(), offset, block, os.POSIX_FADV_WILLNEED)
        for offset in offsets:
            fh.seek(offset)
            digest.update(fh.read(block))
    return digest.hexdigest()


def file_entry(path: Path, checksums: Checksums = CHECKSUMS, sha256: str | None = None) -> dict[str, Any]:
    """A file's entry in the manifest: size and SHA-256, and a sampled digest when it is large.
    `sha256`: the digest its writer took on the way out (index/writer.py `HashingWriter`), so the
    file is not read again (but for the sampled blocks of a large one)."""
    size = path.stat().st_size
    entry: dict[str, Any] = {"sha256": sha256 or sha256_file(path), "bytes": size}
    if size > checksums.full_check_bytes:
        entry["sample_sha256"] = sample_sha256(path, checksums)
    return entry


def check_file(
    folder: Path, name: str, meta: dict[str, Any], full: bool, checksums: Checksums = CHECKSUMS
) -> bool:
    """Raise IndexCorrupt if `name` does not match; True when it was only sample-checked."""
    path = Path(folder) / name
    if not path.is_file():
        raise corrupt(folder, f"{name} is missing")
    if path.stat().st_size != meta.get("bytes"):
        raise corrupt(folder, f"{name} does not match its checksum")
    sampled = not full and "sample_sha256" in meta
    if sampled:
        if sample_sha256(path, checksums) != meta["sample_sha256"]:
            raise corrupt(folder, f"{name} does not match its checksum")
    elif sha256_file(path) != meta.get("sha256"):
        raise corrupt(folder, f"{name} does not match its checksum")
    return sampled


def verify_files(
    folder: Path, manifest: dict[str, Any], full: bool = True, checksums: Checksums = CHECKSUMS
) -> list[str]:
    """Check every file against the manifest. With full=False, large files that carry a sampled
    digest are checked by it only; their names are returned for a full check later."""
    return [name for name, meta in manifest["files"].items() if check_file(folder, name, meta, full, checksums)]


def corpus_digest(articles: Sequence[Article]) -> str:
    digest = hashlib.sha256()
    for article in sorted(articles, key=lambda a: a.article_id):
        digest.update(article.article_id.encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256((article.title + "\n" + article.text).encode()).digest())
    return digest.hexdigest()


# -- the manifest ---------------------------------------------------------------------------------


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """The manifest and its own checksum (so its fields are checked too), written last."""
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8")
    _write_synced(folder / MANIFEST, manifest_bytes)
    _write_synced(folder / MANIFEST_DIGEST, (hashlib.sha256(manifest_bytes).hexdigest() + "\n").encode("ascii"))


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        raw = (Path(folder) / MANIFEST).read_bytes()
        manifest = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise corrupt(folder, "manifest.json is missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise corrupt(folder, "manifest.json is not valid JSON") from None
    try:
        expected = (Path(folder) / MANIFEST_DIGEST).read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        raise corrupt(folder, f"{MANIFEST_DIGEST} is missing or unreadable") from None
    if hashlib.sha256(raw).hexdigest() != expected:
        raise corrupt(folder, "manifest.json does not match its checksum")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise corrupt(folder, "manifest.json lacks its file list")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexUnavailable(
            f"The index at {folder} has format version {manifest.get('format_version')!r}, this newsqa reads "
            f"version {FORMAT_VERSION}; run `newsqa index build` to rebuild it."
        )
    return manifest


# -- which build ----------------------------------------------------------------------------------


def finished_builds(root: Path) -> list[Path]:
    """The complete build folders under `root`, newest first (temporary ones start with a dot)."""
    builds = Path(root) / BUILDS
    if not builds.is_dir():
        return []
    return sorted((p for p in builds.iterdir() if p.is_dir() and not p.name.startswith(".")), reverse=True)


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


def earlier_builds(root: Path, than: Path) -> list[Path]:
    """The finished builds under `root` older than the build `than`, newest first (what a server
    can fall back on when `current` is damaged)."""
    name = Path(than).resolve().name
    return [p for p in finished_builds(root) if p.name < name]
