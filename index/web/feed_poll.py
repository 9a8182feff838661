"""One polling round over the registered feeds: read each politely, index what is new, rebuild once.

Each feed is asked with a conditional GET (the ETag and Last-Modified its last read returned), so a
feed that has not changed costs one small 304. A changed feed is parsed, and only its item links not
indexed before (or whose date the feed changed) go to the ingest step; every feed's links go in one
call, so the round rebuilds the index at most once, and only when an article changed. A feed that
fails is reported by its URL and the others still run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from newsqa.index.web.feed_registry import FeedRecord, FeedRegistry, utc_now
from newsqa.index.web.feeds import FeedItem, NotAFeedError, parse_feed

log = logging.getLogger(__name__)

ItemStatus = Literal["new", "updated", "unchanged", "failed"]


class FetchedFeed(Protocol):
    """What the fetcher returns (index/web/fetch.py's Fetched): the fields a poll reads."""

    final_url: str
    text: str | None
    etag: str | None
    last_modified: str | None
    not_modified: bool


class FeedFetcher(Protocol):
    def get(self, url: str, etag: str | None = None, last_modified: str | None = None) -> FetchedFeed: ...


@dataclass(frozen=True)
class ItemOutcome:
    status: ItemStatus
    error: str | None = None  # the sentence, for a failed item


@dataclass(frozen=True)
class IngestResult:
    outcomes: Mapping[str, ItemOutcome]  # by the URL handed in
    build: str | None = None  # what the rebuild said, when there was one


class Ingest(Protocol):
    """Fetches and stores the given article URLs, then rebuilds once if any article changed."""

    def add_urls(self, urls: Sequence[str]) -> IngestResult: ...


@dataclass(frozen=True)
class FeedResult:
    url: str
    title: str | None
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed_items: tuple[tuple[str, str], ...] = ()  # (item link, sentence)
    error: str | None = None  # the sentence when the feed itself could not be read
    not_modified: bool = False  # the server answered 304

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def status(self) -> str:
        """The line `newsqa feeds list` shows and a round prints."""
        if self.error is not None:
            return f"failed: {self.error}"
        if self.not_modified:
            return "unchanged (not modified since the last poll)"
        counts = f"new {self.new}, updated {self.updated}, unchanged {self.unchanged}"
        return counts + (f", failed {len(self.failed_items)}" if self.failed_items else "")


@dataclass(frozen=True)
class RoundReport:
    feeds: list[FeedResult] = field(default_factory=list)
    build: str | None = None

    @property
    def all_failed(self) -> bool:
        return bool(self.feeds) and all(result.failed for result in self.feeds)


@dataclass
class _Read:
    """A feed whose document was read this round, waiting for its items' outcomes."""

    record: FeedRecord
    title: str | None
    etag: str | None
    last_modified: str | None
    wanted: list[FeedItem]  # items handed to the ingest step
    already: int  # items indexed in an earlier round and not changed since


def poll_feeds(
    registry: FeedRegistry,
    fetcher: FeedFetcher,
    ingest: Ingest,
    fetch_errors: tuple[type[Exception], ...] = (),
    now: Callable[[], str] = utc_now,
) -> RoundReport:
    """Polls every registered feed once. `fetch_errors` are the fetcher's own failures (FetchError),
    reported by their message; any other exception from the fetcher is a bug and propagates."""
    results: dict[str, FeedResult] = {}
    reads: list[_Read] = []
    for record in registry.list():
        polled_at = now()
        try:
            fetched = fetcher.get(record.url, etag=record.etag, last_modified=record.last_modified)
            if fetched.not_modified:
                registry.record_success(
                    record.url, status=FeedResult(record.url, record.title, not_modified=True).status,
                    title=None, etag=record.etag, last_modified=record.last_modified, polled_at=polled_at,
                )
                results[record.url] = FeedResult(record.url, record.title, unchanged=record.items_seen, not_modified=True)
                continue
            feed = parse_feed(fetched.text or "", fetched.final_url or record.url)
        except (NotAFeedError, *fetch_errors) as exc:
            sentence = str(exc)
            registry.record_failure(record.url, sentence, polled_at=polled_at)
            results[record.url] = FeedResult(record.url, record.title, error=sentence)
            continue
        seen = registry.seen_items(record.url)
        # A story the feed re-dates was edited: fetch it again. Others indexed before are left alone.
        wanted = [item for item in feed.items if item.link not in seen or item.published != seen[item.link]]
        reads.append(_Read(record, feed.title, fetched.etag, fetched.last_modified, wanted, len(feed.items) - len(wanted)))

    links = list(dict.fromkeys(item.link for read in reads for item in read.wanted))
    ingested = _ingest(ingest, links)
    for read in reads:
        results[read.record.url] = _settle(registry, read, ingested, now())
    return RoundReport([results[record.url] for record in registry.list() if record.url in results], ingested.build)


def _ingest(ingest: Ingest, links: list[str]) -> IngestResult:
    if not links:
        return IngestResult({})
    try:
        return ingest.add_urls(links)
    except Exception as exc:  # a failed rebuild fails this round's items, not the polling loop
        log.warning("indexing the feeds' items failed", exc_info=True)
        sentence = str(exc).strip() or type(exc).__name__
        return IngestResult({link: ItemOutcome("failed", sentence) for link in links})


def _settle(registry: FeedRegistry, read: _Read, ingested: IngestResult, polled_at: str) -> FeedResult:
    counts = {"new": 0, "updated": 0, "unchanged": read.already}
    failed: list[tuple[str, str]] = []
    indexed: list[tuple[str, str | None]] = []
    for item in read.wanted:
        outcome = ingested.outcomes.get(item.link) or ItemOutcome("failed", f"{item.link} was not indexed.")
        if outcome.status == "failed":
            failed.append((item.link, outcome.error or f"{item.link} could not be indexed."))
            continue
        counts[outcome.status] += 1
        indexed.append((item.link, item.published))
    result = FeedResult(
        read.record.url, read.title or read.record.title,
        new=counts["new"], updated=counts["updated"], unchanged=counts["unchanged"], failed_items=tuple(failed),
    )
    # With an item failed, the old validators stay: the next poll then reads the feed again (not a
    # 304) and retries that item, while the items indexed now are skipped as seen.
    keep_old = bool(failed)
    registry.record_success(
        read.record.url,
        status=result.status,
        title=read.title,
        etag=read.record.etag if keep_old else read.etag,
        last_modified=read.record.last_modified if keep_old else read.last_modified,
        indexed=indexed,
        polled_at=polled_at,
    )
    return result
