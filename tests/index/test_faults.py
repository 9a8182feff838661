"""Faults: a build killed at any point, a damaged build under a running server, seeds that cannot
be used, and hostile article text through the whole build (clean → split → index → load → query).

Builds here are keyword-only (no model) over a few hundred short generated articles, so a build
costs well under a second; tests/index/test_store.py covers the model-embedding phase.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import newsqa.index.build
from newsqa.bot.http import create_app
from newsqa.bot.settings import Settings
from newsqa.index.articles import SeedsError, read_articles
from newsqa.index.build import build_index
from newsqa.index.split import split_passages
from newsqa.index.format import BUILDS, IndexCorrupt, IndexUnavailable, resolve_build
from newsqa.index.loader import load_build, open_index
from newsqa.index.text import nfc
from newsqa.retrieval.service import BadQuestion, QAService, ServiceConfig
from tests.bot.test_http import LiveServer, assert_error, wait_for
from tests.conftest import REPO, http_settings

ARTICLES = 240  # in the index being served
GROWN = 40  # more in the next build
WORDS = "thời tiết tỉnh nắng mưa nhiệt độ người dân chính quyền thông báo kế hoạch xây dựng đường".split()


def write_articles(folder: Path, start: int, count: int) -> Path:
    """Short articles, each findable by its own code word ("mãsố00042")."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        body = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(24))
        (folder / f"a{i:05d}.txt").write_text(
            f"Bài {i}: tin mãsố{i:05d}\n\n"
            f"Đây là bài mãsố{i:05d}. {body.capitalize()}.\n\n"
            f"Đoạn hai của bài {i}: {body}.\n",
            encoding="utf-8",
        )
    return folder


def lexical_service(root: Path) -> QAService:
    # A keyword-only build never loads a model; the name is only compared with the build's (None).
    service = QAService(ServiceConfig(index_dir=root, model="none"))
    service.warm_up()
    return service


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> dict[str, Any]:
    """An index root built from ARTICLES articles, and the seeds of the next build (ARTICLES + GROWN)."""
    base = tmp_path_factory.mktemp("faults")
    seeds = write_articles(base / "seeds", 0, ARTICLES)
    root = base / "index"
    build_index(seeds, root, None)
    grown = write_articles(base / "grown", 0, ARTICLES + GROWN)
    started = time.perf_counter()
    build_index(grown, base / "scratch", None)
    return {"root": root, "grown": grown, "build_seconds": time.perf_counter() - started}


@pytest.fixture
def root(template, tmp_path) -> Path:
    target = tmp_path / "index"
    shutil.copytree(template["root"], target, symlinks=True)
    return target


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in (root / BUILDS).iterdir() if p.name.startswith(".tmp-"))


def assert_serves(root: Path, articles: int) -> None:
    loaded = open_index(root)  # every file checked against its checksum
    assert loaded.manifest["article_count"] == articles
    answer = lexical_service(root).search(f"mãsố{articles - 1:05d}", 3)
    assert answer.hits and answer.hits[0].article_id == f"a{articles - 1:05d}"


def assert_next_build_succeeds(root: Path, seeds: Path) -> None:
    build_index(seeds, root, None)
    assert_serves(root, ARTICLES + GROWN)
    assert leftovers(root) == []  # the interrupted build's temporary folder is gone


# -- a build killed with SIGKILL -------------------------------------------------------------------

# Run in a child process: a build that stops for good at one point (the named function, patched to
# pause before or after it runs), so the test can kill it exactly there.
PAUSING_BUILD = """
import importlib, pathlib, sys, time
from newsqa.index.build import build_index

target, when, marker, seeds, root = sys.argv[1:6]
module_name, _, attribute = target.partition(":")
owner = importlib.import_module(module_name if target != "none" else "newsqa.index.build")
*parents, name = (attribute or "build_index").split(".")
for parent in parents:
    owner = getattr(owner, parent)
original = getattr(owner, name) if target != "none" else None

def paused(*args, **kwargs):
    result = original(*args, **kwargs) if when == "after" else None
    pathlib.Path(marker).write_text("paused")
    time.sleep(300)
    return result

if target != "none":
    setattr(owner, name, paused)
pathlib.Path(marker + ".started").write_text("started")
build_index(pathlib.Path(seeds), pathlib.Path(root), None)
"""

# (what the kill interrupts, function to stop at, before/after it, what is on disk at that moment)
KILL_POINTS = [
    ("holding the build lock, reading seeds", "newsqa.index.build:read_articles", "before", "nothing new"),
    ("index built in memory, nothing written", "newsqa.index.build:write_build", "before", "nothing new"),
    ("jsonl files written, rows not yet", "newsqa.index.writer:np.savez", "before", "temporary: jsonl"),
    ("all data files written, no manifest", "newsqa.index.writer:write_manifest", "before", "temporary: data"),
    ("manifest written, not synced or renamed", "newsqa.index.writer:_fsync_tree", "before", "temporary: complete"),
    ("renamed into builds/, not yet verified", "newsqa.index.build:load_build", "before", "new build, not current"),
    ("new link made, not yet swapped in", "newsqa.index.writer:os.symlink", "after", "new link, not current"),
    ("swapped in, old builds not yet pruned", "newsqa.index.build:prune_builds", "before", "swapped"),
]


def disk_state(root: Path, before: Path | None) -> str:
    """Where an interrupted build got to, read from the index root."""
    if resolve_build(root) != before:
        return "swapped"
    if list(root.glob(".current-*")):
        return "new link, not current"
    builds = [p for p in (root / BUILDS).iterdir() if p != before]
    temporary = [p for p in builds if p.name.startswith(".tmp-")]
    if not temporary:
        return "new build, not current" if builds else "nothing new"
    files = {str(p.relative_to(temporary[0])) for p in temporary[0].rglob("*") if p.is_file()}
    if "manifest.json" in files:
        return "temporary: complete"
    return "temporary: data" if "rows.npz" in files else "temporary: jsonl"


def child_build(args: list[str]) -> subprocess.Popen[str]:
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", PAUSING_BUILD, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_file(proc: subprocess.Popen[str], path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"the build ended before reaching its pause: {output}")
        assert time.monotonic() < deadline, "the build did not reach its pause in time"
        time.sleep(0.01)


def kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    if proc.stdout:
        proc.stdout.close()


@pytest.mark.slow  # a build in a process of its own, killed
@pytest.mark.parametrize(("moment", "target", "when", "state"), KILL_POINTS, ids=[k[0] for k in KILL_POINTS])
def test_a_build_killed_at_any_step_leaves_a_loadable_index(template, root, tmp_path, moment, target, when, state):
    before = resolve_build(root)
    marker = tmp_path / "paused"
    proc = child_build([target, when, str(marker), str(template["grown"]), str(root)])
    try:
        wait_for_file(proc, marker)
    finally:
        kill(proc)

    assert disk_state(root, before) == state  # killed where we meant to
    if state == "swapped":
        assert resolve_build(root) != before
        assert_serves(root, ARTICLES + GROWN)
    else:
        assert resolve_build(root) == before
        assert_serves(root, ARTICLES)
    assert_next_build_succeeds(root, template["grown"])
    # An interrupted swap leaves its unused link behind (index/writer.py does not prune `.current-*`);
    # readers never look at it.
    assert all(p.is_symlink() for p in root.glob(".current-*"))


@pytest.mark.slow
@pytest.mark.parametrize("fraction", [0.05, 0.25, 0.5, 0.75, 0.95, 1.2])
def test_a_build_killed_after_a_chosen_delay_leaves_a_loadable_index(template, root, tmp_path, fraction):
    before = resolve_build(root)
    marker = tmp_path / "never"
    proc = child_build(["none", "before", str(marker), str(template["grown"]), str(root)])
    try:
        wait_for_file(proc, Path(f"{marker}.started"))
        time.sleep(fraction * template["build_seconds"])
    finally:
        kill(proc)

    current = resolve_build(root)
    print(f"killed at {fraction:.0%} of a build: serving the {'old' if current == before else 'new'} build")
    assert_serves(root, ARTICLES if current == before else ARTICLES + GROWN)
    assert_next_build_succeeds(root, template["grown"])


# -- a damaged build and a running server -------------------------------------------------------------


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    at = len(data) // 2
    if path.name == "manifest.json":
        at = data.index(b'"sha256": "') + 14  # inside a checksum: the JSON stays valid
    data[at] ^= 0x04
    path.write_bytes(bytes(data))


def delete(path: Path) -> None:
    path.unlink()


DAMAGE: list[tuple[str, Callable[[Path], None]]] = [
    ("manifest.json", truncate),
    ("manifest.json", flip),
    ("articles.jsonl", flip),
    ("passages.jsonl", truncate),
    ("passages.jsonl", delete),
    ("rows.npz", flip),
    ("lexical/folded/vocab.index.json", truncate),
    ("lexical/accented/data.csc.index.npy", flip),
]
DAMAGE_IDS = [f"{name}-{how.__name__}" for name, how in DAMAGE]


def server_settings(**overrides: Any) -> Settings:
    return http_settings(**overrides)



@pytest.fixture
def served(root) -> Iterator[Callable[..., tuple[str, str]]]:
    """Start a real server over `root`; returns its URL and the build id it serves."""
    servers: list[LiveServer] = []

    def start(**overrides: Any) -> tuple[str, str]:
        server = LiveServer(create_app(server_settings(**overrides), lexical_service(root)))
        servers.append(server)
        url = server.start()
        with httpx.Client(base_url=url, timeout=30) as c:
            wait_for(lambda: c.get("/readyz").status_code == 200, what="/readyz 200")
            return url, c.get("/readyz").json()["build_id"]

    yield start
    for server in servers:
        server.stop()


def assert_still_serving(url: str, old_build: str) -> str:
    with httpx.Client(base_url=url, timeout=30) as c:
        info = c.get("/readyz").json()
        assert info["build_id"] == old_build
        error = info["reload_error"]
        assert error and "\n" not in error and "newsqa index build" in error  # one sentence, what to run
        assert c.post("/ask", json={"question": f"mãsố{ARTICLES - 1:05d}"}).status_code == 200
        found = c.get("/search", params={"q": f"mãsố{ARTICLES - 1:05d}", "k": 1}).json()
        assert found["hits"][0]["article_id"] == f"a{ARTICLES - 1:05d}"
        # The new build's article is not there: the old index is the one answering.
        missing = c.get("/search", params={"q": f"mãsố{ARTICLES + GROWN - 1:05d}", "k": 1}).json()
        assert all(h["article_id"] != f"a{ARTICLES + GROWN - 1:05d}" for h in missing["hits"])
        return error


@pytest.mark.parametrize(("victim", "damage"), DAMAGE, ids=DAMAGE_IDS)
def test_admin_reload_refuses_a_damaged_build_and_keeps_serving(template, root, served, victim, damage):
    url, old_build = served()
    report = build_index(template["grown"], root, None)
    damage(report.folder / victim)
    with httpx.Client(base_url=url, timeout=30) as c:
        assert_error(c.post("/admin/reload"), 503, "reload_failed", "previous index is still serving")
    assert_still_serving(url, old_build)


@pytest.mark.parametrize(("victim", "damage"), DAMAGE[:3], ids=DAMAGE_IDS[:3])
def test_the_watcher_refuses_a_build_damaged_after_it_was_verified(template, root, served, monkeypatch, victim, damage):
    # The build verifies what it wrote, then the disk changes under it before the swap.
    real_swap = newsqa.index.build.swap_current

    def damaged_swap(index_root: Path, folder: Path) -> None:
        damage(folder / victim)
        real_swap(index_root, folder)

    monkeypatch.setattr(newsqa.index.build, "swap_current", damaged_swap)
    url, old_build = served(reload_interval=0.1)
    build_index(template["grown"], root, None)
    with httpx.Client(base_url=url, timeout=30) as c:
        wait_for(lambda: c.get("/readyz").json()["reload_error"] is not None, what="the watcher to refuse the build")
    assert "damaged" in assert_still_serving(url, old_build)


# -- any bit of any file ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def build_files(template) -> tuple[Path, list[str]]:
    folder = resolve_build(template["root"])
    assert folder is not None
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json")
    return folder, names


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_flipped_bit_in_any_data_file_is_refused_in_one_sentence(build_files, tmp_path_factory, data):
    source, names = build_files
    folder = tmp_path_factory.mktemp("flip") / "build"
    shutil.copytree(source, folder)
    name = data.draw(st.sampled_from(names), label="file")
    path = folder / name
    content = bytearray(path.read_bytes())
    at = data.draw(st.integers(0, len(content) - 1), label="byte")
    content[at] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    path.write_bytes(bytes(content))
    with pytest.raises(IndexCorrupt) as err:
        load_build(folder)
    assert "\n" not in str(err.value) and str(err.value).endswith("to rebuild it.")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(at=st.integers(0, 10**9), bit=st.integers(0, 7))
def test_a_flipped_bit_in_the_manifest_is_refused(template, tmp_path_factory, at, bit):
    # manifest.sha256 holds the manifest's own checksum, so even a flip in a field that only
    # describes the build (its id, time, corpus digest) is caught.
    root = tmp_path_factory.mktemp("manifest") / "index"
    shutil.copytree(template["root"], root, symlinks=True)
    manifest = resolve_build(root) / "manifest.json"  # type: ignore[operator]
    content = bytearray(manifest.read_bytes())
    content[at % len(content)] ^= 1 << bit
    manifest.write_bytes(bytes(content))
    with pytest.raises(IndexUnavailable) as err:
        lexical_service(root)
    assert "\n" not in str(err.value) and "newsqa index build" in str(err.value)


# -- seeds that cannot be used ----------------------------------------------------------------------


def assert_nothing_written(root: Path, before: Path | None, builds_before: set[str]) -> None:
    assert resolve_build(root, must_exist=False) == before
    assert {p.name for p in (root / BUILDS).iterdir()} == builds_before


def cli_build(seeds: Path, root: Path) -> tuple[int, str]:
    from click.testing import CliRunner

    from newsqa.bot.cli import cli

    args = ["index", "build", "--lexical-only", "--seeds", str(seeds), "--index-dir", str(root)]
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.stderr


def unusable_only(folder: Path) -> Path:
    folder.mkdir()
    (folder / "empty.txt").write_text("   \n\n", encoding="utf-8")
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02PNG")
    (folder / "utf16.md").write_bytes("Thời tiết".encode("utf-16"))
    (folder / "notes.pdf").write_text("not an article", encoding="utf-8")
    return folder


SEEDS_PROBLEMS: list[tuple[str, Callable[[Path], Path], str]] = [
    ("missing", lambda tmp: tmp / "no-such-folder", "does not exist"),
    ("a file", lambda tmp: write_articles(tmp / "s", 0, 1) / "a00000.txt", "is not a folder"),
    ("empty", lambda tmp: Path(tempfile.mkdtemp(dir=tmp)), "No usable articles"),
    ("nothing usable", lambda tmp: unusable_only(tmp / "junk"), "No usable articles"),
]


@pytest.mark.parametrize(("problem", "make", "says"), SEEDS_PROBLEMS, ids=[p[0] for p in SEEDS_PROBLEMS])
def test_unusable_seeds_fail_in_one_sentence_and_leave_the_index_alone(root, tmp_path, problem, make, says):
    seeds = make(tmp_path)
    before = resolve_build(root)
    builds = {p.name for p in (root / BUILDS).iterdir()}
    with pytest.raises(SeedsError, match=says):
        build_index(seeds, root, None)
    assert_nothing_written(root, before, builds)
    code, err = cli_build(seeds, root)
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert code != 0 and len(errors) == 1 and says in errors[0] and "Traceback" not in err
    assert_nothing_written(root, before, builds)
    assert_serves(root, ARTICLES)


def test_unusable_seeds_into_an_empty_root_write_no_index(tmp_path):
    with pytest.raises(SeedsError):
        build_index(unusable_only(tmp_path / "junk"), tmp_path / "index", None)
    assert resolve_build(tmp_path / "index", must_exist=False) is None
    assert not (tmp_path / "index" / BUILDS).exists() or not list((tmp_path / "index" / BUILDS).iterdir())


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 folder anyway; see the simulated test below")
def test_an_unreadable_seeds_folder_fails_clearly(root, tmp_path):
    seeds = write_articles(tmp_path / "locked", 0, 3)
    before = resolve_build(root)
    seeds.chmod(0)
    try:
        with pytest.raises(SeedsError) as err:
            build_index(seeds, root, None)
    finally:
        seeds.chmod(0o755)
    assert str(seeds) in str(err.value)
    assert resolve_build(root) == before and leftovers(root) == []


def test_an_unreadable_seeds_folder_fails_clearly_simulated(root, tmp_path, monkeypatch):
    # As root, chmod 000 blocks nothing; listing the folder is made to fail as it would for a user.
    seeds = write_articles(tmp_path / "locked", 0, 3)
    before = resolve_build(root)
    real_rglob = Path.rglob

    def denied(self: Path, pattern: str) -> Any:
        if self == seeds:
            raise PermissionError(13, "Permission denied", str(self))
        return real_rglob(self, pattern)

    monkeypatch.setattr(Path, "rglob", denied)
    with pytest.raises(SeedsError, match=r"cannot be read \(Permission denied\)"):
        build_index(seeds, root, None)
    assert resolve_build(root) == before and leftovers(root) == []


def test_an_unreadable_article_is_skipped_with_a_warning(tmp_path, monkeypatch):
    seeds = write_articles(tmp_path / "seeds", 0, 3)
    locked = seeds / "a00001.txt"
    if os.geteuid() != 0:
        locked.chmod(0)
    else:  # root reads it anyway: simulate the refusal
        real_read = Path.read_bytes

        def denied(self: Path) -> bytes:
            if self == locked:
                raise PermissionError(13, "Permission denied", str(self))
            return real_read(self)

        monkeypatch.setattr(Path, "read_bytes", denied)
    try:
        result = read_articles(seeds)
    finally:
        locked.chmod(0o644)
    assert [a.article_id for a in result.articles] == ["a00000", "a00002"]
    assert result.warnings == [f"{locked}: skipped, cannot be read (Permission denied)."]


# -- hostile article text through the whole build ------------------------------------------------------

VIETNAMESE = "aăâbcdđeêghiklmnoôơpqrstuưvxyàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵĐ"
ODD = ".!?…“”\"'()[]|/+-:;, \t\u200b\u200d\ufeff\u00ad\u0301\u0323\u0300\x00\x07\x1b\r🙂👍🏽مرحبا"
letters = st.sampled_from(list(VIETNAMESE + ODD)) | st.characters(exclude_categories=("Cs",))
noise = st.text(alphabet=letters, min_size=0, max_size=160)
word = st.sampled_from(WORDS + ["NATO", "Hà", "Nội", "mãsố"]) | st.text(alphabet=letters, min_size=1, max_size=8)
sentence = st.lists(word, min_size=1, max_size=30).map(lambda ws: " ".join(ws) + ".")
paragraph = noise | sentence | st.lists(sentence, min_size=2, max_size=4).map(" ".join)
# A title line, then paragraphs of words and noise.
article_text = st.lists(paragraph, min_size=2, max_size=6).map(lambda ps: "\n\n".join(ps))
decomposed = article_text.map(lambda t: unicodedata.normalize("NFD", t))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(article_text | decomposed, min_size=1, max_size=5), bom=st.booleans(), crlf=st.booleans())
def test_random_articles_survive_the_whole_build(texts, bom, crlf):
    with tempfile.TemporaryDirectory() as tmp:
        seeds, root = Path(tmp) / "seeds", Path(tmp) / "index"
        seeds.mkdir()
        for i, text in enumerate(texts):
            raw = text.replace("\n", "\r\n") if crlf else text
            (seeds / f"r{i}.txt").write_bytes((b"\xef\xbb\xbf" if bom else b"") + raw.encode("utf-8"))
        expected = {a.article_id: a for a in read_articles(seeds).articles}
        event(f"{len(expected)} of {len(texts)} articles usable")
        if not expected:
            with pytest.raises(SeedsError):
                build_index(seeds, root, None)
            assert resolve_build(root, must_exist=False) is None
            return
        build_index(seeds, root, None)
        loaded = open_index(root)

        # What was written and read back is what the pipeline made in memory.
        assert set(loaded.articles) == set(expected)
        for article_id, article in expected.items():
            assert loaded.articles[article_id].text == article.text
            assert loaded.articles[article_id].title == article.title
        in_memory = [p for a in expected.values() for p in split_passages(a)]
        assert [p.to_json() for p in loaded.passages] == [p.to_json() for p in in_memory]
        for p in loaded.passages:
            assert loaded.articles[p.article_id].text[p.start : p.end] == p.text

        service = lexical_service(root)
        for p in list(loaded.passages)[:5]:
            result = service.search(p.text[:1000], 3)  # any text is a query
            for hit in result.hits:
                assert loaded.articles[hit.article_id].text[hit.start : hit.end] == hit.text
        try:
            json.dumps(service.ask(texts[0][:1000], 3).model_dump())
        except BadQuestion:
            assert not " ".join(nfc(texts[0][:1000]).split()) or len(nfc(texts[0][:1000])) > 1000
