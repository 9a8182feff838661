"""Schemathesis over the app's own OpenAPI document: no 5xx and no reply that breaks its schema.

`bench/fuzz_api.py` runs as a script, in a process of its own (the suite never imports bench/), and
fuzzes the app there in process (ASGI), in three set-ups: open (over a keyword-only index of the
seeds, the cheapest to ask), with an API key and a limit too high to reach (over a hybrid index of
the seeds with the stand-in model), and rate limited; about 1,450 generated requests in all. What
is checked is what it prints: its table of cases and statuses, its failures and its exit status.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from newsqa.bot.http import create_app
from newsqa.bot.settings import Settings
from tests.conftest import REPO, http_settings

API_KEY = "fuzz-key-0123456789abcdef"
GENERATED = {"total": 0}  # across this module's runs, checked by the last test


def settings(**overrides: Any) -> Settings:
    return http_settings(**overrides)


@dataclass
class Printed:
    """bench/fuzz_api.py's report as printed: its table, then one `=== kind` section per failure."""

    output: str
    returncode: int
    total: int
    statuses: collections.Counter[int]
    failures: int

    @classmethod
    def parse(cls, result: subprocess.CompletedProcess) -> Printed:
        out = result.stdout
        total = re.search(r"^total\s+(\d+)\s+in ", out, re.M)
        statuses = re.search(r"^statuses: (.*)$", out, re.M)
        failures = re.search(r"^failures: (\d+)$", out, re.M)
        assert total and statuses and failures, f"no report printed (exit {result.returncode}):\n{out}\n{result.stderr[-3000:]}"
        counts = collections.Counter({int(s): int(n) for s, n in re.findall(r"(\d+)×(\d+)", statuses.group(1))})
        return cls(out, result.returncode, int(total.group(1)), counts, int(failures.group(1)))


def fuzz(tmp_path, *args: str) -> Printed:
    """Run the fuzzer with these arguments; NEWSQA_* variables of the environment (a developer's API
    key, say) are left out, and its temporary index goes under tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSQA_")} | {"TMPDIR": str(tmp_path)}
    result = subprocess.run([sys.executable, str(REPO / "bench" / "fuzz_api.py"), *args],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    return Printed.parse(result)


def assert_clean(report: Printed, at_least: int) -> None:
    GENERATED["total"] += report.total
    assert report.failures == 0 and report.returncode == 0, report.output
    assert report.total >= at_least, report.output
    assert not [s for s in report.statuses if s >= 500], report.output


@pytest.mark.slow
def test_fuzz_the_open_api(tmp_path):
    report = fuzz(tmp_path, "--cases", "1000")  # over a keyword-only index of the seeds
    assert_clean(report, 950)
    assert report.statuses[200] > 100 and report.statuses[422] > 50  # both answers and refusals were reached


@pytest.mark.slow
def test_fuzz_with_an_api_key(tmp_path, model_path):
    report = fuzz(tmp_path, "--cases", "300", "--api-key", API_KEY, "--rate-limit", "1000000", "--model", model_path)
    assert_clean(report, 250)
    assert report.statuses[401] > 0  # schema-breaking credentials were refused


@pytest.mark.slow
def test_fuzz_while_rate_limited(tmp_path):
    report = fuzz(tmp_path, "--cases", "150", "--rate-limit", "20")
    assert_clean(report, 100)
    assert report.statuses[429] > 50  # the 429 replies matched their documented schema and headers


@pytest.mark.slow
def test_at_least_a_thousand_cases_ran():
    if GENERATED["total"] == 0:
        pytest.skip("run with the fuzz tests above")
    assert GENERATED["total"] >= 1000


@pytest.mark.slow
def test_a_question_within_the_schemas_limit_is_not_refused_as_too_long(seed_service):
    from fastapi.testclient import TestClient

    with TestClient(create_app(settings(), seed_service)) as client:
        response = client.post("/ask", json={"question": "\u0958" * 600})  # 600 of the 1,000 characters allowed
    assert response.status_code == 200, response.json()["error"]
