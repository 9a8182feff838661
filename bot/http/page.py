"""The web chat page at / and its static files (bot/web/: plain HTML, JS and CSS, no build step)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

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


def mount_page(app: FastAPI) -> None:
    page = (WEB_DIR / "index.html").read_text(encoding="utf-8")

    # HEAD as well: uptime checks and link previews ask for the page's headers alone.
    @app.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False)
    async def chat_page() -> HTMLResponse:
        # Public even with an API key: the page asks the person for the key and sends it itself.
        return HTMLResponse(page, headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
