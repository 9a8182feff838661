"""The web chat page at / and its static files (bot/web/: plain HTML, JS and CSS, no build step)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from newsqa.retrieval.service import MAX_QUESTION_CHARS

WEB_DIR = Path(str(resources.files("newsqa.bot") / "web"))
# The page is ours and static: allow nothing but our own script, style and API calls.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


MAX_CHARS_SLOT = "{{max_question_chars}}"


def render_page(max_question_chars: int) -> str:
    """index.html with the service's question limit in it (a data attribute: the CSP allows no inline
    script), so the page counts against the limit the server applies."""
    page = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    if MAX_CHARS_SLOT not in page:
        raise RuntimeError(f"bot/web/index.html has lost its {MAX_CHARS_SLOT} slot")
    return page.replace(MAX_CHARS_SLOT, str(int(max_question_chars)))


def mount_page(app: FastAPI, max_question_chars: int = MAX_QUESTION_CHARS) -> None:
    page = render_page(max_question_chars)

    # HEAD as well: uptime checks and link previews ask for the page's headers alone.
    @app.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False)
    async def chat_page() -> HTMLResponse:
        # Public even with an API key: the page asks the person for the key and sends it itself.
        return HTMLResponse(page, headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
