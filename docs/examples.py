"""The examples in README.md and docs/http-api.md, produced by the product itself so they cannot go
stale: each is the output of a real command or request against the index the NEWSQA_* settings
name (the seed articles under the default model).

    .venv/bin/python docs/examples.py           # rewrite every example in place
    .venv/bin/python docs/examples.py --check   # exit 1 naming each example that differs

An example sits between `<!-- example: NAME -->` and `<!-- /example -->` in a Markdown file. The
check ignores what differs on every run (ids, timings) and scores past two decimals;
tests/test_default_model.py runs it.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FILES = (REPO / "README.md", REPO / "docs" / "http-api.md")
BLOCK = re.compile(r"(<!-- example: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /example -->)", re.S)
PER_RUN = ("answer_id", "build_id", "took_ms")  # differ on every run: not compared


def newsqa(*args: str, stdin: str | None = None) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "newsqa", *args], input=stdin, capture_output=True, text=True, check=True, timeout=600
    )
    return out.stdout


def ask_example() -> str:
    question = "What did Russia demand from NATO?"
    return f'```\n$ newsqa ask "{question}"\n{newsqa("ask", question).rstrip()}\n```\n'


def chat_example() -> str:
    questions = ["Nga yêu cầu NATO những gì?", "Còn Mỹ thì sao?"]
    shown = newsqa("chat", stdin="".join(f"{q}\n" for q in questions))
    # Piped, the terminal does not echo what is typed: put each question after its prompt.
    turns = shown.split("\n> ")[1 : len(questions) + 1]
    lines = ["$ newsqa chat"]
    for question, output in zip(questions, turns, strict=True):
        lines.append(f"> {question}")
        lines.append(output.rstrip("\n"))
    return "```\n" + "\n".join(lines) + "\n```\n"


@contextlib.contextmanager
def _client() -> Iterator[Any]:
    """The app in this process (FastAPI's test client: the real routes, no socket), once it has
    loaded the index (it loads in the background, as a server does)."""
    from fastapi.testclient import TestClient

    from newsqa.bot.http import create_app

    with TestClient(create_app()) as client:
        deadline = time.monotonic() + 300
        while client.get("/readyz").status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the index did not load: {client.get('/readyz').text}")
            time.sleep(0.1)
        yield client


def http_ask_example() -> str:
    with _client() as client:
        reply = client.post("/ask", json={"question": "Nga yêu cầu NATO những gì?", "top_k": 3})
    reply.raise_for_status()
    return "```json\n" + json.dumps(reply.json(), ensure_ascii=False, indent=2) + "\n```\n"


def http_error_example() -> str:
    with _client() as client:
        reply = client.post("/ask", json={"question": "x" * 1001})
    return f"`{reply.status_code}`:\n\n```json\n" + json.dumps(reply.json(), ensure_ascii=False, indent=1) + "\n```\n"


EXAMPLES: dict[str, Callable[[], str]] = {
    "ask": ask_example,
    "chat": chat_example,
    "http-ask": http_ask_example,
    "http-error": http_error_example,
}


def comparable(text: str) -> Any:
    """What must not change: JSON with the per-run fields dropped and numbers to two decimals; any
    other text as it is."""
    body = text.split("```json\n", 1)[-1].rsplit("```", 1)[0] if "```json" in text else None
    if body is None:
        return text
    head = text.split("```json\n", 1)[0]

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in PER_RUN}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return round(value, 2) if isinstance(value, float) else value

    return head, strip(json.loads(body))


def main(argv: list[str]) -> int:
    check = "--check" in argv
    made: dict[str, str] = {}
    stale: list[str] = []
    for path in FILES:
        text = path.read_text(encoding="utf-8")

        def replace(match: re.Match[str]) -> str:
            name = match["name"]
            if name not in made:
                made[name] = EXAMPLES[name]()
            if comparable(made[name]) != comparable(match["body"]):
                stale.append(f"{path.relative_to(REPO)}: the example '{name}' is not what the product says now")
            return match[1] + made[name] + match[4]

        updated = BLOCK.sub(replace, text)
        if not check and updated != text:
            path.write_text(updated, encoding="utf-8")
    missing = set(EXAMPLES) - set(made)
    for name in sorted(missing):
        stale.append(f"no file holds the example '{name}'")
    for line in stale:
        print(line, file=sys.stderr)
    if check:
        return 1 if stale else 0
    print(f"{len(made)} examples written; {len(stale) - len(missing)} had changed", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
