"""Cutting a corpus into shards and writing them as one sharded build (index.scale.shards reads it).

Shards split the corpus at article boundaries, in corpus order, into runs of about equal passage
counts; each is written as a complete build folder under shards/, with BM25 fields sliced from one
index over the whole corpus, and the top-level manifest lists them. A corpus that fits in one shard
is written as a plain build folder, as before sharding existed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsqa.index.format import (
    FORMAT_VERSION,
    MANIFEST,
    MANIFEST_DIGEST,
    SHARDS,
    corpus_digest,
    file_entry,
    write_manifest,
)
from newsqa.index.models import Article, Passage
from newsqa.index.options import BuildOptions
from newsqa.index.writer import BuildContents, publish_build, write_build_folder


@dataclass(frozen=True)
class ShardPlan:
    number: int
    articles: range  # positions in the build's article list
    rows: range  # passage rows of the whole build
    article_docs: range  # documents of the article-level BM25 fields

    @property
    def name(self) -> str:
        return f"{SHARDS}/{self.number:03d}"


def shard_count(passages: int, shard_passages: int) -> int:
    return max(1, math.ceil(passages / max(1, shard_passages)))


def plan_shards(articles: Sequence[Article], passages: Sequence[Passage], shards: int) -> list[ShardPlan]:
    """Cut the corpus into at most `shards` runs of whole articles of about equal passage counts.

    Passages must come grouped by article in article order, as `index.build` makes them.
    """
    per_article = [0] * len(articles)
    position = {a.article_id: i for i, a in enumerate(articles)}
    for p in passages:
        per_article[position[p.article_id]] += 1
    target = max(1, math.ceil(len(passages) / max(1, shards)))
    plans: list[ShardPlan] = []
    first_article = first_row = first_doc = 0
    rows = docs = 0
    for i, count in enumerate(per_article):
        rows += count
        docs += count > 0  # the article fields hold one document per article with passages
        last = i == len(per_article) - 1
        if last or (rows - first_row >= target and len(plans) < shards - 1):
            plans.append(ShardPlan(len(plans), range(first_article, i + 1), range(first_row, rows), range(first_doc, docs)))
            first_article, first_row, first_doc = i + 1, rows, docs
    return plans


# A shard folder to write, what goes in it, and how (picklable: Ray writes shards in other processes).
ShardJob = tuple[Path, BuildContents, BuildOptions]
ShardWriter = Callable[[list[ShardJob]], None]


def write_shard(job: ShardJob) -> None:
    folder, contents, options = job
    write_build_folder(folder, contents, options=options)


def write_shards_here(jobs: list[ShardJob]) -> None:
    """Write shard folders in this process, two at a time: FAISS and the disk overlap with Python."""
    with ThreadPoolExecutor(max_workers=min(2, len(jobs) or 1), thread_name_prefix="newsqa-shard") as pool:
        for _ in pool.map(write_shard, jobs):
            pass


def write_sharded_build(
    root: Path,
    contents: BuildContents,
    plans: Sequence[ShardPlan],
    write_shards: ShardWriter = write_shards_here,
    options: BuildOptions = BuildOptions(),
) -> Path:
    """Write the shards and the top-level manifest into builds/<id> (via a temporary name)."""
    articles, passages, vectors, manifest_extra = (
        contents.articles, contents.passages, contents.vectors, contents.manifest_extra
    )

    def write(tmp: Path, build_id: str) -> None:
        tmp.mkdir()
        jobs = []
        for plan in plans:
            extra = dict(manifest_extra, shard={"number": plan.number, "of": len(plans), "first_row": plan.rows.start})
            shard = BuildContents(
                [articles[i] for i in plan.articles],
                list(passages[plan.rows.start : plan.rows.stop]),
                None if vectors is None else vectors[plan.rows.start : plan.rows.stop],
                contents.lexical.slice(plan.rows, plan.article_docs),
                extra,
            )
            jobs.append((tmp / plan.name, shard, options))
        write_shards(jobs)
        shard_list = []
        built_at = []
        files: dict[str, Any] = {}
        for plan in plans:
            shard_manifest = json.loads((tmp / plan.name / MANIFEST).read_text(encoding="utf-8"))
            built_at.append(shard_manifest["built_at"])
            for name in (MANIFEST, MANIFEST_DIGEST):
                files[f"{plan.name}/{name}"] = file_entry(tmp / plan.name / name, options.checksums)
            shard_list.append(
                {
                    "name": plan.name,
                    "articles": len(plan.articles),
                    "passages": len(plan.rows),
                    "first_row": plan.rows.start,
                    "build_id": shard_manifest["build_id"],
                    "dense_index": shard_manifest.get("dense_index", {}),
                }
            )
        write_manifest(
            tmp,
            {
                "format_version": FORMAT_VERSION,
                "build_id": build_id,
                "built_at": max(built_at),  # when the last shard was written
                "article_count": len(articles),
                "passage_count": len(passages),
                "corpus_digest": corpus_digest(articles),
                "dense_index": summarise_dense([s["dense_index"] for s in shard_list]),
                **manifest_extra,
                "shards": shard_list,
                "files": files,
            },
        )

    return publish_build(root, write)


def summarise_dense(infos: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The top-level manifest's view of the shards' vector indexes (types, worst measured recall)."""
    types = sorted({str(i.get("type")) for i in infos if i.get("type")})
    summary: dict[str, Any] = {"type": "+".join(types) if types else None}
    recalls = [i["recall_at_10"] for i in infos if "recall_at_10" in i]
    if recalls:
        summary["recall_at_10"] = min(recalls)
    return summary
