"""How long `newsqa ask` takes, start to answer, as a person at a terminal waits for it.

    .venv/bin/python bench/ask_bench.py [--runs 7] [--python LABEL=PATH ...]

Each run is a fresh process (`PYTHON -m newsqa ask QUESTION`) against the index the NEWSQA_*
settings name (by default data/index, built by `newsqa index build`). With several --python
interpreters (another checkout installed in its own virtualenv, say), runs alternate between them
so each sees the same load. Prints one table: median and best wall time per interpreter and
question, then the phases of one in-process run of this checkout (import, index, model, answer).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import load_average, table  # noqa: E402

QUESTIONS = ("What did Russia demand from NATO?", "nga yeu cau nato gi")


def wall_s(python: str, question: str) -> float:
    # From a folder of its own, so an interpreter imports its own installed newsqa, not this
    # checkout's folders; the index is named by absolute path.
    env = {**os.environ, "NEWSQA_INDEX_DIR": str(index_dir())}
    started = time.perf_counter()
    subprocess.run(
        [python, "-m", "newsqa", "ask", question], check=True, capture_output=True, timeout=300, cwd=tempfile.gettempdir(), env=env
    )
    return time.perf_counter() - started


def index_dir() -> Path:
    from newsqa.bot.settings import Settings

    return Settings().index_dir.resolve()


PHASES = """
import json, sys, time
started = time.perf_counter()
from newsqa.bot.cli import quiet_libraries, settings
quiet_libraries()
imported = time.perf_counter()
service = settings().qa_service()
service.warm_up()
loaded = time.perf_counter()
service.ask(sys.argv[1])
answered = time.perf_counter()
print(json.dumps([imported - started, loaded - imported, answered - loaded]))
"""


def phases() -> list[tuple[str, float]]:
    """One fresh run of this checkout's `newsqa ask`, phase by phase (seconds)."""
    env = {**os.environ, "NEWSQA_INDEX_DIR": str(index_dir())}
    out = subprocess.run(
        [sys.executable, "-c", PHASES, QUESTIONS[0]], check=True, capture_output=True, text=True, cwd=tempfile.gettempdir(), env=env
    )
    names = ("import the CLI", "load the index and the model", "first answer")
    return list(zip(names, json.loads(out.stdout.strip().splitlines()[-1]), strict=True))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--python", action="append", default=[], help="LABEL=PATH of another interpreter to time")
    args = parser.parse_args(argv)
    pythons = [("this checkout", sys.executable)] + [tuple(p.split("=", 1)) for p in args.python]
    for _, python in pythons:  # warm the page cache and any one-time conversion
        wall_s(python, QUESTIONS[0])
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.runs):
        for question in QUESTIONS:
            for label, python in pythons:
                times.setdefault((label, question), []).append(wall_s(python, question))
    one, five, _ = load_average()
    print(f"`newsqa ask`, {args.runs} runs each, fresh process per run (load average {one:.2f} / {five:.2f})")
    print(
        table(
            ["interpreter", "question", "median s", "best s"],
            [[label, q, statistics.median(t), min(t)] for (label, q), t in times.items()],
        )
    )
    print()
    print(table(["phase (this checkout, a fresh process)", "s"], phases()))


if __name__ == "__main__":
    main()
