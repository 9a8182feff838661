"""No secret (bot token, API key, webhook secret) in any log line or error message, during a run
full of the moments that tend to leak them: wrong and right keys, 401, 413, 429, a refused reload,
webhook calls with a wrong secret, Bot API 429/500/dropped/garbled replies.

Everything is captured: every logger at DEBUG (httpx's request URLs carry the token), uvicorn's
access and error logs, the process's own stdout and stderr, and, for `newsqa serve` in a real
process, all it writes.
"""

from __future__ import annotations

import asyncio
import hmac
import io
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from newsqa.bot.http import create_app
from newsqa.bot.settings import Settings
from newsqa.bot.telegram.webhook import SECRET_HEADER
from newsqa.index.build import build_index
from newsqa.retrieval.service import QAService, ServiceConfig
from tests.bot.fake_bot_api import FakeBotApi, wait_until
from tests.bot.test_http import LiveServer
from tests.bot.test_telegram import VI_QUESTION, answer_to, running_bot
from tests.conftest import REPO, SEEDS

BOT_TOKEN = "5151515151:AASecretBotTokenForLeakTests_xyz-0987"
API_KEY = "api-Key-That-Must-Never-Leak-4d9f2c"
WEBHOOK_SECRET = "webhook-Secret-Never-Logged_77aa"
SECRETS = (BOT_TOKEN, API_KEY, WEBHOOK_SECRET)
HOOK = "/telegram/webhook"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
RATE_LIMIT = 20  # a minute: room for the requests below, then a 429
LOGGERS = ("", "uvicorn", "uvicorn.access", "uvicorn.error", "httpx", "httpcore", "telegram", "bot", "index", "retrieval")

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")]


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret ({secret[:6]}…) appears in {where}"
        # Nor its most likely partial forms: the token's secret half, a key cut at a boundary.
        assert secret.split(":")[-1][6:] not in text, f"part of a secret ({secret[:6]}…) appears in {where}"


@pytest.fixture
def all_logs() -> Iterator[io.StringIO]:
    """Every record of every logger, formatted with its traceback, into one buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    root = logging.getLogger()
    root.addHandler(handler)
    debug_everything()
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def debug_everything() -> None:
    # Called again after the bot starts: it quiets httpx, whose request lines hold the token.
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)


@pytest.fixture
def lexical_root(tmp_path) -> Path:
    root = tmp_path / "index"
    build_index(SEEDS, root, None)
    return root


def damaged_build(root: Path, tmp_path: Path) -> None:
    """A new build in `root` whose passages no longer match their checksum."""
    seeds = tmp_path / "more-seeds"
    shutil.copytree(SEEDS, seeds)
    (seeds / "extra.txt").write_text("Bài thêm\n\nMột bài báo thêm về thời tiết ở Hà Nội.\n", encoding="utf-8")
    report = build_index(seeds, root, None)
    with open(report.folder / "passages.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"garbage": true}\n')


def app_settings(fake: FakeBotApi, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "api_key": API_KEY,
        "reload_interval": 0,
        "http_max_body_bytes": 1024,
        "http_rate_limit": RATE_LIMIT,
        "telegram_webhook_path": HOOK,
        "telegram_webhook_secret": WEBHOOK_SECRET,
        "telegram_webhook_url": "https://bot.example.test/telegram/webhook",
        "telegram_base_url": fake.base_url,
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
    }
    return Settings(**(values | overrides))


def exercise_http(url: str, fake: FakeBotApi, root: Path, tmp_path: Path) -> list[int]:
    """Every request that could put a secret in a log line; returns the statuses seen."""
    seen: list[int] = []
    update = {"update_id": 4242, "message": fake.message(VI_QUESTION, chat_id=777)}
    with httpx.Client(base_url=url, timeout=60) as c:

        def send(method: str, path: str, **kwargs: Any) -> httpx.Response:
            response = c.request(method, path, **kwargs)
            seen.append(response.status_code)
            assert_no_secret(response.text + str(response.headers), f"the reply to {method} {path}")
            return response

        for _ in range(10):  # the index loads in the background; a keyword-only one in moments
            if send("GET", "/readyz", headers=AUTH).status_code == 200:
                break
            time.sleep(0.3)
        assert send("POST", "/ask", json={"question": "NATO"}).status_code == 401
        assert send("POST", "/ask", json={"question": "NATO"}, headers={"Authorization": f"Bearer {API_KEY}x"}).status_code == 401
        assert send("POST", "/ask", json={"question": "NATO"}, headers={"Authorization": API_KEY}).status_code == 401
        assert send("POST", "/ask", json={"question": "Nga yêu cầu NATO những gì?"}, headers=AUTH).status_code == 200
        big = {"question": "x" * 2000}
        assert send("POST", "/ask", json=big, headers=AUTH).status_code == 413
        damaged_build(root, tmp_path)
        assert send("POST", "/admin/reload", headers=AUTH).status_code == 503
        # The webhook: a wrong secret, the secret in the wrong header, then a real update.
        assert send("POST", HOOK, json=update, headers={SECRET_HEADER: WEBHOOK_SECRET[:-1]}).status_code == 403
        assert send("POST", HOOK, json=update, headers={"Authorization": f"Bearer {WEBHOOK_SECRET}"}).status_code == 403
        fake.fail_next("429", 1, retry_after=1)
        fake.fail_next("500", 1)
        assert send("POST", HOOK, json=update, headers={SECRET_HEADER: WEBHOOK_SECRET}).status_code == 200
        wait_until(lambda: fake.sent(777), timeout=30)
        for _ in range(RATE_LIMIT + 5):  # the key holder's bucket runs out
            if send("GET", "/articles", headers=AUTH).status_code == 429:
                break
    return seen


def test_no_secret_in_any_log_of_the_http_app_and_the_bot(lexical_root, tmp_path, all_logs, capfd, monkeypatch):
    service = QAService(ServiceConfig(index_dir=lexical_root, model="none"))
    compared: list[tuple[bytes, bytes]] = []
    real_compare = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((bytes(a), bytes(b)))
        return real_compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    with FakeBotApi(BOT_TOKEN, max_long_poll_s=1.0) as fake:
        fake.fail_next("429", 1, methods=["setWebhook"], retry_after=1)
        fake.fail_next("500", 1, methods=["setWebhook"])
        server = LiveServer(create_app(app_settings(fake), service))
        server.start()
        debug_everything()
        try:
            statuses = exercise_http(server.url, fake, lexical_root, tmp_path)
        finally:
            server.stop()
        assert fake.webhook.get("secret_token") == WEBHOOK_SECRET  # registered, after its faults

        # The polling bot, through every fault the fake can produce.
        async def poll_with_faults() -> None:
            async with running_bot(service, fake, token=BOT_TOKEN):
                debug_everything()
                for kind in ("429", "500", "drop"):  # three failed tries of four
                    fake.fail_next(kind, 1)
                fake.fail_next("500", 1, methods=["getUpdates"])
                fake.fail_next("malformed", 1, methods=["getUpdates"])
                fake.push_message(VI_QUESTION, chat_id=778)
                await answer_to(fake, 778)

        asyncio.run(asyncio.wait_for(poll_with_faults(), 90))

    logs = all_logs.getvalue()
    out, err = capfd.readouterr()
    assert {401, 403, 413, 429, 503, 200} <= set(statuses)
    # Both secrets a client sends were compared in constant time, wrong guesses included.
    assert (f"{API_KEY}x".encode(), API_KEY.encode()) in compared
    assert (WEBHOOK_SECRET[:-1].encode(), WEBHOOK_SECRET.encode()) in compared
    # The capture saw the moments that matter (else the assertions below would prove nothing).
    for evidence in ('"POST /ask HTTP/1.1" 401', '"POST /ask HTTP/1.1" 413', '" 429', "new index refused",
                     "rate limit:", "Bot API sendMessage failed", "[REDACTED]", "getUpdates"):
        assert evidence in logs, f"expected {evidence!r} in the captured logs"
    assert_no_secret(logs, "the logs")
    assert_no_secret(out + err, "stdout/stderr")


# -- `newsqa serve` in a process of its own --------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_secret_in_the_output_of_newsqa_serve(lexical_root, model_path, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with FakeBotApi(BOT_TOKEN, max_long_poll_s=1.0) as fake:
        fake.fail_next("500", 1, methods=["setWebhook"])
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSQA_")} | {
            "HF_HUB_OFFLINE": "1",
            "NEWSQA_INDEX_DIR": str(lexical_root),
            "NEWSQA_EMBEDDING_MODEL": model_path,
            "NEWSQA_API_KEY": API_KEY,
            "NEWSQA_HTTP_MAX_BODY_BYTES": "1024",
            "NEWSQA_HTTP_RATE_LIMIT": str(RATE_LIMIT),
            "NEWSQA_RELOAD_INTERVAL": "0",
            "NEWSQA_TELEGRAM_WEBHOOK_PATH": HOOK,
            "NEWSQA_TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "NEWSQA_TELEGRAM_WEBHOOK_URL": "https://bot.example.test/telegram/webhook",
            "NEWSQA_TELEGRAM_BASE_URL": fake.base_url,
            "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        }
        cmd = [sys.executable, "-m", "newsqa.bot.cli", "-vv", "serve", "--host", "127.0.0.1", "--port", str(port)]
        process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:

            def up() -> bool:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                try:
                    return httpx.get(f"{url}/healthz", timeout=5).status_code == 200  # not rate limited
                except httpx.HTTPError:
                    return False

            wait_until(up, timeout=120, interval=0.2)
            statuses = exercise_http(url, fake, lexical_root, tmp_path)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                output, _ = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                output, _ = process.communicate()
    assert {401, 403, 413, 429, 503, 200} <= set(statuses)
    for evidence in ('"POST /ask HTTP/1.1" 401', "new index refused", "rate limit:", "Serving on"):
        assert evidence in output, f"expected {evidence!r} in the output of newsqa serve"
    assert_no_secret(output, "the output of newsqa serve")
