"""`newsqa feeds` as a person runs it, against a news site on 127.0.0.1 (tests/index/feed_site.py):
add, list, remove, a round that indexes what is new, and a loop that Ctrl+C stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsqa.bot.cli import cli
from tests.conftest import REPO, SEEDS
from tests.index.feed_site import FEED, GONE, FeedSite
from tests.index.news_site import EXAMS, RAIL, RICE


@pytest.fixture
def site():
    with FeedSite([RICE, EXAMS]) as running:
        yield running


@pytest.fixture
def env(tmp_path, model_path, monkeypatch) -> dict[str, str]:
    values = {
        "NEWSQA_EMBEDDING_MODEL": model_path,
        "NEWSQA_INDEX_DIR": str(tmp_path / "index"),
        "NEWSQA_SEEDS_DIR": str(SEEDS),
        "NEWSQA_FETCH_HOST_INTERVAL": "0",
        "HF_HUB_OFFLINE": "1",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return os.environ.copy()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def newsqa(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "newsqa", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_feeds_add_checks_the_feed_and_list_and_remove_show_it(site, env):
    code, out, _ = run("feeds", "add", site.url(FEED))
    assert code == 0 and out == f"added: {site.url(FEED)} (Báo Tin Nhanh - Thời sự; 2 stories)\n"
    code, out, _ = run("feeds", "add", site.url(FEED), site.url(RAIL.path), site.url(GONE))
    assert code == 0  # one of them is a feed
    assert out.splitlines() == [
        f"already registered: {site.url(FEED)} (Báo Tin Nhanh - Thời sự; 2 stories)",
        f"failed: {site.url(RAIL.path)} is not an RSS or Atom feed.",
        f"failed: {site.url(GONE)} answered 404 Not Found.",
    ]
    code, out, _ = run("feeds", "add", site.url(RAIL.path))
    assert code == 1 and out == f"failed: {site.url(RAIL.path)} is not an RSS or Atom feed.\n"

    code, out, _ = run("feeds", "list")
    assert code == 0
    assert out.splitlines() == [
        site.url(FEED),
        "  title:       Báo Tin Nhanh - Thời sự",
        "  last polled: never",
        "  last status: -",
        "  indexed:     0 stories",
    ]
    code, out, _ = run("feeds", "list", "--json")
    assert [(feed["url"], feed["title"], feed["items_seen"]) for feed in json.loads(out)] == [
        (site.url(FEED), "Báo Tin Nhanh - Thời sự", 0)
    ]

    code, _, err = run("feeds", "remove", site.url(GONE))
    assert code == 1 and f"{site.url(GONE)} is not a registered feed" in err
    code, out, _ = run("feeds", "remove", site.url(FEED))
    assert code == 0 and out == f"removed: {site.url(FEED)}\n"
    code, out, _ = run("feeds", "run")
    assert code == 0 and out == "No feeds registered; add one with `newsqa feeds add URL`.\n"


@pytest.mark.slow
def test_feeds_run_indexes_new_stories_round_by_round_and_they_are_answerable(site, env):
    assert run("feeds", "add", site.url(FEED), site.url(GONE))[0] == 0
    # The 404 is refused at `add`; registered anyway (it worked once, say), it fails its rounds alone.
    from newsqa.index.web.feed_registry import FeedRegistry

    FeedRegistry(Path(env["NEWSQA_INDEX_DIR"]) / "feeds.sqlite").add(site.url(GONE))

    first = newsqa(env, "feeds", "run")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[1:3] == [
        f"{site.url(FEED)}: new 2, updated 0, unchanged 0",
        f"{site.url(GONE)}: failed: {site.url(GONE)} answered 404 Not Found.",
    ]
    assert lines[3].startswith("Indexed 4 articles as ")  # 2 seeds + 2 stories

    site.stories.insert(0, RAIL)
    site.asked.clear()
    second = newsqa(env, "feeds", "run")
    assert second.returncode == 0, second.stderr
    assert f"{site.url(FEED)}: new 1, updated 0, unchanged 2" in second.stdout.splitlines()
    assert "Indexed 5 articles as " in second.stdout
    assert [path for path, *_ in site.asked if path.endswith(".html")] == [RAIL.path]  # only the new story

    ask = newsqa(env, "ask", "--json", "Tuyến đường sắt Văn Cao – Hòa Lạc dài bao nhiêu km?")
    assert ask.returncode == 0, ask.stderr
    answer = json.loads(ask.stdout)
    assert answer["found"] and "38,4 km" in answer["answer"]
    citation = answer["citations"][0]
    assert "38,4 km" in citation["text"]
    if "url" in citation:  # citations carry the story's metadata (retrieval/models.py)
        assert citation["url"] == site.url(RAIL.path) and citation["published"] == RAIL.published

    third = newsqa(env, "feeds", "run")  # nothing new: a 304, no rebuild
    assert f"{site.url(FEED)}: unchanged (not modified since the last poll)" in third.stdout.splitlines()
    assert "Nothing changed: the index is as it was." in third.stdout

    listed = json.loads(newsqa(env, "feeds", "list", "--json").stdout)
    assert [(feed["last_status"], feed["items_seen"]) for feed in listed] == [
        ("unchanged (not modified since the last poll)", 3),
        (f"{site.url(GONE)} answered 404 Not Found.", 0),
    ]


@pytest.mark.slow
def test_feeds_run_every_stops_cleanly_on_ctrl_c(site, env):
    assert run("feeds", "add", site.url(FEED))[0] == 0
    loop = subprocess.Popen(
        [sys.executable, "-m", "newsqa", "feeds", "run", "--every", "10", "--lexical-only"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert loop.stderr is not None
        waited = []
        for line in loop.stderr:  # the first round ends with the wait for the next
            waited.append(line)
            if line.startswith("Next round in 10.0 min"):
                break
        loop.send_signal(signal.SIGINT)
        out, err = loop.communicate(timeout=60)
    finally:
        if loop.poll() is None:
            loop.kill()
    assert loop.returncode == 0, "".join(waited) + err
    assert f"{site.url(FEED)}: new 2, updated 0, unchanged 0" in out.splitlines()
    assert err.strip().endswith("Stopped.") and "Traceback" not in err
