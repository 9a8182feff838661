"""The documentation stays true to the repository: links resolve, named docs exist, the
configuration page matches the settings declaration, every NEWSQA_ variable it names exists, the
README stays short, and no page reads like a lab notebook."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from newsqa.bot.settings import Settings
from newsqa.bot.settings_doc import REGENERATE, configuration_markdown, env_names

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
MARKDOWN = [README, *sorted(DOCS.glob("*.md"))]
CODE_DIRS = ("bot", "index", "retrieval", "bench", "tests")

# NEWSQA_ variables that are not settings of the product: read by the benchmarks and the tests only.
NOT_SETTINGS = {
    "NEWSQA_BENCHDATA": "bench/common.py, bench/retrieval_bench.py: where the benchmark data sets are",
    "NEWSQA_BENCH_DIR": "bench/common.py: the benchmarks' work folder",
    "NEWSQA_UPDATE_SCREENSHOT": "tests/bot/test_web_page.py: rewrite docs/web-chat.png",
}
RUN_HISTORY = re.compile(r"\bsessions? \d+|\bthis session\b", re.IGNORECASE)
README_MAX_LINES = 250


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _without_code_blocks(text: str) -> str:
    """The text with fenced code blocks blanked (line count kept)."""
    lines, fenced = [], None
    for line in text.splitlines():
        stripped = line.lstrip()
        marker = re.match(r"(`{3,}|~{3,})", stripped)
        if fenced is None and marker:
            fenced = marker.group(1)[0] * len(marker.group(1))
            lines.append("")
        elif fenced is not None:
            if stripped.startswith(fenced):
                fenced = None
            lines.append("")
        else:
            lines.append(line)
    return "\n".join(lines)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for line in _without_code_blocks(path.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def links(path: Path) -> list[tuple[int, str]]:
    """(line, target) of every inline link and image outside code."""
    found = []
    text = _without_code_blocks(path.read_text(encoding="utf-8"))
    for number, line in enumerate(text.splitlines(), 1):
        line = re.sub(r"`[^`]*`", "", line)
        for match in re.finditer(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", line):
            found.append((number, match.group(1)))
    return found


@pytest.mark.parametrize("page", MARKDOWN, ids=_rel)
def test_relative_links_resolve(page: Path):
    problems = []
    for number, target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        destination = (page.parent / file_part).resolve() if file_part else page
        if not destination.exists():
            problems.append(f"{_rel(page)}:{number}: {target} (no such file)")
            continue
        if anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            problems.append(f"{_rel(page)}:{number}: {target} (no heading with that anchor)")
    assert not problems, "broken links:\n" + "\n".join(problems)


def _files_mentioning_docs() -> list[Path]:
    files = [README, REPO / "Makefile", REPO / "pyproject.toml", *DOCS.glob("*.md")]
    for folder in CODE_DIRS:
        files += [p for p in (REPO / folder).rglob("*") if p.suffix in (".py", ".md") and p.is_file()]
    return sorted(set(files))


def test_every_docs_path_mentioned_exists():
    pattern = re.compile(r"(?<![\w./-])docs/[\w.-][\w./-]*")
    missing = []
    for path in _files_mentioning_docs():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in pattern.finditer(line):
                mentioned = match.group(0).rstrip(".")
                if not (REPO / mentioned).exists():
                    missing.append(f"{_rel(path)}:{number}: {mentioned}")
    assert not missing, "paths under docs/ that do not exist:\n" + "\n".join(missing)


def test_configuration_page_is_generated_from_the_settings():
    page = DOCS / "configuration.md"
    expected = configuration_markdown()
    assert page.exists() and page.read_text(encoding="utf-8") == expected, (
        f"docs/configuration.md is out of date with bot/settings.py; regenerate it with `{REGENERATE}`"
    )


def test_every_setting_is_on_the_configuration_page():
    page = configuration_markdown()
    for name, field in Settings.model_fields.items():
        assert f"`{env_names(name, field)[0]}`" in page, name


def test_every_newsqa_variable_in_the_docs_is_a_setting():
    declared = {env for name, field in Settings.model_fields.items() for env in env_names(name, field)}
    unknown = []
    for page in MARKDOWN:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for variable in re.findall(r"\bNEWSQA_[A-Z0-9_]*[A-Z0-9]", line):
                if variable not in declared and variable not in NOT_SETTINGS:
                    unknown.append(f"{_rel(page)}:{number}: {variable}")
    assert not unknown, "NEWSQA_ variables that no setting declares:\n" + "\n".join(unknown)


def test_not_settings_are_still_read_by_the_code():
    code = "\n".join(
        p.read_text(encoding="utf-8") for folder in CODE_DIRS for p in (REPO / folder).rglob("*.py")
    )
    for variable in NOT_SETTINGS:
        assert variable in code, f"{variable} is no longer read anywhere; drop it from NOT_SETTINGS"


def test_readme_is_short():
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; keep it to {README_MAX_LINES} and move detail to docs/"


def test_no_run_history_wording():
    files = list(MARKDOWN)
    for folder in CODE_DIRS:
        files += [p for p in (REPO / folder).rglob("*.py") if p.resolve() != Path(__file__).resolve()]
    hits = []
    for path in sorted(files):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if RUN_HISTORY.search(line):
                hits.append(f"{_rel(path)}:{number}: {line.strip()[:100]}")
    assert not hits, (
        "run-history wording (a measurement carries its date, command and machine instead):\n" + "\n".join(hits)
    )


def test_every_setting_is_described():
    from newsqa.bot.settings import Settings

    bare = [name for name, field in Settings.model_fields.items() if not (field.description or "").strip()]
    assert not bare, f"settings without a description in bot/settings.py: {bare}"


CODE_PATH = re.compile(r"(?<![\w/.])((?:bot|index|retrieval|bench|tests)/[\w/]+\.(?:py|json|md|html|js|css))")


def test_every_code_path_mentioned_exists():
    """Docs, comments and configuration name modules by path; a module that moved must not leave them stale."""
    sources = [REPO / "README.md", REPO / "pyproject.toml", REPO / "Makefile", *sorted((REPO / "docs").glob("*.md"))]
    for folder in ("bot", "index", "retrieval", "bench", "tests"):
        sources += sorted((REPO / folder).rglob("*.py"))
    stale = sorted(
        f"{source.relative_to(REPO)}: {path}"
        for source in sources
        for path in set(CODE_PATH.findall(source.read_text(encoding="utf-8")))
        if not (REPO / path).exists()
    )
    assert not stale, stale
