"""The articles added from the web and from files, kept between builds: <index root>/library/.

One JSON file per article (`Article.to_json()` plus `fetched_at`), named by its id and written
atomically, so a build reading the folder sees each article whole or not at all, and a story
fetched again replaces its own file. Every build reads the folder beside the seeds, so
`newsqa index build` keeps what `newsqa index add` brought in.

This module imports nothing heavy: the build reads the library on every run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from newsqa.index.models import Article

log = logging.getLogger(__name__)

LIBRARY = "library"  # the folder's name under the index root
_INDEXED = ".indexed"  # the library's digest when its articles last went into a build by `index add`
PutResult = Literal["new", "updated", "unchanged"]
# Set by the build; a stored article carries none, so storing never depends on the grouping.
_BUILD_FIELDS = ("duplicate_of",)


@dataclass
class LibraryRead:
    articles: list[Article]
    warnings: list[str] = field(default_factory=list)


class Library:
    """The folder of stored articles under an index root."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @classmethod
    def of(cls, root: Path) -> Library:
        """The library of the index root `root`."""
        return cls(Path(root) / LIBRARY)

    def path(self, article_id: str) -> Path:
        if not article_id or "/" in article_id or article_id.startswith(".") or "\x00" in article_id:
            raise ValueError(f"{article_id!r} cannot name a file in the library")
        return self.folder / f"{article_id}.json"

    def get(self, article_id: str) -> Article | None:
        try:
            return Article.from_json(json.loads(self.path(article_id).read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None

    def put(self, article: Article, fetched_at: str | None = None) -> PutResult:
        """Store `article` under its id: 'new', 'updated' (it replaced a different one) or
        'unchanged' (the same article, read from the same or another link to it, is stored
        already; nothing is written, so the build does not change either)."""
        data = _stored(article)
        path = self.path(article.article_id)
        try:
            before = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            before = None
        except (OSError, ValueError):
            before = {}  # unreadable: replaced
        if before is not None and _same(before, data):
            return "unchanged"
        moment = fetched_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        _write_atomically(path, json.dumps(data | {"fetched_at": moment}, ensure_ascii=False, indent=1) + "\n")
        return "new" if before is None else "updated"

    def read(self) -> LibraryRead:
        """Every stored article, sorted by id; a file that cannot be read is skipped with a warning
        (it never stops a build)."""
        result = LibraryRead(articles=[])
        for path in self._files():
            try:
                result.articles.append(Article.from_json(json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                warning = f"{path}: skipped, not a stored article ({type(exc).__name__}: {exc})."
                log.warning(warning)
                result.warnings.append(warning)
        result.articles.sort(key=lambda a: a.article_id)
        return result

    def articles(self) -> list[Article]:
        return self.read().articles

    def digest(self) -> str:
        """A checksum of what is stored (ids and contents, not fetch times)."""
        digest = hashlib.sha256()
        for path in self._files():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = None
            if isinstance(data, dict):
                data.pop("fetched_at", None)
            digest.update(path.name.encode())
            digest.update(b"\0" + json.dumps(data, sort_keys=True, ensure_ascii=False).encode() + b"\0")
        return digest.hexdigest()

    def indexed(self, digest: str | None = None) -> bool:
        """Whether the library is as it was when `mark_indexed` was last called (so a rebuild that
        failed after articles were stored is retried next time, even if nothing new comes).
        `digest`: the library's `digest()`, when the caller has it already."""
        try:
            return (self.folder / _INDEXED).read_text(encoding="ascii").strip() == (digest or self.digest())
        except (OSError, UnicodeDecodeError):
            return not self._files()  # an empty library has nothing to index

    def mark_indexed(self, digest: str | None = None) -> None:
        """Record the library as indexed: as it is, or as it was when `digest()` gave `digest`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.folder / _INDEXED, (digest or self.digest()) + "\n")

    def _files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.glob("*.json") if not p.name.startswith("."))


def read_library(root: Path) -> LibraryRead:
    """The stored articles of the index root `root` (none when it has no library)."""
    return Library.of(root).read()


def _same(before: dict, data: dict) -> bool:
    """The same article: where it was read from this time (another link to the story) and when
    do not make it another."""
    ignored = ("fetched_at", "source")
    return {k: v for k, v in before.items() if k not in ignored} == {k: v for k, v in data.items() if k not in ignored}


def _stored(article: Article) -> dict:
    data = article.to_json()
    for name in _BUILD_FIELDS:
        data[name] = None
    data["removed"] = [dict(part) for part in data["removed"]]
    return json.loads(json.dumps(data))  # as it reads back: tuples become lists


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = ["LIBRARY", "Library", "LibraryRead", "PutResult", "read_library"]
