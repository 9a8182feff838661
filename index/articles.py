"""Read every article file under a seeds folder, skipping (with a warning) what is not text."""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from newsqa.index.clean import clean_article, distrusted_share
from newsqa.index.models import Article

log = logging.getLogger(__name__)

ARTICLE_SUFFIXES = (".txt", ".md")
MAX_ARTICLE_BYTES = 2_000_000  # a news article is a few KB; a bigger file is almost surely not one
# Cleaning is linear in an article's size (a 2 MB file takes a few seconds); a file that still takes
# longer is skipped, so one odd file cannot hold a build (and its lock) for long.
MAX_ARTICLE_SECONDS = 30.0


class SeedsError(Exception):
    """The seeds folder cannot be used at all (missing, not a folder, unreadable, no articles)."""


@dataclass
class ReadResult:
    articles: list[Article]
    warnings: list[str] = field(default_factory=list)


def article_id_for(path: Path, root: Path) -> str:
    """The id a file's name gives (sub-folders joined with '--' so the id is URL-safe), in NFC: names
    that differ only in Unicode normalisation look the same to a person, so they give the same id."""
    return unicodedata.normalize("NFC", "--".join(path.relative_to(root).with_suffix("").parts))


def assign_article_ids(paths: Sequence[Path], root: Path) -> dict[Path, str]:
    """Every file's article id, unique, and decided by the set of files alone (not by their order or
    by which of them read): the file whose name gives an id keeps it; files whose names give the same
    id (x.txt and x.md, or one name in NFC and NFD) are ranked .txt before .md, then by name, and the
    later ones take their suffix ('x-md'), numbered when that too is taken ('x-md-2'). An id a name
    gives is never taken by another file's suffixed id."""
    groups: dict[str, list[Path]] = {}
    for path in paths:
        groups.setdefault(article_id_for(path, root), []).append(path)

    def rank(path: Path) -> tuple[int, str]:
        suffix = path.suffix.lower()
        order = ARTICLE_SUFFIXES.index(suffix) if suffix in ARTICLE_SUFFIXES else len(ARTICLE_SUFFIXES)
        return order, str(path.relative_to(root))

    ids: dict[Path, str] = {}
    taken = set(groups)
    for base in sorted(groups):
        first, *others = sorted(groups[base], key=rank)
        ids[first] = base
        for path in others:
            candidate = stem = f"{base}-{path.suffix.lower().lstrip('.') or 'file'}"
            n = 1
            while candidate in taken:
                n += 1
                candidate = f"{stem}-{n}"
            taken.add(candidate)
            ids[path] = candidate
    return ids


def decode_article(data: bytes) -> str | None:
    """UTF-8 text of a file, or None when the bytes are binary or not UTF-8."""
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def list_article_files(folder: Path) -> list[Path]:
    """Every article file under `folder`, in the order a build reads them (see `scan_article_files`)."""
    return scan_article_files(folder)[0]


def scan_article_files(folder: Path) -> tuple[list[Path], list[str]]:
    """(every readable .txt/.md file under `folder`, in the order a build reads them; a warning for
    each path with an article's suffix that is not one: a link leading outside the folder (not
    followed: the folder is what the operator chose to publish), a dangling link or a loop, a folder,
    a FIFO, socket or device)."""
    folder = Path(folder)
    if not folder.exists():
        raise SeedsError(f"The seeds folder {folder} does not exist; create it or point --seeds at your articles.")
    if not folder.is_dir():
        raise SeedsError(f"The seeds path {folder} is not a folder; point --seeds at a folder of .txt/.md articles.")
    root = folder.resolve()
    paths: list[Path] = []
    warnings: list[str] = []
    try:
        candidates = sorted(p for p in folder.rglob("*") if p.suffix.lower() in ARTICLE_SUFFIXES)
    except OSError as exc:
        raise SeedsError(f"The seeds folder {folder} cannot be read ({exc.strerror}).") from exc
    for path in candidates:
        problem = _not_an_article_file(path, root)
        if problem:
            warnings.append(f"{path}: skipped, {problem}.")
        else:
            paths.append(path)
    return paths, warnings


def _not_an_article_file(path: Path, root: Path) -> str | None:
    try:
        target = path.resolve(strict=True)
    except RuntimeError:  # a link loop, on Pythons before 3.13
        return "a link that leads back to itself"
    except OSError as exc:
        if path.is_symlink():
            return "a link to nothing" if isinstance(exc, FileNotFoundError) else "a link that leads back to itself"
        return f"cannot be read ({exc.strerror})"
    if not target.is_relative_to(root):
        return f"a link to {target}, outside the seeds folder (links out of it are not followed)"
    if target.is_dir():
        return "a folder, not a file"
    if not target.is_file():
        return "not a regular file (a FIFO, socket or device)"
    return None


def read_article_file(
    path: Path, article_id: str, max_bytes: int = MAX_ARTICLE_BYTES, max_seconds: float = MAX_ARTICLE_SECONDS
) -> tuple[Article | None, str | None]:
    """(the cleaned article, None), or (None, a warning saying why the file was skipped)."""
    try:
        size = path.stat().st_size
        data = path.read_bytes() if size <= max_bytes else None
    except OSError as exc:
        return None, f"{path}: skipped, cannot be read ({exc.strerror})."
    if data is None:
        return None, f"{path}: skipped, {size:,} bytes is over the {max_bytes:,}-byte limit for one article."
    if not data.strip():
        return None, f"{path}: skipped, the file is empty."
    text = decode_article(data)
    if text is None:
        return None, f"{path}: skipped, not UTF-8 text (binary or another encoding)."
    started = time.monotonic()
    article = clean_article(article_id, text, source=str(path))
    seconds = time.monotonic() - started
    if seconds > max_seconds:
        return None, (
            f"{path}: skipped, cleaning it took {seconds:.0f} s, over the {max_seconds:.0f}-second budget "
            "for one article (it is probably not an article)."
        )
    if not article.text:
        return None, f"{path}: skipped, nothing is left after removing captions and teasers."
    share = distrusted_share(article, text)
    if share is not None:  # index it whole and say so
        return clean_article(article_id, text, source=str(path), remove_noise=False), (
            f"{path}: kept whole, since removing what looked like captions, teasers and bylines would "
            f"have taken {share:.0%} of its text; check the file."
        )
    return article, None


def read_articles(folder: Path, max_bytes: int = MAX_ARTICLE_BYTES) -> ReadResult:
    folder = Path(folder)
    result = ReadResult(articles=[])
    paths, skipped = scan_article_files(folder)
    for warning in skipped:
        log.warning(warning)
    result.warnings.extend(skipped)
    ids = assign_article_ids(paths, folder)
    for path in paths:
        article, warning = read_article_file(path, ids[path], max_bytes)
        if article is not None:
            result.articles.append(article)
        if warning:
            log.warning(warning)
            result.warnings.append(warning)
    return result
