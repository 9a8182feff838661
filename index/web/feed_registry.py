"""The feeds an operator registered, and what the last poll of each found, in <index_dir>/feeds.sqlite.

One small SQLite file beside the builds: `newsqa feeds add` writes it while a `newsqa feeds run
--every` may be polling, so it runs in WAL mode (a reader never waits for a writer) with a busy
timeout. Besides each feed's state (the validators for the next conditional GET, the last status),
it keeps the item links already indexed from each feed, so a changed feed costs one fetch per new
item rather than one per item it lists.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

FILE = "feeds.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds (
    url TEXT PRIMARY KEY,
    added_at TEXT NOT NULL,
    title TEXT,
    etag TEXT,
    last_modified TEXT,
    last_polled TEXT,
    last_status TEXT,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS items (
    feed_url TEXT NOT NULL REFERENCES feeds (url) ON DELETE CASCADE,
    link TEXT NOT NULL,
    published TEXT,
    first_seen TEXT NOT NULL,
    PRIMARY KEY (feed_url, link)
);
"""


class FeedUrlError(ValueError):
    """A feed URL that cannot be polled (not http or https, no host); one sentence."""


@dataclass(frozen=True)
class FeedRecord:
    url: str
    added_at: str  # ISO 8601, UTC
    title: str | None
    etag: str | None  # validators of the last feed document read, sent back on the next poll
    last_modified: str | None
    last_polled: str | None  # ISO 8601, UTC; None until the first poll
    last_status: str | None  # "new 3, updated 1, unchanged 5", or the failure sentence
    last_error: str | None  # the failure sentence of the last poll; None when it succeeded
    items_seen: int  # item links indexed from this feed so far


def normalise_feed_url(url: str) -> str:
    """One spelling per feed, so adding it twice (or with another case of host) finds the same row.

    Scheme and host lower-cased, the default port and the fragment dropped, an empty path made "/";
    the query stays, since sites select feeds by it (?cat=thoi-su).
    """
    text = url.strip()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise FeedUrlError(f"{text or '(empty)'} is not an http or https URL.")
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError as exc:
        raise FeedUrlError(f"{text} has an invalid port.") from exc
    netloc = host if port is None or port == {"http": 80, "https": 443}[scheme] else f"{host}:{port}"
    if parts.username or parts.password:
        raise FeedUrlError(f"{text} carries a user name or password; feeds are read without them.")
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class FeedRegistry:
    """The registered feeds. Each call opens its own connection: cheap next to a network fetch, and it
    leaves no connection shared between threads or held across a long poll."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=30.0)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.executescript(_SCHEMA)
            with connection:  # one transaction: committed on success, rolled back on an exception
                yield connection
        finally:
            connection.close()

    def add(self, url: str, title: str | None = None) -> tuple[FeedRecord, bool]:
        """Registers the feed (its normalised URL) and returns it, with True when it is new.

        Adding a feed again keeps what its polls learned; a title given replaces the stored one.
        """
        key = normalise_feed_url(url)
        with self._connect() as db:
            cursor = db.execute(
                "INSERT INTO feeds (url, added_at, title) VALUES (?, ?, ?) ON CONFLICT (url) DO NOTHING",
                (key, utc_now(), title),
            )
            created = cursor.rowcount == 1
            if not created and title:
                db.execute("UPDATE feeds SET title = ? WHERE url = ?", (title, key))
        record = self.get(key)
        assert record is not None
        return record, created

    def remove(self, url: str) -> bool:
        """Forgets the feed and its seen items; False when it was not registered. The articles
        already indexed from it stay in the library."""
        key = normalise_feed_url(url)
        with self._connect() as db:
            db.execute("DELETE FROM items WHERE feed_url = ?", (key,))
            return db.execute("DELETE FROM feeds WHERE url = ?", (key,)).rowcount == 1

    def get(self, url: str) -> FeedRecord | None:
        key = normalise_feed_url(url)
        return next(iter(self._select("WHERE f.url = ?", (key,))), None)

    def list(self) -> list[FeedRecord]:
        """Every feed, in the order they were added."""
        return self._select("", ())

    def _select(self, where: str, args: tuple) -> list[FeedRecord]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT f.url, f.added_at, f.title, f.etag, f.last_modified, f.last_polled, f.last_status,"
                " f.last_error, (SELECT COUNT(*) FROM items i WHERE i.feed_url = f.url)"
                f" FROM feeds f {where} ORDER BY f.added_at, f.rowid",
                args,
            ).fetchall()
        return [FeedRecord(*row) for row in rows]

    def seen_items(self, url: str) -> dict[str, str | None]:
        """Item link → the publication time the feed gave it when it was indexed."""
        key = normalise_feed_url(url)
        with self._connect() as db:
            return dict(db.execute("SELECT link, published FROM items WHERE feed_url = ?", (key,)).fetchall())

    def record_success(
        self,
        url: str,
        *,
        status: str,
        title: str | None,
        etag: str | None,
        last_modified: str | None,
        indexed: Iterable[tuple[str, str | None]] = (),
        polled_at: str | None = None,
    ) -> None:
        """A poll that read the feed (or learnt it had not changed): its validators, its status, and
        the item links now indexed, (link, published) each."""
        key = normalise_feed_url(url)
        now = polled_at or utc_now()
        with self._connect() as db:
            updated = db.execute(
                "UPDATE feeds SET title = COALESCE(?, title), etag = ?, last_modified = ?, last_polled = ?,"
                " last_status = ?, last_error = NULL WHERE url = ?",
                (title, etag, last_modified, now, status, key),
            ).rowcount
            if not updated:  # removed (`feeds remove`) while this poll ran: nothing to remember
                return
            db.executemany(
                "INSERT INTO items (feed_url, link, published, first_seen) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (feed_url, link) DO UPDATE SET published = excluded.published",
                [(key, link, published, now) for link, published in indexed],
            )

    def record_failure(self, url: str, sentence: str, polled_at: str | None = None) -> None:
        """A poll that could not read the feed: the validators stay, so the next poll asks as before."""
        key = normalise_feed_url(url)
        with self._connect() as db:
            db.execute(
                "UPDATE feeds SET last_polled = ?, last_status = ?, last_error = ? WHERE url = ?",
                (polled_at or utc_now(), sentence, sentence, key),
            )
