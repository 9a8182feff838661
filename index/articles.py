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


def read_articles(folder: Path, max_bytes: int = MAX_ARTICLE_BYTES) -> ReadResult:
    folder = Path(folder)
    if not folder.exists():
        raise SeedsError(f"The seeds folder {folder} does not exist; create it or point --seeds at your articles.")
    if not folder.is_dir():
        raise SeedsError(f"The seeds path {folder} is not a folder; point --seeds at a folder of .txt/.md articles.")
    try:
        paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in ARTICLE_SUFFIXES and p.is_file())
    except OSError as exc:
        raise SeedsError(f"The seeds folder {folder} cannot be read ({exc.strerror}).") from exc

    result = ReadResult(articles=[])
    seen: set[str] = set()
    for path in paths:
        warning = None
        try:
            size = path.stat().st_size
            data = path.read_bytes() if size <= max_bytes else None
        except OSError as exc:
            warning = f"{path}: skipped, cannot be read ({exc.strerror})."
            data = b""
            size = 0
        if warning is None:
            if data is None:
                warning = f"{path}: skipped, {size:,} bytes is over the {max_bytes:,}-byte limit for one article."
            elif not data.strip():
                warning = f"{path}: skipped, the file is empty."
            else:
                text = decode_article(data)
                if text is None:
                    warning = f"{path}: skipped, not UTF-8 text (binary or another encoding)."
                else:
                    article_id = article_id_for(path, folder)
                    if article_id in seen:
                        article_id = f"{article_id}{path.suffix.lower().replace('.', '-')}"
                    article = clean_article(article_id, text, source=str(path))
                    if not article.text:
                        warning = f"{path}: skipped, nothing is left after removing captions and teasers."
                    else:
                        seen.add(article_id)
                        result.articles.append(article)
        if warning:
            log.warning(warning)
            result.warnings.append(warning)
    return result
