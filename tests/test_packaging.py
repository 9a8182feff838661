"""What `pip install .` puts into site-packages: one package, `newsqa`, with everything it runs on."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

PRODUCT_FOLDERS = ("bot", "index", "retrieval")
pytestmark = pytest.mark.slow  # pip builds the wheel, and it runs, in processes of their own


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # No build isolation: the venv's setuptools (a test dependency) builds it without a network.
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out), str(REPO)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    (built,) = out.glob("newsqa-*.whl")
    return built


def test_the_wheel_installs_only_the_newsqa_namespace(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"newsqa"}


def test_every_module_and_data_file_of_the_product_is_in_the_wheel(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for folder in PRODUCT_FOLDERS:
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix in {".py", ".json", ".html", ".js", ".css"}:
                expected.add("newsqa/" + path.relative_to(REPO).as_posix())
    missing = sorted(expected - names)
    assert not missing, f"left out of the wheel (add the package to pyproject.toml's packages): {missing[:10]}"


def test_newsqa_runs_from_the_installed_files_alone(wheel, tmp_path):
    """Unpacked away from the repository, the command line starts and finds its packaged data."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = (
        "import newsqa, newsqa.bot.cli, newsqa.retrieval.evaluate as e; "
        "assert newsqa.__file__.startswith(%r), newsqa.__file__; "
        "assert e.SEED_QUESTIONS.is_file(); "
        "from importlib import resources; assert (resources.files('newsqa.bot') / 'web' / 'index.html').is_file(); "
        "print('ok')" % str(site)
    )
    run = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr
    help_ = subprocess.run(
        [sys.executable, "-m", "newsqa", "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert help_.returncode == 0 and "index" in help_.stdout, help_.stderr
