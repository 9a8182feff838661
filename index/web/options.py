"""How politely and how far fetching goes: plain values, importable without the HTTP client (the
settings read them for every command; only `newsqa index add` and `newsqa feeds` fetch)."""

from __future__ import annotations

from dataclasses import dataclass

# Sites ask crawlers to say who runs them: an operator adds a contact (NEWSQA_FETCH_USER_AGENT).
DEFAULT_USER_AGENT = "newsqa/0.1 (news question answering bot)"


@dataclass(frozen=True)
class FetchOptions:
    """The defaults suit a news site; tests shrink them."""

    user_agent: str = DEFAULT_USER_AGENT  # its first word is the name robots.txt rules are read for
    timeout_s: float = 20.0  # for connecting, and for the whole response once connected
    max_bytes: int = 5_000_000  # a news page is ~100 KB-2 MB with its markup; more is not an article
    max_redirects: int = 5
    per_host_interval_s: float = 1.0  # at least this long between two requests to one host
    respect_robots: bool = True


__all__ = ["DEFAULT_USER_AGENT", "FetchOptions"]
