"""The `newsqa` command as a user runs it: real processes, real index, one-sentence errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from newsqa.bot.cli import cli
from newsqa.bot.labels import EN, VI
from tests.conftest import REPO, SEEDS


@pytest.fixture
def env(model_path, seed_index, monkeypatch):
    monkeypatch.setenv("NEWSQA_EMBEDDING_MODEL", model_path)
    monkeypatch.setenv("NEWSQA_INDEX_DIR", str(seed_index))
    return os.environ.copy()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_ask_json_has_the_documented_fields(env):
    code, out, _ = run("ask", "--json", "-k", "3", "Nga yêu cầu NATO những gì?")
    assert code == 0
    data = json.loads(out)
    assert {"question", "answer", "found", "citations", "took_ms"} <= set(data)
    assert data["found"] is True and 1 <= len(data["citations"]) <= 3
    assert set(data["citations"][0]) >= {"n", "article_id", "title", "passage_id", "paragraph", "text", "score"}
    assert "Nga yêu cầu NATO chấm dứt mở rộng" in data["answer"]


def test_ask_prints_the_answer_then_its_sources_by_article_in_the_question_language(env):
    code, out, _ = run("ask", "nga yeu cau nato gi")  # Vietnamese typed without diacritics
    assert code == 0
    first, rest = out.split("\n\n", 1)
    assert "[1]" in first
    sources, also = rest.split(f"\n\n{VI.also_retrieved}:\n")
    lines = sources.splitlines()
    assert lines[0] == f"{VI.sources}:" and lines[1].startswith("Tổng thống Vladimir Putin")  # the title, once
    assert lines[2].startswith(f"  [1] {VI.paragraph} 4: “") and "chấm dứt mở rộng về phía đông" in " ".join(sources.split())
    assert "[2]" not in sources  # the answer cites one passage: one source
    assert also.startswith("  - ")  # what the search also found, set apart

    code, out, _ = run("ask", "What did Russia demand from NATO?")
    assert code == 0 and f"\n{EN.sources}:\n" in out and f"\n{EN.also_retrieved}:\n" in out


def test_index_info_shows_model_counts_and_articles(env, model_path):
    code, out, _ = run("index", "info")
    assert code == 0
    assert model_path in out and "Articles:  2" in out
    assert "Thủ tướng Anh muốn đưa ra đề xuất đảm bảo với Nga về NATO" in out
    assert "\nSources:   files 2\n" in out and "\nPublished: (no article says when it was published)\n" in out


def test_index_info_counts_articles_by_source_with_their_dates(env, two_sites_index, monkeypatch):
    monkeypatch.setenv("NEWSQA_INDEX_DIR", str(two_sites_index))
    code, out, _ = run("index", "info")
    assert code == 0 and "Articles:  3" in out
    assert "\nSources:   tin-a.vn 2, tin-b.vn 1\n" in out
    assert "\nPublished: 2024-03-01 to 2024-03-02  (3 of 3 articles dated)\n" in out
    assert "\nCopies:    1 story published more than once (2 articles), each cited once\n" in out


def test_ask_shows_where_each_source_was_published(env, two_sites_index, monkeypatch):
    monkeypatch.setenv("NEWSQA_INDEX_DIR", str(two_sites_index))
    code, out, _ = run("ask", "-k", "10", "Nga yêu cầu NATO những gì?")
    assert code == 0
    sources = out.split(f"\n{VI.sources}:\n", 1)[1].split(f"\n\n{VI.also_retrieved}:", 1)[0].splitlines()
    title, byline = sources[0], sources[1]
    assert title.startswith("Tổng thống Vladimir Putin")
    # The copy the answer cites, then the other site that ran it: whichever copy ranked first.
    cited, other = ("tin-a", "tin-b") if "tin-a.vn" in byline else ("tin-b", "tin-a")
    assert byline == f"  {cited}.vn · 2024-03-02 · https://{cited}.vn/{cited}--putin"
    assert sources[2].startswith(f"  [1] {VI.paragraph} ")
    assert f"  {VI.also_published}: {other}.vn (https://{other}.vn/{other}--putin)" in sources


def test_eval_reports_hits_per_kind(env):
    code, out, _ = run("eval")
    assert code == 0
    for kind in ["en", "vi", "vi_nodiac", "paraphrase", "unanswerable"]:
        assert f"\n{kind} " in out or out.startswith(kind)
    assert "found decision: precision" in out
    # and the seed conversations' second turns, with and without the first
    assert "R@5 context" in out and "\nall follow_up " in out and "\nall switch " in out


@pytest.mark.parametrize(
    "args,variables,needle",
    [
        (["ask", "NATO"], {"NEWSQA_INDEX_DIR": "/nonexistent/index"}, "No index found at /nonexistent/index; run `newsqa index build`"),
        (["ask", "   "], {}, "The question is empty"),
        (["ask", "NATO"], {"NEWSQA_TOP_K": "many"}, "NEWSQA_TOP_K=many is not valid (Input should be a valid integer, unable to parse string as an integer); allowed: 1 to 50."),
        (["index", "build", "--seeds", "/nonexistent/seeds"], {}, "does not exist"),
        (["index", "build"], {"NEWSQA_EMBEDDING_MODEL": "intfloat/multilingual-e5-small"}, "set NEWSQA_EMBEDDING_MODEL to a local"),
    ],
)
def test_errors_are_one_sentence_and_no_traceback(env, tmp_path, monkeypatch, args, variables, needle):
    monkeypatch.setenv("NEWSQA_INDEX_DIR", str(tmp_path / "idx")) if args[:2] == ["index", "build"] else None
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    code, out, err = run(*args)
    assert code != 0
    assert needle in err
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and needle in errors[0]


def test_model_mismatch_is_one_sentence(env, tiny_model_path, monkeypatch):
    monkeypatch.setenv("NEWSQA_EMBEDDING_MODEL", tiny_model_path)
    code, _, err = run("ask", "NATO")
    assert code == 1 and "was built with the model" in err and "Traceback" not in err


@pytest.mark.slow
def test_build_and_ask_in_real_processes(model_path, tmp_path):
    env = os.environ | {"NEWSQA_EMBEDDING_MODEL": model_path, "NEWSQA_INDEX_DIR": str(tmp_path / "idx")}
    newsqa = [sys.executable, "-m", "newsqa.bot.cli"]
    build = subprocess.run(
        [*newsqa, "index", "build", "--seeds", str(SEEDS)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert build.returncode == 0, build.stderr
    assert "Indexed 2 articles" in build.stdout and "embed" in build.stderr  # progress is shown
    ask = subprocess.run(
        [*newsqa, "ask", "--json", "Anh có thể tăng gấp đôi bao nhiêu quân ở Đông Âu?"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert ask.returncode == 0, ask.stderr
    data = json.loads(ask.stdout)
    assert data["found"] and "1.150 quân" in data["citations"][0]["text"]
    assert ask.stderr == ""  # no library chatter, progress bars or warnings on a normal answer


def _read_until(fd: int, marker: str, timeout: float = 120.0) -> str:
    """What the terminal shows until `marker` appears (escape sequences removed)."""
    import re
    import select
    import time

    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode("utf-8", "replace"))
            if marker in text:
                return text
    raise AssertionError(f"{marker!r} never appeared; the terminal showed:\n{seen.decode('utf-8', 'replace')}")


@pytest.mark.slow
def test_chat_in_a_terminal_reads_follow_ups_with_the_question_before(env):
    """`newsqa chat` as a person uses it, under a pseudo-terminal: a follow-up is read with the
    previous question, /new starts afresh, Ctrl-D leaves."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: the command in the terminal
        child_env = {**env, "HF_HUB_OFFLINE": "1", "LANG": "C.UTF-8"}
        os.execvpe(sys.executable, [sys.executable, "-m", "newsqa", "chat"], child_env)
    try:
        assert EN.chat_help.splitlines()[-1] in _read_until(fd, "\n> ")  # the terminal's language
        os.write(fd, "Nga yêu cầu NATO những gì?\n".encode())
        first = _read_until(fd, "\n> ")
        assert "[1]" in first and f"{VI.sources}:" in first and VI.read_with not in first  # the question's language
        os.write(fd, "Còn Mỹ thì sao?\n".encode())
        assert f"({VI.read_with}: «Nga yêu cầu NATO những gì?»)" in _read_until(fd, "\n> ")
        os.write(fd, b"/new\n")
        assert VI.new_conversation in _read_until(fd, "\n> ")
        os.write(fd, "Còn Mỹ thì sao?\n".encode())
        assert VI.read_with not in _read_until(fd, "\n> ")
        os.write(fd, "What did Russia demand from NATO?\n".encode())
        assert f"{EN.sources}:" in _read_until(fd, "\n> ")
        os.write(fd, b"\x04")  # Ctrl-D
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        os.close(fd)


@pytest.mark.slow
def test_serve_on_a_busy_port_is_one_sentence_naming_the_port(env):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "newsqa", "serve", "--port", str(port)], capture_output=True, text=True, timeout=120, env=env
        )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: port {port} on 127.0.0.1 is already in use; stop what uses it or choose another with --port or NEWSQA_PORT."
    )


@pytest.mark.slow
def test_feedback_export_writes_each_vote_as_a_json_line(seed_service, tmp_path):
    from newsqa.bot.state import StateStore

    index_dir = tmp_path / "index"
    store = StateStore(index_dir / "state" / "state.sqlite")  # where the server keeps it by default
    liked, disliked = seed_service.ask("Nga yêu cầu NATO những gì?"), seed_service.ask("What did Russia demand from NATO?")
    for answer in (liked, disliked):
        store.record_answer(answer)
    store.vote(liked.answer_id, "down", "http")
    store.vote(disliked.answer_id, "down", "telegram", "Thiếu nguồn.")
    store.vote(liked.answer_id, "up", "http")  # replaces its first vote
    store.close()
    env = {k: v for k, v in os.environ.items() if k != "NEWSQA_STATE_DIR"} | {"NEWSQA_INDEX_DIR": str(index_dir)}
    newsqa = [sys.executable, "-m", "newsqa", "feedback", "export"]

    result = subprocess.run(newsqa, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stderr == "Wrote 2 votes.\n"
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["answer_id"], r["vote"], r["channel"], r["comment"]) for r in rows] == [
        (disliked.answer_id, "down", "telegram", "Thiếu nguồn."), (liked.answer_id, "up", "http", None)
    ]
    assert rows[1]["question"] == liked.question and rows[1]["answer"] == liked.answer
    assert rows[1]["citations"] == [c.model_dump(mode="json") for c in liked.citations]
    assert rows[1]["build_id"] == liked.build_id and rows[1]["language"] == "vi" and rows[0]["language"] == "en"
    assert rows[1]["at"].endswith("+00:00")

    output = tmp_path / "votes.jsonl"
    result = subprocess.run([*newsqa, "--output", str(output)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == f"Wrote 2 votes to {output}.\n"
    assert [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()] == rows

    nowhere = tmp_path / "no-state"  # NEWSQA_STATE_DIR, where nothing was ever voted
    result = subprocess.run(
        [*newsqa, "--output", str(tmp_path / "none.jsonl")], env=env | {"NEWSQA_STATE_DIR": str(nowhere)},
        capture_output=True, text=True, timeout=120,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "No feedback has been given yet.\n")
    assert not (tmp_path / "none.jsonl").exists() and not nowhere.exists()


@pytest.mark.slow
def test_a_bad_variable_is_named_with_its_value_and_what_it_may_be(env):
    result = subprocess.run(
        [sys.executable, "-m", "newsqa", "ask", "NATO"], capture_output=True, text=True, timeout=120,
        env={**env, "NEWSQA_FUSION": "best"},
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Error: NEWSQA_FUSION=best is not valid (String should match pattern '^(weighted|rrf)$'); allowed: weighted or rrf."
    )
