"""docs/configuration.md, generated from the settings declaration (`Settings` in bot/settings.py).

    python -m newsqa.bot.settings_doc > docs/configuration.md

Every field of `Settings` becomes one row: its environment variable (with any alias), type,
default (none for secrets), the values its constraints allow (range, pattern) and its
description. Fields are grouped by the table below; a field it does not name lands in a last
"Other settings" group, so a new setting is documented even before it is placed in a group.
tests/test_docs.py checks that the checked-in page equals what this module renders.
"""

from __future__ import annotations

import re
import sys
import types
import typing
from pathlib import Path

from pydantic import AliasChoices, AliasPath, SecretStr
from pydantic.fields import FieldInfo

from newsqa.bot.settings import Settings

REGENERATE = "python -m newsqa.bot.settings_doc > docs/configuration.md"

# (title, what the group is for, page with the details, fields in the order shown)
GROUPS: list[tuple[str, str, str | None, list[str]]] = [
    (
        "Embedding model",
        "Which model turns passages and questions into vectors, and how it runs.",
        "performance.md",
        ["embedding_model", "models_dir", "embedding_backend", "embedding_device", "onnx_dir", "torch_trace"],
    ),
    (
        "Index and builds",
        "Where articles and builds live, how articles are cut into passages, and how `newsqa index build` runs.",
        "operations.md",
        [
            "index_dir", "seeds_dir", "passage_max_words", "passage_min_words", "batch_size", "build_engine",
            "ray_address", "ray_workers", "shard_passages", "verify_checksums",
        ],
    ),
    (
        "Fetching from the web",
        "How `newsqa index add` and `newsqa feeds` fetch news pages and feeds: who they say they are, how long they wait, how politely.",
        "operations.md",
        [
            "fetch_user_agent", "fetch_robots", "fetch_host_interval", "fetch_timeout", "fetch_max_bytes",
            "fetch_max_redirects",
        ],
    ),
    (
        "Threads and memory",
        "How a process uses its cores and where it keeps a large vector index.",
        "performance.md",
        ["torch_threads", "faiss_threads", "shard_search_threads", "dense_memory"],
    ),
    (
        "Retrieval and answers",
        "How many passages a question gets, how the BM25 and dense signals are fused, and when the "
        "answer is \"not in the articles\".",
        "quality.md",
        [
            "top_k", "max_top_k", "max_question_chars", "fusion", "dense_weight_vi", "dense_weight_en",
            "article_weight", "min_coverage", "min_names", "min_names_other", "min_dense_lift", "min_dense_lift_vi",
        ],
    ),
    (
        "HTTP API",
        "`newsqa serve`: address, key, limits, worker processes and index reloads.",
        "http-api.md",
        [
            "host", "port", "api_key", "http_max_body_bytes", "http_max_concurrency", "http_workers",
            "http_rate_limit", "reload_interval",
        ],
    ),
    (
        "Telegram bot",
        "`newsqa bot` (long polling) and the webhook mounted in the HTTP API.",
        "telegram.md",
        [
            "telegram_bot_token", "allowed_chats", "telegram_rate_limit", "telegram_base_url",
            "telegram_webhook_path", "telegram_webhook_secret", "telegram_webhook_url",
        ],
    ),
    (
        "Conversations",
        "Follow-up questions are read with the conversation's previous question; what the front ends remember for that, and for how long.",
        "http-api.md",
        ["state_dir", "conversation_minutes", "conversations_max", "conversation_turns"],
    ),
]

INTRO = """\
# Configuration

Every setting of newsqa is an environment variable, read once when a command starts (`newsqa …`,
the HTTP app, the Telegram bot) and passed inward from there; nothing deeper reads the environment.
Names carry the prefix `NEWSQA_` (upper or lower case both work), except the Telegram token, which
is also read as plain `TELEGRAM_BOT_TOKEN`. A value outside its type, range or pattern stops the
command with one sentence naming the variable, its value and what it may be (`Error: NEWSQA_TOP_K=abc is not valid (…); allowed: 1 to 50.`),
never a traceback. Secrets (`NEWSQA_API_KEY`, the Telegram token and webhook secret) have no
default and are never written to a log. Besides these, `HF_HUB_OFFLINE=1` keeps the model loader
off any model hub, and uvicorn's `FORWARDED_ALLOW_IPS` says which proxies' `X-Forwarded-For` to trust.

This page is generated from the declaration in `bot/settings.py`; after changing a setting, run
`{regenerate}`.
"""


def env_names(name: str, field: FieldInfo) -> list[str]:
    """The environment variables a field is read from, the preferred one first."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasPath):  # pragma: no cover - not used by Settings
        return [str(alias.path[0])]
    prefix = Settings.model_config.get("env_prefix", "")
    return [f"{prefix}{name}".upper()]


def _members(annotation: object) -> list[object]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def is_secret(field: FieldInfo) -> bool:
    return any(member is SecretStr for member in _members(field.annotation))


def type_name(field: FieldInfo) -> str:
    names = {int: "integer", float: "number", bool: "boolean", str: "text", Path: "path", SecretStr: "secret text"}
    return " or ".join(names.get(member, getattr(member, "__name__", str(member))) for member in _members(field.annotation))


def default_text(field: FieldInfo) -> str:
    if is_secret(field):
        return "none (secret)"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == "":
        return "empty"
    return f"`{value}`"


def _number(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and abs(value) >= 10_000 else str(value)


def allowed_text(field: FieldInfo) -> str:
    low = high = pattern = None
    low_strict = high_strict = False
    for item in field.metadata:
        if getattr(item, "ge", None) is not None:
            low = item.ge
        if getattr(item, "gt", None) is not None:
            low, low_strict = item.gt, True
        if getattr(item, "le", None) is not None:
            high = item.le
        if getattr(item, "lt", None) is not None:
            high, high_strict = item.lt, True
        if getattr(item, "pattern", None) is not None:
            pattern = item.pattern
    parts = []
    if low is not None and high is not None and not (low_strict or high_strict):
        parts.append(f"{_number(low)} to {_number(high)}")
    else:
        if low is not None:
            parts.append(f"{'>' if low_strict else '≥'} {_number(low)}")
        if high is not None:
            parts.append(f"{'<' if high_strict else '≤'} {_number(high)}")
    if pattern is not None:
        choices = re.fullmatch(r"\^\(([\w|-]+)\)\$", pattern)
        if choices:
            values = [f"`{value}`" for value in choices.group(1).split("|")]
            parts.append(values[0] if len(values) == 1 else ", ".join(values[:-1]) + " or " + values[-1])
        else:
            parts.append(f"matches `{pattern}`")
    if bool in _members(field.annotation):
        parts.append("`true` or `false`")
    return "; ".join(parts)


def description_text(name: str, field: FieldInfo) -> str:
    return field.description or ""


def _cell(text: str) -> str:
    """Table-safe: a pipe would end the cell (even inside a code span), a bare < opens HTML."""
    return text.replace("|", "\\|").replace("<", "\\<").replace("\n", " ")


def variable_text(name: str, field: FieldInfo) -> str:
    first, *others = env_names(name, field)
    text = f"`{first}`"
    if others:
        text += " (or " + ", ".join(f"`{other}`" for other in others) + ")"
    return text


def configuration_markdown() -> str:
    """The whole of docs/configuration.md."""
    fields = Settings.model_fields
    groups = [(title, blurb, page, [n for n in names if n in fields]) for title, blurb, page, names in GROUPS]
    placed = {name for *_, names in groups for name in names}
    others = [name for name in fields if name not in placed]
    if others:
        groups.append(("Other settings", "Settings not yet placed in a group.", None, others))

    out = [INTRO.format(regenerate=REGENERATE)]
    out.append("| group | variables |\n|---|---|")
    for title, _, _, names in groups:
        anchor = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        out.append(f"| [{title}](#{anchor}) | {len(names)} |")
    out.append("")
    for title, blurb, page, names in groups:
        out.append(f"## {title}\n")
        out.append(blurb + (f" Details: [{page}]({page})." if page else "") + "\n")
        out.append("| variable | type | default | allowed | description |")
        out.append("|---|---|---|---|---|")
        for name in names:
            field = fields[name]
            cells = [
                variable_text(name, field),
                type_name(field),
                default_text(field),
                allowed_text(field),
                description_text(name, field),
            ]
            out.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    sys.stdout.write(configuration_markdown())


if __name__ == "__main__":
    main()
