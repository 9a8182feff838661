"""Fetching news pages and feeds politely, and failing in one sentence that names the URL.

One `Fetcher` holds one HTTP client for a run: it sends a user agent that says who we are, reads
each host's robots.txt once and obeys it, waits between requests to one host, follows a bounded
number of redirects itself (so robots.txt and the wait apply to every hop), stops reading a body
at a size limit, refuses what is not a page or a feed, and decodes the text by the charset the
response or the document declares (else a detector), in NFC.
"""

from __future__ import annotations

import codecs
import re
import time
import unicodedata
import urllib.robotparser
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from newsqa.index.web.options import DEFAULT_USER_AGENT, FetchOptions

# What a page or a feed is served as; anything else (images, PDFs, JSON, video) is refused unread.
TEXT_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "text/xml",
        "application/xml",
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
    }
)
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 65_536
# A document declares its charset near its start: <meta charset>, <meta http-equiv> or <?xml encoding>.
_DECLARED_CHARSET_RE = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)|<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""",
    re.IGNORECASE,
)
_SNIFF_BYTES = 4096


class FetchError(ValueError):
    """A URL that could not be fetched as a page or a feed; the message is one sentence naming it."""

    def __init__(self, url: str, sentence: str) -> None:
        super().__init__(sentence)
        self.url = url


@dataclass(frozen=True)
class Fetched:
    url: str  # as asked
    final_url: str  # after redirects
    status: int
    content_type: str | None  # the media type alone, lower case ("text/html")
    text: str | None  # the decoded document, NFC; None when not modified (304)
    etag: str | None
    last_modified: str | None
    not_modified: bool = False


class Fetcher:
    """Fetches URLs one at a time over one client; close it (or use `with`) when done."""

    def __init__(
        self,
        options: FetchOptions = FetchOptions(),
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.options = options
        self._clock = clock
        self._sleep = sleep
        self._client = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(options.timeout_s),
            follow_redirects=False,  # followed here, so each hop is checked and counted
            headers={"User-Agent": options.user_agent, "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.5"},
        )
        self._robots: dict[str, urllib.robotparser.RobotFileParser | None] = {}
        self._last_request: dict[str, float] = {}

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(self, url: str, etag: str | None = None, last_modified: str | None = None) -> Fetched:
        """The document at `url` (following redirects), or FetchError. With `etag`/`last_modified`
        the request is conditional, and an unchanged document comes back as `not_modified`."""
        current = url
        for _ in range(self.options.max_redirects + 1):
            self._check_allowed(url, current)
            response = self._send(url, current, etag, last_modified)
            try:
                if response.status_code in REDIRECTS and "location" in response.headers:
                    current = urljoin(current, response.headers["location"].strip())
                    continue
                return self._read(url, current, response)
            finally:
                response.close()
        raise FetchError(url, f"{url} redirects more than {self.options.max_redirects} times.")

    # -- one request --------------------------------------------------------------------------

    def _send(self, url: str, current: str, etag: str | None, last_modified: str | None) -> httpx.Response:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        self._wait_for_host(current)
        try:
            request = self._client.build_request("GET", current, headers=headers)
            return self._client.send(request, stream=True)
        except httpx.TimeoutException:
            raise FetchError(url, f"{url} did not answer within {self.options.timeout_s:g} s.") from None
        except httpx.HTTPError as exc:
            raise FetchError(url, f"{url} could not be reached ({_reason(exc)}).") from None

    def _read(self, url: str, final_url: str, response: httpx.Response) -> Fetched:
        etag = response.headers.get("etag")
        last_modified = response.headers.get("last-modified")
        if response.status_code == 304:
            return Fetched(url, final_url, 304, None, None, etag, last_modified, not_modified=True)
        if response.status_code >= 400:
            phrase = f" {response.reason_phrase}" if response.reason_phrase else ""
            raise FetchError(url, f"{url} answered {response.status_code}{phrase}.")
        if response.status_code in REDIRECTS:
            raise FetchError(url, f"{url} redirects without saying where (no Location header).")
        media_type, charset = _content_type(response.headers.get("content-type"))
        if media_type and media_type not in TEXT_TYPES:
            raise FetchError(url, f"{url} is {media_type}, not a web page or a feed.")
        body = self._body(url, response)
        if not media_type and not _looks_like_markup(body):
            raise FetchError(url, f"{url} does not say what it is and is not a web page or a feed.")
        return Fetched(url, final_url, response.status_code, media_type, decode(body, charset), etag, last_modified)

    def _body(self, url: str, response: httpx.Response) -> bytes:
        limit = self.options.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchError(url, f"{url} is {int(declared):,} bytes, over the {limit:,}-byte limit for one page.")
        # The timeout above bounds each read; this bounds the whole body, so a server that trickles
        # bytes cannot hold a run.
        deadline = self._clock() + self.options.timeout_s
        parts: list[bytes] = []
        size = 0
        try:
            # Decoded bytes (gzip, br) are counted, so a small compressed body cannot expand past it.
            for chunk in response.iter_bytes(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise FetchError(url, f"{url} is over the {limit:,}-byte limit for one page.")
                if self._clock() > deadline:
                    raise FetchError(url, f"{url} did not finish sending within {self.options.timeout_s:g} s.")
                parts.append(chunk)
        except httpx.TimeoutException:
            raise FetchError(url, f"{url} did not finish sending within {self.options.timeout_s:g} s.") from None
        except httpx.HTTPError as exc:
            raise FetchError(url, f"{url} broke off while sending ({_reason(exc)}).") from None
        return b"".join(parts)

    # -- politeness -----------------------------------------------------------------------------

    def _wait_for_host(self, url: str) -> None:
        host = urlsplit(url).netloc.lower()
        last = self._last_request.get(host)
        if last is not None:
            wait = last + self.options.per_host_interval_s - self._clock()
            if wait > 0:
                self._sleep(wait)
        self._last_request[host] = self._clock()

    def _check_allowed(self, url: str, current: str) -> None:
        parts = urlsplit(current)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            shown = url if current == url else f"{url} (redirected to {current})"
            raise FetchError(url, f"{shown} is not an http or https URL.")
        if not self.options.respect_robots:
            return
        robots = self._robots_for(parts.scheme, parts.netloc)
        if robots is not None and not robots.can_fetch(self.options.user_agent, current):
            raise FetchError(url, f"{current} is disallowed by {parts.scheme}://{parts.netloc}/robots.txt for {_agent(self.options.user_agent)}.")

    def _robots_for(self, scheme: str, netloc: str) -> urllib.robotparser.RobotFileParser | None:
        """The host's rules, read once; None (everything allowed) when it has no robots.txt or it
        cannot be read: a host that is down fails the page's own request, with its own sentence."""
        key = f"{scheme}://{netloc.lower()}"
        if key in self._robots:
            return self._robots[key]
        rules = None
        self._wait_for_host(key)
        try:
            # Redirects followed here (to https, to www.): robots.txt rules travel with them.
            with self._client.stream("GET", f"{key}/robots.txt", follow_redirects=True) as response:
                if response.status_code == 200:
                    body = b"".join(_limited(response.iter_bytes(_CHUNK), 500_000))
                    rules = urllib.robotparser.RobotFileParser()
                    rules.parse(body.decode("utf-8", errors="replace").splitlines())
        except httpx.HTTPError:
            rules = None
        self._robots[key] = rules
        return rules


def _limited(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
    """The chunks up to `limit` bytes: a robots.txt is a few KB, and one that is not stops there."""
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            return
        yield chunk


def _agent(user_agent: str) -> str:
    return user_agent.split("/")[0].split()[0] if user_agent.strip() else "this user agent"


def _reason(exc: httpx.HTTPError) -> str:
    text = str(exc).strip().rstrip(".")
    return text or type(exc).__name__


def _content_type(header: str | None) -> tuple[str | None, str | None]:
    """(media type, charset) of a Content-Type header; either None when not given."""
    if not header:
        return None, None
    media_type, _, params = header.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'")
    return media_type.strip().lower() or None, charset


def _looks_like_markup(body: bytes) -> bool:
    head = body[:_SNIFF_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(b"<") and b"\x00" not in head


def _codec(name: str | None) -> str | None:
    """Python's codec for a charset label, None for a label it does not know."""
    if not name:
        return None
    label = name.strip().lower()
    # WHATWG: a page labelled latin-1 or ascii is read as windows-1252, as every browser does.
    label = {"iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252"}.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def declared_charset(body: bytes) -> str | None:
    """The charset a document names in its first bytes (<meta charset>, http-equiv, <?xml encoding>)."""
    match = _DECLARED_CHARSET_RE.search(body[:_SNIFF_BYTES])
    if not match:
        return None
    return (match.group(1) or match.group(2)).decode("ascii", errors="ignore")


def decode(body: bytes, header_charset: str | None = None) -> str:
    """The document's text in NFC: by a byte-order mark, else the header's charset, else the one it
    declares, else the one charset-normalizer finds most likely, else UTF-8 with replacements.
    NFC matters for Vietnamese: windows-1258 writes tones as combining marks, and the rest of the
    product matches words in NFC."""
    if body.startswith(codecs.BOM_UTF8):
        text = body[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    else:
        codec = _codec(header_charset) or _codec(declared_charset(body))
        if codec is None:
            from charset_normalizer import from_bytes

            best = from_bytes(body).best()
            codec = _codec(best.encoding) if best is not None else None
        text = body.decode(codec or "utf-8", errors="replace")
    return unicodedata.normalize("NFC", text)


__all__ = ["DEFAULT_USER_AGENT", "FetchError", "FetchOptions", "Fetched", "Fetcher", "decode", "declared_charset"]
