"""News from the web, with no internet: a Vietnamese news site on 127.0.0.1 (tests/index/news_site.py)
is fetched, extracted, stored and indexed, and every fault the web has is reported by its URL while
what was indexed keeps serving."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest

from newsqa.index.build import build_index
from newsqa.index.format import ARTICLES, PASSAGES, resolve_build
from newsqa.index.models import Article
from newsqa.index.web.extract import article_id_for_url, clean_url, extract_article
from newsqa.index.web.fetch import FetchError, Fetcher, FetchOptions, decode
from newsqa.index.web.ingest import WebIngest, is_feed
from newsqa.index.web.library import Library
from tests.conftest import REPO, SEEDS
from tests.index import news_site
from tests.index.news_site import (
    AD_TEXT,
    COLD,
    EXAMS,
    FEED,
    FOOTER,
    HUGE,
    IMAGE,
    LOOP,
    MISSING,
    NAVIGATION,
    PDF,
    PRIVATE,
    RAIL,
    REDIRECT,
    RICE,
    SITE_NAME,
    SLOW,
    NewsSite,
    article_html,
    to_cp1258,
)

TIMEOUT_S = 1.0  # under news_site.SLOW_SECONDS
MAX_BYTES = 200_000  # over every page, under news_site.HUGE_BYTES
FAST = FetchOptions(timeout_s=TIMEOUT_S, max_bytes=MAX_BYTES, per_host_interval_s=0)


@pytest.fixture(scope="module")
def site():
    with NewsSite() as running:
        yield running


@pytest.fixture
def fetcher():
    with Fetcher(FAST) as f:
        yield f


def story_id(site: NewsSite, story: news_site.Story) -> str:
    return article_id_for_url(site.url(story.path))


# -- fetching -------------------------------------------------------------------------------------


def test_a_redirect_is_followed_to_the_story(site, fetcher):
    fetched = fetcher.get(site.url(REDIRECT))
    assert fetched.status == 200 and fetched.url == site.url(REDIRECT)
    assert fetched.final_url.startswith(site.url(RAIL.path) + "?utm_source=zalo")
    assert fetched.content_type == "text/html" and RAIL.title in fetched.text


FAULTS = [
    (MISSING, "answered 404 Not Found."),
    (LOOP, "redirects more than 5 times."),
    (SLOW, f"did not answer within {TIMEOUT_S:g} s."),
    (HUGE, f"is over the {MAX_BYTES:,}-byte limit for one page."),
    (IMAGE, "is image/png, not a web page or a feed."),
    (PDF, "is application/pdf, not a web page or a feed."),
    (PRIVATE.path, "robots.txt for newsqa."),
]


@pytest.mark.parametrize("path,sentence", FAULTS, ids=[p for p, _ in FAULTS])
def test_each_fault_is_one_sentence_naming_the_url(site, fetcher, path, sentence):
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        fetcher.get(site.url(path))
    message = str(caught.value)
    assert message.startswith(site.url(path)) and message.endswith(sentence), message
    assert caught.value.url == site.url(path)
    assert time.monotonic() - started < news_site.SLOW_SECONDS  # the slow page is given up on in time


def test_a_host_that_is_down_or_a_scheme_that_is_not_http_fails_in_one_sentence(fetcher):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchError, match=rf"^http://127\.0\.0\.1:{port}/tin\.html could not be reached \(.+\)\.$"):
        fetcher.get(f"http://127.0.0.1:{port}/tin.html")
    with pytest.raises(FetchError, match=r"^ftp://example\.vn/tin\.html is not an http or https URL\.$"):
        fetcher.get("ftp://example.vn/tin.html")


def test_a_windows_1258_page_comes_out_as_vietnamese_in_nfc(site, fetcher):
    fetched = fetcher.get(site.url(COLD.path))
    assert "Hà Nội rét đậm" in fetched.text and unicodedata.is_normalized("NFC", fetched.text)
    article = extract_article(fetched.text, fetched.final_url)
    assert article.title == COLD.title and "Mẫu Sơn" in article.text
    assert unicodedata.is_normalized("NFC", article.title + article.text)


def test_the_charset_a_page_declares_is_used_when_the_server_names_none():
    page = to_cp1258(article_html("http://bao.example.vn", COLD, charset="windows-1258"))
    assert "Hà Nội rét đậm" in decode(page)  # from <meta charset>
    assert "Hà Nội" in decode("<html><body><p>Người dân Hà Nội đón không khí lạnh sáng nay.</p></body></html>".encode())


def test_robots_txt_is_read_once_per_host_and_requests_to_a_host_are_spaced(site):
    slept: list[float] = []
    now = [1000.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    before = len(site.requests)
    options = FetchOptions(timeout_s=TIMEOUT_S, max_bytes=MAX_BYTES, per_host_interval_s=0.5)
    with Fetcher(options, clock=lambda: now[0], sleep=sleep) as fetcher:
        fetcher.get(site.url(RAIL.path))
        fetcher.get(site.url(RICE.path))
    assert site.requests[before:] == ["/robots.txt", RAIL.path, RICE.path]
    assert slept == [0.5, 0.5]  # robots.txt → the first page → the second page


def test_robots_txt_can_be_ignored_for_a_site_you_run(site):
    options = FetchOptions(timeout_s=TIMEOUT_S, max_bytes=MAX_BYTES, per_host_interval_s=0, respect_robots=False)
    with Fetcher(options) as fetcher:
        assert PRIVATE.title in fetcher.get(site.url(PRIVATE.path)).text


# -- extraction -----------------------------------------------------------------------------------


@pytest.mark.parametrize("story", [RAIL, RICE, EXAMS], ids=lambda s: s.path.split("/")[1])
def test_extraction_keeps_the_story_and_drops_the_page_around_it(site, story):
    url = site.url(story.path) + "?utm_source=rss&utm_medium=feed"
    article = extract_article(article_html(site.base, story), url)
    text = article.text
    for kind, paragraph in story.body:
        if kind == "p":
            assert paragraph in text
    assert story.sapo in text
    assert article.title == story.title and not text.startswith(story.title)
    page_furniture = [AD_TEXT, "Quảng cáo", "Tin liên quan", *story.related, "Đọc nhiều", "Giá vàng hôm nay",
                      "Trang chủ", "Đăng nhập", "Chia sẻ", FOOTER[:40], "Giấy phép", "(Ảnh:", "GMT+7"]
    assert [bit for bit in page_furniture if bit in text] == []
    assert not set(NAVIGATION) & set(text.split("\n")) and "Góc nhìn" not in text  # the menu
    # what the page says of itself
    assert article.url == site.url(story.path)  # canonical: without the tracking parameters
    assert article.article_id == story_id(site, story)
    assert (article.site, article.published, article.author, article.language) == (
        SITE_NAME, story.published, story.author, "vi"
    )


def test_a_caption_the_extractor_keeps_is_removed_by_the_products_cleaning(site):
    article = extract_article(article_html(site.base, RAIL), site.url(RAIL.path))
    caption = next(text for kind, text in RAIL.body if kind == "caption")
    assert caption not in article.text
    assert [part.reason for part in article.removed] == ["photo caption"]


def test_a_canonical_link_to_another_site_is_not_taken_for_the_storys_url(site):
    page = article_html(site.base, RICE).replace(f'href="{site.url(RICE.path)}"', 'href="https://other.example.vn/x.html"')
    page = page.replace(f'content="{site.url(RICE.path)}"', 'content="https://other.example.vn/x.html"')
    article = extract_article(page, site.url(RICE.path) + "#binh-luan")
    assert article.url == site.url(RICE.path)


def test_a_page_with_no_article_text_gives_none():
    assert extract_article("<html><body><nav><a href='/'>Trang chủ</a></nav></body></html>", "http://bao.example.vn/") is None


def test_article_ids_come_from_the_canonical_url_and_are_stable_and_readable():
    url = "https://vnexpress.net/ha-noi-khoi-cong-tuyen-duong-sat-4712345.html"
    same = [
        url + "?utm_source=facebook&utm_campaign=share#box_comment",
        "http://www.VnExpress.net/ha-noi-khoi-cong-tuyen-duong-sat-4712345.html",
        url + "?fbclid=abc",
    ]
    assert {article_id_for_url(u) for u in same} == {article_id_for_url(url)}
    assert re.fullmatch(r"vnexpress\.net--ha-noi-khoi-cong-tuyen-duong-sat-4712345-[0-9a-f]{8}", article_id_for_url(url))
    assert article_id_for_url(url.replace("4712345", "4712346")) != article_id_for_url(url)
    assert article_id_for_url("https://vnexpress.net/tin.html?id=1") != article_id_for_url("https://vnexpress.net/tin.html?id=2")
    assert article_id_for_url("https://baochinhphu.vn/Thủ-tướng-phát-biểu-102.htm").startswith("baochinhphu.vn--thu-tuong-phat-bieu-102-")
    assert clean_url(same[0]) == url


def test_a_feed_is_told_from_a_page_by_its_type_or_first_element(site, fetcher):
    assert is_feed(fetcher.get(site.url(FEED)))
    assert not is_feed(fetcher.get(site.url(RAIL.path)))


# -- the library ----------------------------------------------------------------------------------


def test_the_library_stores_new_updates_changed_and_leaves_the_same_alone(tmp_path):
    library = Library(tmp_path / "library")
    article = Article("x.vn--tin-1a2b3c4d", "Tiêu đề", "Nội dung bài viết.", "https://x.vn/tin.html", ((0, 18),), url="https://x.vn/tin.html")
    assert library.put(article) == "new"
    assert library.put(article) == "unchanged"
    assert library.put(Article(**{**article.__dict__, "source": "https://x.vn/tin.html?utm_source=rss"})) == "unchanged"
    assert library.put(Article(**{**article.__dict__, "text": "Nội dung đã sửa.", "paragraph_spans": ((0, 16),)})) == "updated"
    assert [a.text for a in library.articles()] == ["Nội dung đã sửa."]
    stored = json.loads((tmp_path / "library" / "x.vn--tin-1a2b3c4d.json").read_text(encoding="utf-8"))
    assert stored["fetched_at"] and stored["url"] == "https://x.vn/tin.html"
    assert [p.name for p in (tmp_path / "library").iterdir() if p.name.endswith(".tmp")] == []


def test_a_damaged_library_file_is_skipped_with_a_warning(tmp_path):
    library = Library(tmp_path)
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    read = library.read()
    assert read.articles == [] and "bad.json: skipped" in read.warnings[0]


# -- ingest: sources to library, one rebuild ------------------------------------------------------


class CountingRebuild:
    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def __call__(self) -> str:
        self.calls += 1
        if self.fail:
            raise RuntimeError("the model could not be loaded")
        return f"build {self.calls}"


def test_sources_are_stored_each_reported_and_rebuilt_once(site, fetcher, tmp_path):
    library = Library(tmp_path / "library")
    rebuild = CountingRebuild()
    lines: list[str] = []
    ingest = WebIngest(library, fetcher, rebuild, on_outcome=lambda o: lines.append(o.line()))
    report = ingest.add_sources([site.url(RAIL.path), site.url(FEED), site.url(REDIRECT), site.url(MISSING), site.url(IMAGE)])
    assert lines == [
        f"added: {site.url(RAIL.path)} as {story_id(site, RAIL)}",
        f"feed: {site.url(FEED)} ({SITE_NAME} - Tin mới nhất: 2 stories)",
        f"  added: {site.url(RICE.path)}?utm_source=rss&utm_medium=feed as {story_id(site, RICE)}",
        f"  added: {site.url(EXAMS.path)}?utm_source=rss&utm_medium=feed as {story_id(site, EXAMS)}",
        f"unchanged: {site.url(REDIRECT)} as {story_id(site, RAIL)}",  # the same story by another link
        f"failed: {site.url(MISSING)} answered 404 Not Found.",
        f"failed: {site.url(IMAGE)} is image/png, not a web page or a feed.",
    ]
    assert report.changed and not report.all_failed
    assert [a.article_id for a in library.articles()] == sorted(story_id(site, s) for s in (RAIL, RICE, EXAMS))
    assert ingest.rebuild_if_needed() == "build 1" and ingest.rebuild_if_needed() is None

    again = WebIngest(library, fetcher, rebuild)
    report = again.add_sources([site.url(RAIL.path), site.url(FEED)])
    assert {o.status for o in report.outcomes} == {"unchanged", "feed"} and not report.changed
    assert again.rebuild_if_needed() is None and rebuild.calls == 1


def test_when_every_source_fails_the_report_says_so(site, fetcher, tmp_path):
    report = WebIngest(Library(tmp_path), fetcher).add_sources([site.url(MISSING), str(tmp_path / "none.txt")])
    assert report.all_failed and not report.changed
    assert report.outcomes[1].line() == f"failed: {tmp_path / 'none.txt'} is neither a file, a folder nor an http(s) URL."


def test_a_rebuild_that_failed_is_retried_by_the_next_add_even_with_nothing_new(site, fetcher, tmp_path):
    library = Library(tmp_path / "library")
    broken = CountingRebuild(fail=True)
    ingest = WebIngest(library, fetcher, broken)
    ingest.add_sources([site.url(RAIL.path)])
    with pytest.raises(RuntimeError):
        ingest.rebuild_if_needed()
    working = CountingRebuild()
    again = WebIngest(library, fetcher, working)
    assert {o.status for o in again.add_sources([site.url(RAIL.path)]).outcomes} == {"unchanged"}
    assert again.rebuild_if_needed() == "build 1"


def test_files_and_folders_are_stored_with_ids_from_their_paths(fetcher, tmp_path):
    folder = tmp_path / "notes"
    (folder / "the-gioi").mkdir(parents=True)
    story = "Tiêu đề bài viết\n\nNội dung chính của bài viết về thời tiết Hà Nội hôm nay.\n"
    (folder / "a.txt").write_text(story, encoding="utf-8")
    (folder / "the-gioi" / "b.md").write_text(story.replace("Hà Nội", "Tokyo"), encoding="utf-8")
    (folder / "anh.png").write_bytes(b"\x89PNG")
    library = Library(tmp_path / "library")
    ingest = WebIngest(library, fetcher)
    statuses = [(o.status, o.detail) for o in ingest.add_sources([str(folder)]).outcomes]
    assert statuses == [("added", "file--a"), ("added", "file--the-gioi--b")]
    # the same file named alone keeps its id, and is the same article
    assert [(o.status, o.detail) for o in ingest.add_sources([str(folder / "a.txt")]).outcomes] == [("unchanged", "file--a")]
    assert ingest.add_sources([str(folder / "anh.png")]).outcomes[0].detail.endswith("is not an article file (.txt or .md).")


def test_a_feed_link_that_is_a_feed_itself_is_refused_and_a_poll_gets_its_outcomes(site, fetcher, tmp_path):
    rebuild = CountingRebuild()
    ingest = WebIngest(Library(tmp_path), fetcher, rebuild)
    result = ingest.add_urls([site.url(RICE.path), site.url(FEED), site.url(MISSING)])
    assert result.outcomes[site.url(RICE.path)].status == "new"
    assert "is a feed, not a story" in result.outcomes[site.url(FEED)].error
    assert result.outcomes[site.url(MISSING)].error.endswith("answered 404 Not Found.")
    assert result.build == "build 1"


# -- builds: the library beside the seeds ---------------------------------------------------------


def test_a_seeds_build_is_as_before_and_index_build_keeps_the_library(site, fetcher, tmp_path):
    plain = build_index(SEEDS, tmp_path / "plain", None).folder
    with_empty = tmp_path / "empty"
    (with_empty / "library").mkdir(parents=True)
    empty = build_index(SEEDS, with_empty, None).folder
    for name in (ARTICLES, PASSAGES):
        assert (empty / name).read_bytes() == (plain / name).read_bytes()

    root = tmp_path / "web"
    WebIngest(Library.of(root), fetcher).add_sources([site.url(RAIL.path)])
    built = build_index(SEEDS, root, None).folder  # what `newsqa index build` runs
    seeds_rows = (plain / ARTICLES).read_text(encoding="utf-8").splitlines()
    rows = (built / ARTICLES).read_text(encoding="utf-8").splitlines()
    assert rows[: len(seeds_rows)] == seeds_rows
    assert [json.loads(row)["article_id"] for row in rows[len(seeds_rows) :]] == [story_id(site, RAIL)]
    assert (built / PASSAGES).read_text(encoding="utf-8").startswith((plain / PASSAGES).read_text(encoding="utf-8"))


# -- `newsqa index add` as a person runs it -------------------------------------------------------


def newsqa(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsqa", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def added(site, model_path, tmp_path_factory):
    """An index root where `newsqa index add <page> <feed>` ran once on top of the seeds."""
    root = tmp_path_factory.mktemp("web-index") / "index"
    env = os.environ | {
        "NEWSQA_EMBEDDING_MODEL": model_path,
        "NEWSQA_INDEX_DIR": str(root),
        "NEWSQA_SEEDS_DIR": str(SEEDS),
        "NEWSQA_STATE_DIR": str(root.parent / "state"),
        "NEWSQA_FETCH_TIMEOUT": str(TIMEOUT_S),
        "NEWSQA_FETCH_MAX_BYTES": str(MAX_BYTES),
        "NEWSQA_FETCH_HOST_INTERVAL": "0",
        "HF_HUB_OFFLINE": "1",
    }
    result = newsqa(env, "index", "add", site.url(RAIL.path), site.url(FEED))
    return root, env, result


def current(root: Path) -> str:
    return os.readlink(root / "current")


@pytest.mark.slow
def test_index_add_page_and_feed_then_ask_cites_the_page(site, added):
    root, env, result = added
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:4] == [
        f"added: {site.url(RAIL.path)} as {story_id(site, RAIL)}",
        f"feed: {site.url(FEED)} ({SITE_NAME} - Tin mới nhất: 2 stories)",
        f"  added: {site.url(RICE.path)}?utm_source=rss&utm_medium=feed as {story_id(site, RICE)}",
        f"  added: {site.url(EXAMS.path)}?utm_source=rss&utm_medium=feed as {story_id(site, EXAMS)}",
    ]
    assert re.search(r"^Indexed 5 articles as \d+ passages", result.stdout, re.MULTILINE)  # 2 seeds + 3 stories
    assert sorted(p.name for p in (root / "library").glob("*.json")) == sorted(f"{story_id(site, s)}.json" for s in (RAIL, RICE, EXAMS))

    ask = newsqa(env, "ask", "--json", "Tuyến đường sắt Văn Cao – Hòa Lạc dài bao nhiêu km?")
    assert ask.returncode == 0, ask.stderr
    answer = json.loads(ask.stdout)
    assert answer["found"] and "38,4 km" in answer["answer"]
    citation = answer["citations"][0]
    assert citation["article_id"] == story_id(site, RAIL) and "38,4 km" in citation["text"]
    # the story's canonical URL (no tracking parameters), publisher and time, as the page gave them
    assert (citation["url"], citation["source"], citation["published"]) == (site.url(RAIL.path), SITE_NAME, RAIL.published)

    ask = newsqa(env, "ask", "--json", "Giá gạo 5% tấm của Việt Nam bao nhiêu USD mỗi tấn?")
    assert json.loads(ask.stdout)["citations"][0]["article_id"] == story_id(site, RICE)  # from the feed


@pytest.mark.slow
def test_adding_the_same_story_again_changes_nothing(site, added):
    root, env, _ = added
    before, builds = current(root), sorted(os.listdir(root / "builds"))
    result = newsqa(env, "index", "add", site.url(RAIL.path), site.url(REDIRECT))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"unchanged: {site.url(RAIL.path)} as {story_id(site, RAIL)}",
        f"unchanged: {site.url(REDIRECT)} as {story_id(site, RAIL)}",
        "Nothing changed: the index is as it was.",
    ]
    assert current(root) == before and sorted(os.listdir(root / "builds")) == builds


@pytest.mark.slow
def test_every_fault_is_named_by_its_url_and_the_index_keeps_answering(site, added):
    root, env, _ = added
    before = current(root)
    faults = [site.url(path) for path, _ in FAULTS]
    result = newsqa(env, "index", "add", *faults)
    assert result.returncode == 1  # every source failed
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(FAULTS) + 1 and lines[-1] == "Nothing changed: the index is as it was."
    for (path, sentence), line in zip(FAULTS, lines):
        assert line.startswith(f"failed: {site.url(path)} ") and line.endswith(sentence), line
    assert current(root) == before

    ask = newsqa(env, "ask", "--json", "Tuyến đường sắt Văn Cao – Hòa Lạc dài bao nhiêu km?")
    assert json.loads(ask.stdout)["citations"][0]["article_id"] == story_id(site, RAIL)


@pytest.mark.slow
def test_a_rebuild_that_fails_keeps_the_previous_build_and_the_next_add_builds(site, added, tmp_path):
    root = tmp_path / "index"
    shutil.copytree(added[0], root, symlinks=True)
    env = added[1] | {"NEWSQA_INDEX_DIR": str(root), "NEWSQA_EMBEDDING_MODEL": str(tmp_path / "no-model")}
    before = current(root)
    result = newsqa(env, "index", "add", site.url(COLD.path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stdout.splitlines()[0] == f"added: {site.url(COLD.path)} as {story_id(site, COLD)}"
    assert f"What was added is kept in {root / 'library'}" in result.stderr
    assert current(root) == before

    env["NEWSQA_EMBEDDING_MODEL"] = added[1]["NEWSQA_EMBEDDING_MODEL"]
    result = newsqa(env, "index", "add", site.url(COLD.path))
    assert result.stdout.splitlines()[0] == f"unchanged: {site.url(COLD.path)} as {story_id(site, COLD)}"
    assert re.search(r"^Indexed 6 articles", result.stdout, re.MULTILINE) and current(root) != before


@pytest.mark.slow
def test_the_seeds_articles_are_built_exactly_as_a_seeds_only_build(added, tmp_path):
    plain = build_index(SEEDS, tmp_path / "plain", None).folder
    built = resolve_build(added[0])
    seeds_rows = (plain / ARTICLES).read_text(encoding="utf-8").splitlines()
    assert (built / ARTICLES).read_text(encoding="utf-8").splitlines()[: len(seeds_rows)] == seeds_rows
    seeds_passages = (plain / PASSAGES).read_text(encoding="utf-8")
    assert (built / PASSAGES).read_text(encoding="utf-8").startswith(seeds_passages)


@pytest.mark.slow
def test_a_wire_story_at_two_addresses_is_cited_once_naming_the_other(site, model_path, tmp_path):
    """Two papers ran the same wire copy: both are stored and indexed, and an answer cites the story
    once, with the other paper's copy under "also published"."""
    from tests.index.news_site import RAIL_COPY

    root = tmp_path / "index"
    env = os.environ | {
        "NEWSQA_EMBEDDING_MODEL": model_path,
        "NEWSQA_INDEX_DIR": str(root),
        "NEWSQA_SEEDS_DIR": str(SEEDS),
        "NEWSQA_STATE_DIR": str(tmp_path / "state"),
        "NEWSQA_FETCH_HOST_INTERVAL": "0",
        "HF_HUB_OFFLINE": "1",
    }
    result = newsqa(env, "index", "add", site.url(RAIL.path), site.url(RAIL_COPY.path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == [
        f"added: {site.url(RAIL.path)} as {story_id(site, RAIL)}",
        f"added: {site.url(RAIL_COPY.path)} as {story_id(site, RAIL_COPY)}",
    ]
    ask = newsqa(env, "ask", "--json", "Tuyến đường sắt Văn Cao – Hòa Lạc dài bao nhiêu km?")
    assert ask.returncode == 0, ask.stderr
    answer = json.loads(ask.stdout)
    copies = {story_id(site, RAIL), story_id(site, RAIL_COPY)}
    cited = [c for c in answer["citations"] if c["article_id"] in copies]
    retrieved = [p for p in answer["also_retrieved"] if p["article_id"] in copies]
    assert answer["found"] and len({c["article_id"] for c in cited + retrieved}) == 1  # one copy takes places
    (first,) = {c["article_id"] for c in cited}
    (other,) = copies - {first}
    assert [(p["article_id"], p["url"]) for p in cited[0]["also_published"]] == [
        (other, site.url(RAIL_COPY.path if other == story_id(site, RAIL_COPY) else RAIL.path))
    ]

