"""Votes on answers (👍/👎) over the HTTP API, as a client gives them: POST /ask, then POST /feedback
naming the answer's id, on the real app under uvicorn; and what `newsqa feedback export` then
writes. (Telegram's buttons: tests/bot/test_telegram.py; the store itself: tests/bot/test_state.py.)"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from newsqa.bot.cli import cli
from newsqa.bot.http import create_app
from newsqa.bot.http.schemas import ANSWER_ID_RULE
from newsqa.bot.state import FILE, StateStore
from tests.bot.test_http import API_KEY, LiveServer, assert_error, ready
from tests.conftest import http_settings

QUESTION = "Nga yêu cầu NATO những gì?"
NOT_FOUND = "What is the capital of Australia?"


@pytest.fixture
def servers(seed_service) -> Iterator[Callable[..., str]]:
    """Starts apps over the seed index (settings overridden as given, a store if given); stops them."""
    started: list[LiveServer] = []

    def start(state: StateStore | None = None, **overrides: Any) -> str:
        server = LiveServer(create_app(http_settings(**overrides), seed_service, state=state))
        started.append(server)
        url = server.start()
        ready(url, {"Authorization": f"Bearer {API_KEY}"} if overrides.get("api_key") else None)
        return url

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def state_dir(tmp_path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def client(servers, state_dir) -> Iterator[httpx.Client]:
    """A client of a server that keeps its state in `state_dir`, as NEWSQA_STATE_DIR would."""
    with httpx.Client(base_url=servers(state_dir=state_dir), timeout=60) as c:
        yield c


def asked(client: httpx.Client, question: str = QUESTION, **headers: str) -> dict[str, Any]:
    response = client.post("/ask", json={"question": question}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def voted(client: httpx.Client, answer_id: str, vote: str, **extra: Any) -> dict[str, Any]:
    response = client.post("/feedback", json={"answer_id": answer_id, "vote": vote, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def export(state_dir: Path, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    result = CliRunner().invoke(cli, ["feedback", "export", *args], env={"NEWSQA_STATE_DIR": str(state_dir)})
    return result.exit_code, [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def test_a_vote_is_kept_with_the_answer_and_a_second_vote_replaces_it(client, state_dir):
    answer = asked(client)
    assert answer["found"] and answer["citations"]
    assert voted(client, answer["answer_id"], "up") == {"answer_id": answer["answer_id"], "vote": "up", "replaced": False}
    assert voted(client, answer["answer_id"], "down", comment="Thiếu ý về Ukraine.") == {
        "answer_id": answer["answer_id"], "vote": "down", "replaced": True
    }
    code, rows, err = export(state_dir)
    assert code == 0 and err.strip() == "Wrote 1 vote."
    [row] = rows
    assert {k: row[k] for k in ("answer_id", "vote", "question", "answer", "citations", "build_id", "language")} == {
        k: answer[k] for k in ("answer_id", "question", "answer", "citations", "build_id", "language")
    } | {"vote": "down"}
    assert row["channel"] == "http" and row["comment"] == "Thiếu ý về Ukraine."
    assert row["at"].endswith("+00:00")  # ISO-8601, UTC


def test_every_answer_can_be_voted_on_not_found_ones_too(client, state_dir):
    answers = [asked(client), asked(client), asked(client, NOT_FOUND)]
    assert len({a["answer_id"] for a in answers}) == 3  # the same question answered twice: two answers
    assert answers[2]["found"] is False
    for answer, vote in zip(answers, ("up", "down", "down")):
        assert voted(client, answer["answer_id"], vote)["replaced"] is False
    code, rows, err = export(state_dir, "--output", str(state_dir / "votes.jsonl"))
    assert code == 0 and rows == [] and err.strip() == f"Wrote 3 votes to {state_dir / 'votes.jsonl'}."
    written = [json.loads(line) for line in (state_dir / "votes.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["answer_id"], r["vote"]) for r in written] == [(a["answer_id"], v) for a, v in zip(answers, ("up", "down", "down"))]
    assert written[2]["citations"] == [] and written[2]["question"] == NOT_FOUND


def test_an_unknown_answer_is_a_404_in_the_usual_shape(client):
    body = assert_error(client.post("/feedback", json={"answer_id": uuid.uuid4().hex, "vote": "up"}), 404, "unknown_answer")
    assert body["detail"] is None and body["error"].count(". ") == 0  # one sentence


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"answer_id": "abc", "vote": "up"}, "answer_id", ANSWER_ID_RULE),
        ({"answer_id": "A" * 32, "vote": "up"}, "answer_id", ANSWER_ID_RULE),
        ({"answer_id": "a" * 33, "vote": "up"}, "answer_id", ANSWER_ID_RULE),
        ({"answer_id": 12, "vote": "up"}, "answer_id", "must be text"),
        ({"vote": "up"}, "answer_id", "needs"),
        ({"answer_id": "a" * 32, "vote": "meh"}, "vote", '"vote" must be "up" or "down"'),
        ({"answer_id": "a" * 32, "vote": 1}, "vote", '"vote" must be "up" or "down"'),
        ({"answer_id": "a" * 32}, "vote", "needs"),
        ({"answer_id": "a" * 32, "vote": "up", "comment": "x" * 1001}, "comment", "1000"),
        ({"answer_id": "a" * 32, "vote": "up", "comment": ["x"]}, "comment", "must be text"),
        ({"answer_id": "a" * 32, "vote": "up", "stars": 5}, "stars", "not a field"),
    ],
)
def test_a_malformed_vote_is_a_422_naming_the_field(client, body, field, says):
    problem = assert_error(client.post("/feedback", json=body), 422, "invalid_request")
    assert any(p["field"] == field and says in p["problem"] for p in problem["detail"]), problem


def test_a_body_that_is_not_json_is_a_400(client):
    assert_error(client.post("/feedback", content=b'{"vote": ', headers={"Content-Type": "application/json"}), 400, "invalid_json")


def test_votes_need_the_api_key_when_one_is_set(servers):
    key = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=servers(api_key=API_KEY), timeout=60) as c:
        answer = asked(c, **key)
        body = {"answer_id": answer["answer_id"], "vote": "up"}
        missing = c.post("/feedback", json=body)
        assert_error(missing, 401, "unauthorized", "needs an API key")
        assert_error(c.post("/feedback", json=body, headers={"Authorization": f"Bearer {API_KEY}x"}), 401, "unauthorized")
        assert c.post("/feedback", json=body, headers=key).json()["replaced"] is False


def test_a_vote_may_reach_another_server_process_than_the_answer(servers, state_dir):
    # Two apps with stores of their own over one state file, as two worker processes of one server.
    first, second = (StateStore(state_dir / FILE) for _ in range(2))
    try:
        with httpx.Client(base_url=servers(first), timeout=60) as a, httpx.Client(base_url=servers(second), timeout=60) as b:
            answer = asked(a)
            assert voted(b, answer["answer_id"], "up")["replaced"] is False
            assert voted(a, answer["answer_id"], "down")["replaced"] is True
        assert [(r.answer_id, r.vote) for r in second.feedback_rows()] == [(answer["answer_id"], "down")]
    finally:
        first.close()
        second.close()


def test_an_unusable_state_file_still_answers_and_refuses_votes_with_a_503(servers, tmp_path, caplog):
    not_a_folder = tmp_path / "state"
    not_a_folder.write_text("a file where the state folder should be", encoding="utf-8")
    with httpx.Client(base_url=servers(state_dir=not_a_folder), timeout=60) as c:
        answer = asked(c)
        assert answer["found"]
        refused = c.post("/feedback", json={"answer_id": answer["answer_id"], "vote": "up"})
    assert_error(refused, 503, "unavailable", "could not be stored")
    assert any("cannot be voted on" in r.getMessage() for r in caplog.records)


def test_the_schema_documents_the_vote_and_its_errors(client):
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/feedback"]["post"]
    for status in ("400", "404", "413", "422", "503"):
        assert operation["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    request = schema["components"]["schemas"]["FeedbackRequest"]
    assert request["additionalProperties"] is False and set(request["required"]) == {"answer_id", "vote"}
    assert request["properties"]["answer_id"]["pattern"] == "^[0-9a-f]{32}$"
    assert request["properties"]["vote"]["enum"] == ["up", "down"]
