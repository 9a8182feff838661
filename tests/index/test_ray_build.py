"""The Ray build engine (local Ray, two embedding actors) against the default build."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from newsqa.index.build import build_index  # noqa: E402
from newsqa.index.embedding.embedder import SentenceTransformerEmbedder  # noqa: E402
from newsqa.index.loader import open_index  # noqa: E402
from newsqa.index.scale.ray_build import ActorPlan, RayEngine, RayUnavailable  # noqa: E402
from newsqa.retrieval.search import HybridSearcher  # noqa: E402



@pytest.fixture(scope="module")
def ray_engine(model_path):
    engine = RayEngine(functools.partial(SentenceTransformerEmbedder, model_path), workers=2, cpus=2)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def local_and_ray(ray_seeds, one_and_four, embedder, ray_engine, tmp_path_factory) -> tuple[Path, Path, object]:
    """ray_seeds (tests/index/conftest.py) built by the local engine, its vectors from the cache of
    the session's build of the whole generated corpus, and by Ray with an empty cache."""
    root = tmp_path_factory.mktemp("engines")
    (root / "local").mkdir()
    shutil.copy(one_and_four[0] / "embeddings.sqlite", root / "local" / "embeddings.sqlite")
    build_index(ray_seeds, root / "local", embedder)
    report = build_index(ray_seeds, root / "ray", embedder, engine=ray_engine, shards=3)
    return root / "local", root / "ray", report


def test_ray_build_gives_the_same_passages_and_top_10(local_and_ray, embedder, mixed_questions):
    local, on_ray, report = local_and_ray
    a, b = open_index(local), open_index(on_ray)
    # An empty cache: the actors embedded every distinct passage text.
    assert report.embedded == len({p.embedding_text() for p in b.passages}) > 300
    assert b.manifest["engine"] == "ray" and len(b.manifest["shards"]) == 3
    assert [p.to_json() for p in a.passages] == [p.to_json() for p in b.passages]
    assert [x.to_json() for x in a.articles.values()] == [x.to_json() for x in b.articles.values()]
    assert a.manifest["corpus_digest"] == b.manifest["corpus_digest"]
    sa, sb = HybridSearcher(a, embedder), HybridSearcher(b, embedder)
    for question in mixed_questions:
        top_a = [(h.row, round(h.score, 5)) for h in sa.search(question, 10)]
        top_b = [(h.row, round(h.score, 5)) for h in sb.search(question, 10)]
        assert top_a == top_b and len(top_a) == 10, question


def test_ray_rebuild_embeds_only_new_passages(local_and_ray, ray_seeds, embedder, ray_engine, tmp_path):
    _, on_ray, _ = local_and_ray
    root = tmp_path / "index"
    shutil.copytree(on_ray, root, symlinks=True)
    seeds = tmp_path / "seeds"
    shutil.copytree(ray_seeds, seeds)
    (seeds / "zz_new.txt").write_text(
        "Tin mới về hội nghị\n\nHội nghị thượng đỉnh về khí hậu khai mạc tại Hà Nội với sự tham dự của "
        "đại biểu từ ba mươi quốc gia, bàn về giảm phát thải và tài chính xanh cho các nước đang phát triển.\n",
        encoding="utf-8",
    )
    report = build_index(seeds, root, embedder, engine=ray_engine, shards=3)
    assert report.embedded == 1 and report.cached == report.passages - 1
    assert "zz_new" in open_index(root).articles


def test_ray_build_reports_skipped_files_like_the_local_build(ray_engine, embedder, tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for path in sorted(Path(__file__).resolve().parents[2].joinpath("seeds").glob("*.txt")):
        shutil.copy(path, seeds / path.name)
    (seeds / "empty.txt").write_text("", encoding="utf-8")
    (seeds / "binary.md").write_bytes(b"\x00\x01\x02 not text")
    local = build_index(seeds, tmp_path / "local", None)
    on_ray = build_index(seeds, tmp_path / "ray", None, engine=ray_engine)
    assert on_ray.warnings == local.warnings and len(local.warnings) == 2
    assert on_ray.articles == local.articles == 2


@pytest.mark.slow
def test_unreachable_cluster_is_one_sentence(tmp_path):
    """Through the CLI, in a process of its own (a failed ray.init leaves its process unusable)."""
    result = subprocess.run(
        [sys.executable, "-m", "newsqa.bot.cli", "index", "build", "--lexical-only", "--engine", "ray",
         "--address", "127.0.0.1:9", "--index-dir", str(tmp_path / "idx")],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: Could not connect to Ray at 127.0.0.1:9") and "--engine local" in last
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "idx" / "current").exists()


def test_ray_missing_is_one_sentence(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(RayUnavailable, match=r'pip install "\.\[ray\]"'):
        RayEngine(None).start()


def test_gpus_go_to_the_actors_only_when_their_model_can_use_one():
    from newsqa.bot.settings import Settings

    torch_auto = Settings(embedding_backend="torch")
    assert torch_auto.embeds_on_gpu
    assert not Settings(embedding_backend="torch", embedding_device="cpu").embeds_on_gpu
    assert not Settings(embedding_backend="onnx-int8").embeds_on_gpu  # ONNX Runtime here is CPU-only
    on_gpus = RayEngine(None, gpu_actors=True)
    assert on_gpus.actor_plan(cpus=16, gpus=4) == ActorPlan(size=4, threads=1, gpus=1, cpus=0)
    assert on_gpus.actor_plan(cpus=16, gpus=0) == ActorPlan(size=8, threads=2, gpus=0, cpus=2)
    # An ONNX model would leave the GPU idle and get one CPU thread: it gets CPUs instead.
    on_cpus = RayEngine(None, gpu_actors=False)
    assert on_cpus.actor_plan(cpus=16, gpus=4) == ActorPlan(size=8, threads=2, gpus=0, cpus=2)
    assert RayEngine(None, workers=3, gpu_actors=False).actor_plan(cpus=16, gpus=4) == ActorPlan(3, 5, 0, 5)
