"""`newsqa index add`: files, folders, article URLs and feeds → articles in the library → one rebuild.

Each source is handled on its own: one that fails is reported by its path or URL in one sentence
and the others go on; nothing already stored or indexed is touched by a failure. Articles are
stored in the library (index/web/library.py) under stable ids (a URL's from its canonical URL, a
file's from its path), so adding a story again updates it, or leaves it be when it is the same.
The index is rebuilt once, at the end, only when the library holds something the last rebuild did
not; the build swaps in atomically, so a failed rebuild leaves the previous build serving.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from newsqa.index.articles import ARTICLE_SUFFIXES, SeedsError, article_id_for, assign_article_ids, read_article_file, scan_article_files
from newsqa.index.format import IndexUnavailable, read_manifest, resolve_build
from newsqa.index.models import Article
from newsqa.index.web.extract import extract_article
from newsqa.index.web.feed_poll import IngestResult, ItemOutcome
from newsqa.index.web.feeds import NotAFeedError, parse_feed
from newsqa.index.web.fetch import Fetched, FetchError, Fetcher
from newsqa.index.web.library import Library, PutResult

log = logging.getLogger(__name__)

Status = Literal["added", "updated", "unchanged", "failed", "feed"]
FILE_PREFIX = "file--"  # a file's article id starts so: it never meets a URL's '<host>--…' or a seeds id
FEED_TYPES = frozenset({"application/rss+xml", "application/atom+xml", "application/rdf+xml"})
XML_TYPES = frozenset({"text/xml", "application/xml"})
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# A feed's first element, after what may come before it (BOM, XML declaration, comments, doctype).
_PROLOGUE_RE = re.compile(r"^(?:\ufeff|\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>)*", re.DOTALL | re.IGNORECASE)
_FEED_ROOT_RE = re.compile(r"<(?:rss|feed|rdf:rdf)[\s>/]", re.IGNORECASE)
_STATUS = {"new": "added", "updated": "updated", "unchanged": "unchanged"}


@dataclass(frozen=True)
class Outcome:
    source: str  # the path or URL as given, or a feed item's link
    status: Status  # 'feed': a feed was read; its items follow as outcomes of their own
    detail: str = ""  # failed: the sentence; added/updated/unchanged: the article id; feed: its title
    feed: str | None = None  # the feed a link came from

    def line(self) -> str:
        """The line `newsqa index add` prints for it."""
        indent = "  " if self.feed else ""
        if self.status == "failed":
            return f"{indent}failed: {self.detail}"
        if self.status == "feed":
            return f"feed: {self.source}" + (f" ({self.detail})" if self.detail else "")
        return f"{indent}{self.status}: {self.source}" + (f" as {self.detail}" if self.detail else "")


@dataclass
class IngestReport:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(o.status in ("added", "updated") for o in self.outcomes)

    @property
    def all_failed(self) -> bool:
        """Every source and link failed (a feed read with no items is no failure)."""
        counted = [o for o in self.outcomes if o.status != "feed"]
        return bool(counted) and all(o.status == "failed" for o in counted)


def _ignore(outcome: Outcome) -> None:
    pass


class WebIngest:
    """Adds sources to one index root's library and rebuilds that index when the library changed.

    `rebuild` builds the index (seeds and library) and returns the line that says what it built;
    `on_outcome` sees each outcome as it happens (a feed's links take a while, politely)."""

    def __init__(
        self,
        library: Library,
        fetcher: Fetcher,
        rebuild: Callable[[], str | None] | None = None,
        on_outcome: Callable[[Outcome], None] = _ignore,
    ) -> None:
        self.library = library
        self.fetcher = fetcher
        self._rebuild = rebuild
        self._on_outcome = on_outcome
        self._done: dict[str, Outcome] = {}  # by URL: a link met twice in one run is read once

    # -- what `newsqa index add` calls ------------------------------------------------------------

    def add_sources(self, sources: Iterable[str]) -> IngestReport:
        """Store what each source holds; no rebuild (see `rebuild_if_needed`)."""
        report = IngestReport()
        for source in sources:
            report.outcomes.extend(self._source(source))
        return report

    def rebuild_if_needed(self) -> str | None:
        """Rebuild when the library holds what no rebuild took in yet (added now, or by an earlier
        run whose rebuild failed); returns what the rebuild said, None when none was needed."""
        if self._rebuild is None:
            return None
        digest = self.library.digest()  # before: what is stored while it builds goes in next time
        if self.library.indexed(digest):
            return None
        said = self._rebuild()
        self.library.mark_indexed(digest)
        return said

    # -- what a feed poll calls (index/web/feed_poll.py's Ingest) ---------------------------------

    def add_urls(self, urls: Sequence[str]) -> IngestResult:
        """Fetch and store each story URL, then rebuild once if anything changed."""
        outcomes: dict[str, ItemOutcome] = {}
        for url in urls:
            outcome = self._emit(self._page(url))
            if outcome.status == "failed":
                outcomes[url] = ItemOutcome("failed", outcome.detail)
            else:
                outcomes[url] = ItemOutcome("new" if outcome.status == "added" else outcome.status)  # type: ignore[arg-type]
        return IngestResult(outcomes, self.rebuild_if_needed())

    # -- one source -------------------------------------------------------------------------------

    def _source(self, source: str) -> list[Outcome]:
        if _URL_RE.match(source):
            return self._url(source)
        return [self._emit(o) for o in self._path(Path(source), source)]

    def _url(self, url: str) -> list[Outcome]:
        """A URL given to `index add`: a story, or a feed whose items are read as stories."""
        fetched = self._fetch(url)
        if isinstance(fetched, Fetched) and is_feed(fetched):
            return self._feed(url, fetched)
        return [self._emit(self._stored(url, fetched))]

    def _feed(self, url: str, fetched: Fetched) -> list[Outcome]:
        try:
            feed = parse_feed(fetched.text or "", fetched.final_url)
        except NotAFeedError as exc:
            return [self._emit(Outcome(url, "failed", str(exc)))]
        count = f"{len(feed.items)} {'story' if len(feed.items) == 1 else 'stories'}"
        outcomes = [self._emit(Outcome(url, "feed", f"{feed.title}: {count}" if feed.title else count))]
        for item in feed.items:
            outcomes.append(self._emit(_from_feed(self._page(item.link), url)))
        return outcomes

    def _page(self, url: str) -> Outcome:
        """A story URL (a feed's link): fetched, extracted and stored; a feed here is refused."""
        fetched = self._fetch(url)
        if isinstance(fetched, Fetched) and is_feed(fetched):
            return self._remember(url, Outcome(url, "failed", f"{url} is a feed, not a story (a feed's items are read as stories)."))
        return self._stored(url, fetched)

    def _fetch(self, url: str) -> Fetched | Outcome:
        """The document at `url`, or the outcome it already has: failed, or (met before in this
        run) what it came to then."""
        if url in self._done:
            return _again(self._done[url])
        try:
            return self.fetcher.get(url)
        except FetchError as exc:
            return self._remember(url, Outcome(url, "failed", str(exc)))

    def _stored(self, url: str, fetched: Fetched | Outcome) -> Outcome:
        """A fetched story stored (remembered for this run); an outcome already had, as it is."""
        if isinstance(fetched, Outcome):
            return fetched
        return self._remember(url, self._store_page(url, fetched))

    def _store_page(self, url: str, fetched: Fetched) -> Outcome:
        if fetched.content_type in XML_TYPES | FEED_TYPES:
            return Outcome(url, "failed", f"{url} is XML but not an RSS or Atom feed, nor a web page.")
        try:
            article = extract_article(fetched.text or "", fetched.final_url, source=fetched.final_url)
        except Exception as exc:  # the extractor on a page it chokes on: this page fails, not the run
            log.warning("extracting %s failed", url, exc_info=True)
            return Outcome(url, "failed", f"{url} could not be read as an article ({type(exc).__name__}).")
        if article is None:
            return Outcome(url, "failed", f"{url} holds no article text (a section front, a video or a gallery?).")
        return self._put(url, article)

    def _path(self, path: Path, given: str) -> list[Outcome]:
        if path.is_dir():
            try:
                files, skipped = scan_article_files(path)
            except SeedsError as exc:
                return [Outcome(given, "failed", str(exc))]
            outcomes = [Outcome(given, "failed", warning) for warning in skipped]
            if not files and not skipped:
                return [Outcome(given, "failed", f"{given} holds no .txt or .md files.")]
            ids = assign_article_ids(files, path)
            for file in files:
                outcomes.append(self._file(file, str(file), FILE_PREFIX + ids[file]))
            return outcomes
        if not path.exists():
            return [Outcome(given, "failed", f"{given} is neither a file, a folder nor an http(s) URL.")]
        if path.suffix.lower() not in ARTICLE_SUFFIXES:
            return [Outcome(given, "failed", f"{given} is not an article file (.txt or .md).")]
        return [self._file(path, given, FILE_PREFIX + article_id_for(path, path.parent))]

    def _file(self, path: Path, given: str, article_id: str) -> Outcome:
        article, warning = read_article_file(path, article_id)
        if article is None:
            return Outcome(given, "failed", warning or f"{given} could not be read.")
        return self._put(given, article)

    def _put(self, source: str, article: Article) -> Outcome:
        try:
            result: PutResult = self.library.put(article)
        except OSError as exc:
            return Outcome(source, "failed", f"{source} could not be stored in {self.library.folder} ({exc.strerror or exc}).")
        return Outcome(source, _STATUS[result], article.article_id)  # type: ignore[arg-type]

    def _remember(self, url: str, outcome: Outcome) -> Outcome:
        self._done[url] = outcome
        return outcome

    def _emit(self, outcome: Outcome) -> Outcome:
        self._on_outcome(outcome)
        return outcome


def _again(earlier: Outcome) -> Outcome:
    """A URL met a second time in one run: read once; stored already, so unchanged now."""
    if earlier.status in ("failed", "feed"):
        return Outcome(earlier.source, earlier.status, earlier.detail)
    return Outcome(earlier.source, "unchanged", earlier.detail)


def _from_feed(outcome: Outcome, feed: str) -> Outcome:
    return Outcome(outcome.source, outcome.status, outcome.detail, feed=feed)


def is_feed(fetched: Fetched) -> bool:
    """RSS or Atom, by the type the server gave it, else by its first element (feeds are often
    served as text/xml, and some as text/html)."""
    if fetched.content_type in FEED_TYPES:
        return True
    head = _PROLOGUE_RE.sub("", (fetched.text or "")[:4096], count=1)
    return bool(_FEED_ROOT_RE.match(head))


def rebuild_seeds(seeds: Path, root: Path, library: Library) -> Path | None:
    """The seeds folder a rebuild after `index add` reads: `seeds`, or None (the library alone) when
    it does not exist and the current build holds no more articles than the library, so none from
    a seeds folder. A rebuild that would drop seeds articles is refused (SeedsError): `index add`
    only adds."""
    if seeds.exists():
        return seeds
    folder = resolve_build(root, must_exist=False)
    if folder is None:
        return None
    try:
        count = int(read_manifest(folder).get("article_count", 0))
    except (IndexUnavailable, ValueError, TypeError):
        count = None
    if count is not None and count <= len(library.articles()):
        return None
    raise SeedsError(
        f"The seeds folder {seeds} does not exist, while the current build at {root} holds articles read from one; "
        "point NEWSQA_SEEDS_DIR or --seeds at it."
    )


__all__ = ["FILE_PREFIX", "IngestReport", "Outcome", "WebIngest", "is_feed", "rebuild_seeds"]
