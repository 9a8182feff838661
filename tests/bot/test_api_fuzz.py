"""Schemathesis over the app's own OpenAPI document: no 5xx and no reply that breaks its schema.

The app runs in process (ASGI), in three set-ups: open (over a keyword-only index of the seeds, the
cheapest to ask), with an API key and a limit too high to reach (over the seed index with the real
model), and rate limited. `bench/fuzz_api.py` holds the
fuzzer and runs longer; here about 1,400 generated requests in all.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench.fuzz_api import FuzzReport, fuzz
from newsqa.bot.http import create_app
from newsqa.bot.settings import Settings
from tests.conftest import http_settings

API_KEY = "fuzz-key-0123456789abcdef"
GENERATED = {"total": 0}  # across this module's runs, checked by the last test


def settings(**overrides: Any) -> Settings:
    return http_settings(**overrides)



def assert_clean(report: FuzzReport, at_least: int) -> None:
    GENERATED["total"] += report.total
    failures = "\n\n".join(f"=== {kind}\n{text}" for kind, text in report.failures.items())
    assert not report.failures, f"{report.table()}\n\n{failures}"
    assert report.total >= at_least, report.table()
    assert not [s for s in report.statuses if s >= 500], report.table()


@pytest.fixture(scope="module")
def keyword_service(tmp_path_factory, service_factory):
    """A keyword-only index of the seeds: the same API, ten times as many requests a second."""
    from newsqa.index.build import build_index
    from tests.conftest import SEEDS

    root = tmp_path_factory.mktemp("fuzz-index")
    build_index(SEEDS, root, None)
    service = service_factory(root)
    service.warm_up()
    return service


def test_fuzz_the_open_api(keyword_service):
    report = fuzz(create_app(settings(), keyword_service), cases=1000)
    assert_clean(report, 950)
    assert report.statuses[200] > 100 and report.statuses[422] > 50  # both answers and refusals were reached


def test_fuzz_with_an_api_key(seed_service):
    app = create_app(settings(api_key=API_KEY, http_rate_limit=1_000_000), seed_service)
    report = fuzz(app, cases=300, api_key=API_KEY)
    assert_clean(report, 250)
    assert report.statuses[401] > 0  # schema-breaking credentials were refused


def test_fuzz_while_rate_limited(keyword_service):
    report = fuzz(create_app(settings(http_rate_limit=20), keyword_service), cases=150)
    assert_clean(report, 100)
    assert report.statuses[429] > 50  # the 429 replies matched their documented schema and headers


def test_at_least_a_thousand_cases_ran():
    if GENERATED["total"] == 0:
        pytest.skip("run with the fuzz tests above")
    assert GENERATED["total"] >= 1000


def test_a_question_within_the_schemas_limit_is_not_refused_as_too_long(seed_service):
    from fastapi.testclient import TestClient

    with TestClient(create_app(settings(), seed_service)) as client:
        response = client.post("/ask", json={"question": "\u0958" * 600})  # 600 of the 1,000 characters allowed
    assert response.status_code == 200, response.json()["error"]
