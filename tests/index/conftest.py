"""Builds of the generated corpus (tests/conftest.py's `generated_seeds`), made once per session and
shared by the modules that read them: embedding its ~740 passages is the costliest thing the suite
does, so no module builds it for itself. Treat every folder here as read-only (copy it to change it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import SEEDS

RAY_ARTICLES = 140  # generated articles in the Ray comparison's corpus: ~350 passages, all distinct


@pytest.fixture(scope="session")
def one_and_four(generated_seeds, embedder, tmp_path_factory) -> tuple[Path, Path]:
    """The same corpus built as one index and as four shards (vectors from one shared cache).
    Used by tests/index/test_shards.py, test_dense_memory.py and (its cache) test_ray_build.py."""
    from newsqa.index.build import build_index

    root = tmp_path_factory.mktemp("shards")
    single = build_index(generated_seeds, root / "one", embedder)
    shutil.copy(root / "one" / "embeddings.sqlite", root / "embeddings.sqlite")
    (root / "four").mkdir()
    shutil.copy(root / "one" / "embeddings.sqlite", root / "four" / "embeddings.sqlite")
    sharded = build_index(generated_seeds, root / "four", embedder, shards=4)
    assert single.shards == 1 and sharded.shards == 4
    assert sharded.embedded == 0  # the cache served every vector
    return root / "one", root / "four"


@pytest.fixture(scope="session")
def ray_seeds(generated_seeds, tmp_path_factory) -> Path:
    """The seeds and the first RAY_ARTICLES generated articles: a corpus the Ray engine embeds in
    full in about half the time of the whole generated one. Read-only."""
    folder = tmp_path_factory.mktemp("ray-seeds")
    for path in sorted(generated_seeds.glob("*.txt")):
        if not path.name.startswith("gen_") or int(path.stem.removeprefix("gen_")) < RAY_ARTICLES:
            shutil.copy(path, folder / path.name)
    assert len(list(folder.glob("*.txt"))) == len(list(SEEDS.glob("*.txt"))) + RAY_ARTICLES
    return folder
