"""Read every article file under a seeds folder, skipping (with a warning) what is not text."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from index.clean import clean_article
from index.models import Article

log = logging.getLogger(__name__)

ARTICLE_SUFFIXES = (".txt", ".md")
MAX_ARTICLE_BYTES = 2_000_000  # a news article is a few KB; a bigger file is almost surely not one


class SeedsError(Exception):
    """The seeds folder cannot be used at all (missing, not a folder, unreadable, no articles)."""


@dataclass
class ReadResult:
    articles: list[Article]
    warnings: list[str] = field(default_factory=list)


def article_id_for(path: Path, root: Path) -> str:
    """Stable id from the file name (sub-folders joined with '--' so the id is URL-safe)."""
    return "--".join(path.relative_to(root).with_suffix("").parts)


def decode_article(data: bytes) -> str | None:
    """UTF-8 text of a file, or None when the bytes are binary or not UTF-8."""
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def list_article_files(folder: Path) -> list[Path]:
    """Every .txt/.md file under `folder`, in the order a build reads them."""
    folder = Path(folder)
    if not folder.exists():
        raise SeedsError(f"The seeds folder {folder} does not exist; create it or point --seeds at your articles.")
    if not folder.is_dir():
        raise SeedsError(f"The seeds path {folder} is not a folder; point --seeds at a folder of .txt/.md articles.")
    try:
        return sorted(p for p in folder.rglob("*") if p.suffix.lower() in ARTICLE_SUFFIXES and p.is_file())
    except OSError as exc:
        raise SeedsError(f"The seeds folder {folder} cannot be read ({exc.strerror}).") from exc


def unique_article_id(path: Path, folder: Path, seen: set[str]) -> str:
    """The id of the article in `path`: its name, or with its suffix when an earlier file took that."""
    article_id = article_id_for(path, folder)
    if article_id in seen:
        article_id = f"{article_id}{path.suffix.lower().replace('.', '-')}"
    return article_id


def read_article_file(path: Path, article_id: str, max_bytes: int = MAX_ARTICLE_BYTES) -> tuple[Article | None, str | None]:
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
    article = clean_article(article_id, text, source=str(path))
    if not article.text:
        return None, f"{path}: skipped, nothing is left after removing captions and teasers."
    return article, None


def read_articles(folder: Path, max_bytes: int = MAX_ARTICLE_BYTES) -> ReadResult:
    folder = Path(folder)
    result = ReadResult(articles=[])
    seen: set[str] = set()
    for path in list_article_files(folder):
        article, warning = read_article_file(path, unique_article_id(path, folder, seen), max_bytes)
        if article is not None:
            seen.add(article.article_id)
            result.articles.append(article)
        if warning:
            log.warning(warning)
            result.warnings.append(warning)
    return result
