"""RSS/Atom feeds: reading them, the registry of polled feeds, and a polling round with its
conditional GETs (index/web/feeds.py, feed_registry.py, feed_poll.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from newsqa.index.web.feed_poll import IngestResult, ItemOutcome, poll_feeds
from newsqa.index.web.feed_registry import FeedRegistry, FeedUrlError, normalise_feed_url
from newsqa.index.web.feeds import NotAFeedError, parse_feed

RSS = """<?xml version="1.0" encoding="windows-1258"?>
<rss version="2.0">
  <channel>
    <title>Thời sự - Báo Tin Nhanh</title>
    <link>https://tinnhanh.example/thoi-su</link>
    <description>Tin thời sự mới nhất</description>
    <item>
      <title>Hà Nội khởi công tuyến đường sắt đô thị số 5</title>
      <link>/thoi-su/ha-noi-khoi-cong-duong-sat-so-5.html</link>
      <pubDate>Mon, 06 May 2024 08:30:00 +0700</pubDate>
      <guid isPermaLink="false">ts-1001</guid>
    </item>
    <item>
      <title>  Giá xăng   giảm nhẹ từ chiều nay </title>
      <link>gia-xang-giam.html</link>
    </item>
    <item>
      <title>Bản tin không có đường dẫn</title>
      <description>Chỉ có mô tả.</description>
    </item>
    <item>
      <title>Bài có guid là đường dẫn</title>
      <guid isPermaLink="true">https://tinnhanh.example/kinh-te/lai-suat.html</guid>
    </item>
  </channel>
</rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Báo Điện Tử Mẫu</title>
  <id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>
  <updated>2024-05-06T09:00:00+07:00</updated>
  <entry>
    <title>Đồng bằng sông Cửu Long chống hạn mặn</title>
    <link rel="alternate" href="/xa-hoi/chong-han-man"/>
    <id>urn:uuid:1</id>
    <published>2024-05-05T07:15:00+07:00</published>
    <updated>2024-05-06T09:00:00+07:00</updated>
  </entry>
  <entry>
    <title>Lễ hội pháo hoa Đà Nẵng</title>
    <link rel="alternate" href="https://other.example/van-hoa/phao-hoa"/>
    <id>urn:uuid:2</id>
    <updated>2024-05-04</updated>
  </entry>
  <entry>
    <title>Mục không có liên kết</title>
    <id>urn:uuid:3</id>
  </entry>
</feed>"""


def test_rss_items_get_absolute_links_iso_dates_and_clean_titles():
    feed = parse_feed(RSS, "https://tinnhanh.example/rss/thoi-su.rss")
    assert feed.title == "Thời sự - Báo Tin Nhanh"
    assert [(item.link, item.title, item.published) for item in feed.items] == [
        (
            "https://tinnhanh.example/thoi-su/ha-noi-khoi-cong-duong-sat-so-5.html",
            "Hà Nội khởi công tuyến đường sắt đô thị số 5",
            "2024-05-06T08:30:00+07:00",  # the feed's own offset, not moved to UTC
        ),
        ("https://tinnhanh.example/rss/gia-xang-giam.html", "Giá xăng giảm nhẹ từ chiều nay", None),  # no date
        ("https://tinnhanh.example/kinh-te/lai-suat.html", "Bài có guid là đường dẫn", None),
    ]  # the item without a link is left out


def test_atom_entries_read_alternate_links_and_published_before_updated():
    feed = parse_feed(ATOM, "http://127.0.0.1:8080/feeds/atom.xml")
    assert feed.title == "Báo Điện Tử Mẫu"
    assert [(item.link, item.title, item.published) for item in feed.items] == [
        ("http://127.0.0.1:8080/xa-hoi/chong-han-man", "Đồng bằng sông Cửu Long chống hạn mặn", "2024-05-05T07:15:00+07:00"),
        ("https://other.example/van-hoa/phao-hoa", "Lễ hội pháo hoa Đà Nẵng", "2024-05-04"),  # a day stays a day
    ]


@pytest.mark.parametrize(
    "text",
    [
        "<!doctype html><html><head><title>Trang chủ</title></head><body><p>Tin tức</p></body></html>",
        '{"items": []}',
        "",
        "http://127.0.0.1:1/not-fetched",  # a document that looks like a URL is never fetched
    ],
)
def test_a_document_that_is_not_a_feed_is_refused_with_one_sentence(text):
    with pytest.raises(NotAFeedError) as caught:
        parse_feed(text, "http://127.0.0.1:8080/trang-chu")
    assert str(caught.value) == "http://127.0.0.1:8080/trang-chu is not an RSS or Atom feed."
    assert caught.value.url == "http://127.0.0.1:8080/trang-chu"


def test_feed_urls_are_normalised_and_non_http_refused():
    assert normalise_feed_url(" HTTPS://VnExpress.NET:443/rss/thoi-su.rss#top ") == "https://vnexpress.net/rss/thoi-su.rss"
    assert normalise_feed_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080/"
    assert normalise_feed_url("http://site.example/feed?cat=The-Thao") == "http://site.example/feed?cat=The-Thao"
    for bad in ["ftp://site.example/rss", "/tmp/feed.xml", "", "http://"]:
        with pytest.raises(FeedUrlError):
            normalise_feed_url(bad)


def test_registry_adds_once_lists_records_and_removes(tmp_path):
    registry = FeedRegistry(tmp_path / "feeds.sqlite")
    first, created = registry.add("https://Site.example/rss")
    assert created and first.url == "https://site.example/rss" and first.title is None and first.last_polled is None
    again, created = registry.add("https://site.example/rss#x", title="Tin mới")
    assert not created and again.title == "Tin mới"
    registry.add("http://other.example/atom.xml")
    assert [record.url for record in registry.list()] == ["https://site.example/rss", "http://other.example/atom.xml"]

    registry.record_success(
        "https://site.example/rss", status="new 2, updated 0, unchanged 0", title=None, etag='"abc"',
        last_modified="Mon, 06 May 2024 01:30:00 GMT", indexed=[("https://site.example/a", None), ("https://site.example/b", "2024-05-06")],
    )
    record = registry.get("https://site.example/rss")
    assert record is not None
    assert (record.title, record.etag, record.last_status, record.last_error, record.items_seen) == (
        "Tin mới", '"abc"', "new 2, updated 0, unchanged 0", None, 2,
    )
    assert record.last_polled is not None and record.last_polled.endswith("+00:00")  # UTC
    registry.record_failure("https://site.example/rss", "https://site.example/rss answered 503 Service Unavailable.")
    record = registry.get("https://site.example/rss")
    assert record is not None and record.last_error == record.last_status and record.etag == '"abc"'  # validators kept

    assert registry.remove("https://SITE.example/rss") and not registry.remove("https://site.example/rss")
    assert [record.url for record in registry.list()] == ["http://other.example/atom.xml"]
    assert registry.seen_items("https://site.example/rss") == {}
    with sqlite3.connect(tmp_path / "feeds.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@dataclass
class Served:
    text: str | None
    final_url: str
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False


class FetchFailed(Exception):
    pass


class FakeFetcher:
    """Serves feed documents by URL, answering 304 when the validators match."""

    def __init__(self, documents: dict[str, str]) -> None:
        self.documents = documents
        self.asked: list[tuple[str, str | None, str | None]] = []

    def get(self, url: str, etag: str | None = None, last_modified: str | None = None) -> Served:
        self.asked.append((url, etag, last_modified))
        if url not in self.documents:
            raise FetchFailed(f"{url} answered 404 Not Found.")
        tag = f'"{hash(self.documents[url]) & 0xFFFF:x}"'
        if etag == tag:
            return Served(None, url, tag, None, not_modified=True)
        return Served(self.documents[url], url, tag, "Mon, 06 May 2024 01:30:00 GMT")


class FakeIngest:
    def __init__(self, fail: frozenset[str] = frozenset()) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail
        self.stored: set[str] = set()

    def add_urls(self, urls: Sequence[str]) -> IngestResult:
        self.calls.append(list(urls))
        outcomes = {}
        for url in urls:
            if url in self.fail:
                outcomes[url] = ItemOutcome("failed", f"{url} timed out after 20 s.")
            else:
                outcomes[url] = ItemOutcome("updated" if url in self.stored else "new")
                self.stored.add(url)
        return IngestResult(outcomes, build="rebuilt")


def rss(*links: str, dated: dict[str, str] | None = None) -> str:
    items = "".join(
        f"<item><title>Bài {i}</title><link>{link}</link>"
        + (f"<pubDate>{dated[link]}</pubDate>" if dated and link in dated else "")
        + "</item>"
        for i, link in enumerate(links)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Tin</title>{items}</channel></rss>'


def test_a_round_indexes_new_items_once_then_asks_conditionally(tmp_path):
    registry = FeedRegistry(tmp_path / "feeds.sqlite")
    registry.add("http://a.example/rss")
    registry.add("http://b.example/missing.rss")
    fetcher = FakeFetcher({"http://a.example/rss": rss("/1", "/2")})
    ingest = FakeIngest()

    first = poll_feeds(registry, fetcher, ingest, fetch_errors=(FetchFailed,))
    assert [(r.url, r.status) for r in first.feeds] == [
        ("http://a.example/rss", "new 2, updated 0, unchanged 0"),
        ("http://b.example/missing.rss", "failed: http://b.example/missing.rss answered 404 Not Found."),
    ]
    assert ingest.calls == [["http://a.example/1", "http://a.example/2"]] and first.build == "rebuilt"

    second = poll_feeds(registry, fetcher, ingest, fetch_errors=(FetchFailed,))
    assert fetcher.asked[-2][1] is not None and fetcher.asked[-2][2] is not None  # If-None-Match, If-Modified-Since
    assert second.feeds[0].not_modified and second.feeds[0].unchanged == 2
    assert len(ingest.calls) == 1 and second.build is None  # nothing fetched, nothing rebuilt

    fetcher.documents["http://a.example/rss"] = rss("/3", "/1", "/2")
    third = poll_feeds(registry, fetcher, ingest, fetch_errors=(FetchFailed,))
    assert third.feeds[0].status == "new 1, updated 0, unchanged 2"
    assert ingest.calls[-1] == ["http://a.example/3"]  # only the new story is fetched
    assert [record.last_status for record in registry.list()] == [
        "new 1, updated 0, unchanged 2", "http://b.example/missing.rss answered 404 Not Found.",
    ]
    assert registry.get("http://a.example/rss").items_seen == 3


def test_a_redated_item_is_fetched_again_and_a_failed_item_retried(tmp_path):
    registry = FeedRegistry(tmp_path / "feeds.sqlite")
    registry.add("http://a.example/rss")
    dated = {"/1": "Mon, 06 May 2024 08:30:00 +0700"}
    fetcher = FakeFetcher({"http://a.example/rss": rss("/1", "/2", dated=dated)})
    ingest = FakeIngest(fail=frozenset({"http://a.example/2"}))

    first = poll_feeds(registry, fetcher, ingest, fetch_errors=(FetchFailed,)).feeds[0]
    assert first.status == "new 1, updated 0, unchanged 0, failed 1"
    assert first.failed_items == (("http://a.example/2", "http://a.example/2 timed out after 20 s."),)
    assert registry.get("http://a.example/rss").etag is None  # so the next round reads the feed again

    ingest.fail = frozenset()
    dated["/1"] = "Mon, 06 May 2024 10:00:00 +0700"  # the story was edited
    fetcher.documents["http://a.example/rss"] = rss("/1", "/2", dated=dated)
    second = poll_feeds(registry, fetcher, ingest, fetch_errors=(FetchFailed,)).feeds[0]
    assert fetcher.asked[-1][1] is None  # no validators were kept
    assert ingest.calls[-1] == ["http://a.example/1", "http://a.example/2"]
    assert second.status == "new 1, updated 1, unchanged 0"


def test_a_failing_ingest_fails_the_round_but_not_the_loop(tmp_path):
    registry = FeedRegistry(tmp_path / "feeds.sqlite")
    registry.add("http://a.example/rss")
    fetcher = FakeFetcher({"http://a.example/rss": rss("/1")})

    class Broken:
        def add_urls(self, urls: Sequence[str]) -> IngestResult:
            raise RuntimeError("the embedding model is not available")

    result = poll_feeds(registry, fetcher, Broken(), fetch_errors=(FetchFailed,)).feeds[0]
    assert result.failed_items == (("http://a.example/1", "the embedding model is not available"),)
    assert registry.get("http://a.example/rss").items_seen == 0


def test_a_feed_url_serving_a_page_is_reported_as_not_a_feed(tmp_path):
    registry = FeedRegistry(tmp_path / "feeds.sqlite")
    registry.add("http://a.example/")
    fetcher = FakeFetcher({"http://a.example/": "<html><body><p>Trang chủ</p></body></html>"})
    report = poll_feeds(registry, fetcher, FakeIngest(), fetch_errors=(FetchFailed,))
    assert report.all_failed and report.feeds[0].status == "failed: http://a.example/ is not an RSS or Atom feed."


def test_a_round_against_a_site_asks_conditionally_and_adds_what_appears(tmp_path):
    """Over HTTP on 127.0.0.1, with the real fetcher and ingest: the second round's conditional GET
    gets a 304 and fetches no story; a story that then appears is the only one fetched, and a feed
    that 404s is reported by its URL while the other still runs."""
    from newsqa.index.web.fetch import FetchError, Fetcher
    from newsqa.index.web.ingest import WebIngest
    from newsqa.index.web.library import Library
    from newsqa.index.web.options import FetchOptions
    from tests.index.feed_site import FEED, GONE, FeedSite
    from tests.index.news_site import EXAMS, RAIL, RICE

    registry = FeedRegistry(tmp_path / "feeds.sqlite")
    library = Library.of(tmp_path)
    rebuilds: list[int] = []

    def round_() -> object:
        with Fetcher(FetchOptions(per_host_interval_s=0)) as fetcher:
            ingest = WebIngest(library, fetcher, rebuild=lambda: rebuilds.append(1) or f"rebuild {len(rebuilds)}")
            return poll_feeds(registry, fetcher, ingest, fetch_errors=(FetchError,))

    with FeedSite([RICE, EXAMS]) as site:
        registry.add(site.url(FEED))
        registry.add(site.url(GONE))

        first = round_()
        assert [r.url for r in first.feeds] == [site.url(FEED), site.url(GONE)]
        assert first.feeds[0].status == "new 2, updated 0, unchanged 0"
        assert first.feeds[1].status == f"failed: {site.url(GONE)} answered 404 Not Found."
        assert first.build == "rebuild 1"
        assert {a.url for a in library.articles()} == {site.url(RICE.path), site.url(EXAMS.path)}

        site.asked.clear()
        second = round_()
        feed_asks = [ask for ask in site.asked if ask[0] == FEED]
        assert feed_asks and feed_asks[0][1] and feed_asks[0][2] == "Tue, 14 May 2024 01:30:00 GMT"  # If-None-Match, If-Modified-Since
        assert second.feeds[0].not_modified and second.feeds[0].status.startswith("unchanged")
        assert not {RICE.path, EXAMS.path} & {ask[0] for ask in site.asked}  # no story fetched again
        assert second.build is None and len(rebuilds) == 1

        site.stories.insert(0, RAIL)
        site.asked.clear()
        third = round_()
        assert third.feeds[0].status == "new 1, updated 0, unchanged 2"
        assert [ask[0] for ask in site.asked if ask[0].endswith(".html")] == [RAIL.path]
        assert third.build == "rebuild 2"
        assert registry.get(site.url(FEED)).items_seen == 3
        assert registry.get(site.url(FEED)).title == "Báo Tin Nhanh - Thời sự"


def test_a_feed_removed_while_it_is_polled_is_not_brought_back(tmp_path):
    registry = FeedRegistry(tmp_path / "feeds.sqlite")
    registry.add("http://a.example/rss")
    fetcher = FakeFetcher({"http://a.example/rss": rss("/1")})

    class RemovesTheFeed(FakeIngest):
        def add_urls(self, urls: Sequence[str]) -> IngestResult:
            registry.remove("http://a.example/rss")  # `newsqa feeds remove` from another terminal
            return super().add_urls(urls)

    report = poll_feeds(registry, fetcher, RemovesTheFeed(), fetch_errors=(FetchFailed,))
    assert report.feeds == [] and registry.list() == [] and registry.seen_items("http://a.example/rss") == {}
