"""The news site of tests/index/news_site.py with a feed that changes and answers conditional GETs.

The feed at FEED lists the stories in `FeedSite.stories` (newest first); it carries an ETag and a
Last-Modified and answers 304 when a request's If-None-Match names its current ETag. Each request's
path and validators are recorded, so a test can see what a poll asked and what it fetched. Every
other path (the story pages, robots.txt, a 404) is the news site's.
"""

from __future__ import annotations

import hashlib
import html
import threading

from tests.index import news_site
from tests.index.news_site import EXAMS, RAIL, RICE, Story

FEED = "/rss/thoi-su.rss"
GONE = "/rss/da-go.rss"  # a feed URL that 404s
LAST_MODIFIED = "Tue, 14 May 2024 01:30:00 GMT"
DATES = {
    RAIL.path: "Tue, 14 May 2024 08:30:00 +0700",
    RICE.path: "Mon, 13 May 2024 15:05:00 +0700",
    EXAMS.path: "Sun, 12 May 2024 10:00:00 +0700",
}


def feed_xml(stories: list[Story]) -> str:
    """RSS 2.0 with relative links, as some CMSs write them."""
    items = "".join(
        f"<item><title>{html.escape(story.title)}</title><link>{story.path}</link>"
        f"<description>{html.escape(story.sapo)}</description><pubDate>{DATES[story.path]}</pubDate></item>"
        for story in stories
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{html.escape(news_site.SITE_NAME)} - Thời sự</title><link>/thoi-su</link>{items}</channel></rss>"
    )


class _Handler(news_site._Handler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.server.asked.append((path, self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")))
        if path != FEED:
            super().do_GET()
            return
        self.server.requests.append(path)
        body = feed_xml(self.server.stories).encode()
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", LAST_MODIFIED)
        self.end_headers()
        self.wfile.write(body)


class _Server(news_site._Server):
    stories: list[Story]
    asked: list[tuple[str, str | None, str | None]]


class FeedSite(news_site.NewsSite):
    """In a `with` block: serves on a free port of 127.0.0.1; `stories` may change between polls."""

    def __init__(self, stories: list[Story] | None = None) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.requests = []
        self._server.asked = []
        self._server.stories = list(stories if stories is not None else [RICE, EXAMS])
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._server.base = self.base
        self._thread = threading.Thread(target=self._server.serve_forever, name="feed-site", daemon=True)

    @property
    def stories(self) -> list[Story]:
        return self._server.stories

    @property
    def asked(self) -> list[tuple[str, str | None, str | None]]:
        """(path, If-None-Match, If-Modified-Since) of each request, in order."""
        return self._server.asked
