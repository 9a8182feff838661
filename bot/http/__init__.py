"""The HTTP API and the web chat page (FastAPI); `create_app` builds the app (bot/http/app.py).

`newsqa serve` runs it under uvicorn with the socket limits and access-log redaction of
bot/http/server.py.
"""

from newsqa.bot.http.app import create_app

__all__ = ["create_app"]
