"""`create_app(settings, service)`: the FastAPI app, composed of the routers, limits, error handlers,
the web page and, when configured, the Telegram webhook.

- Model and index load once, in the background at start-up, so /healthz answers at once and
  /readyz (and every data endpoint) says 503 with the reason until the index is loaded.
- Embedding and search run in worker threads, at most NEWSQA_HTTP_MAX_CONCURRENCY at a time, so the
  event loop keeps serving health checks and pages.
- A watcher polls the index root's `current` link every NEWSQA_RELOAD_INTERVAL seconds, and POST
  /admin/reload does the same on demand (bot/http/runtime.py).
- Every error has one JSON shape (bot/http/errors.py).
- POST /ask with a conversation_id reads a follow-up with that conversation's previous question,
  kept in the SQLite StateStore the server's worker processes share (bot/http/conversations.py).
- Every answer of POST /ask is remembered in that store too, so POST /feedback can store a vote on
  it by its id (bot/http/votes.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio
from fastapi import FastAPI

from newsqa.bot.http.admin import admin_router
from newsqa.bot.http.articles import articles_router
from newsqa.bot.http.auth import Guard
from newsqa.bot.http.conversations import Conversations, default_store
from newsqa.bot.http.errors import install_error_handlers
from newsqa.bot.http.feedback import feedback_router
from newsqa.bot.http.health import health_router
from newsqa.bot.http.limits import BodyLimit
from newsqa.bot.http.docs import mount_docs
from newsqa.bot.http.page import mount_page
from newsqa.bot.http.questions import questions_router
from newsqa.bot.http.ratelimit import RateLimit, document_429
from newsqa.bot.http.runtime import Runtime
from newsqa.bot.http.telegram_hook import Webhook, load_webhook, webhook_router
from newsqa.bot.http.votes import Votes
from newsqa.bot.settings import Settings
from newsqa.bot.state import StateStore
from newsqa.retrieval.service import QAService


def lifespan(
    runtime: Runtime,
    settings: Settings,
    hook: Webhook | None,
    conversations: Conversations,
    owns_service: bool = False,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Load the index in the background, watch for new builds, and run the webhook's bot, while the
    app serves; afterwards close the conversation store and the service if the app made them (one
    given is its owner's)."""

    @asynccontextmanager
    async def running(app: FastAPI) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(runtime.initial_load)
            if settings.reload_interval > 0:
                tasks.start_soon(runtime.watch, settings.reload_interval)
            if hook is not None:
                await hook.start()
            try:
                yield
            finally:
                if hook is not None:
                    await hook.stop()
                tasks.cancel_scope.cancel()
                conversations.close()  # after uvicorn has finished the requests in flight
                if owns_service:
                    runtime.service.close()

    return running


def create_app(
    settings: Settings | None = None, service: QAService | None = None, state: StateStore | None = None
) -> FastAPI:
    """`state`: where conversations, answers and votes are kept; by default the store the settings
    describe (NEWSQA_STATE_DIR, else beside the served index), opened on the first answer."""
    settings = settings or Settings()
    owns_service = service is None
    service = service or settings.qa_service(serving=True)
    runtime = Runtime(service, settings.http_max_concurrency)
    conversations = Conversations(state) if state is not None else Conversations(opener=default_store(settings, service))
    hook = load_webhook(service, settings) if settings.telegram_webhook_path else None

    app = FastAPI(
        title="newsqa",
        summary="Answers questions about news articles, citing the passages the answers come from.",
        version="0.1.0",
        lifespan=lifespan(runtime, settings, hook, conversations, owns_service),
        docs_url=None,  # served by mount_docs, without a CDN
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.add_middleware(BodyLimit, max_bytes=settings.http_max_body_bytes)
    install_error_handlers(app, service.config.max_top_k)

    key = settings.api_key.get_secret_value() if settings.api_key else ""
    if settings.http_rate_limit:
        # Added last, so outermost: a client over its limit is refused before its body is read.
        webhook = (settings.telegram_webhook_path or "").strip()
        unlimited = {"/healthz", *([webhook] if webhook else [])}
        app.add_middleware(RateLimit, per_minute=settings.http_rate_limit, api_key=key.encode(), exempt=unlimited)
        app.openapi = document_429(app.openapi, unlimited)  # type: ignore[method-assign]

    guard = Guard.for_key(key)
    app.include_router(health_router(runtime, guard))
    votes = Votes(conversations)
    app.include_router(questions_router(runtime, guard, conversations, votes))
    app.include_router(feedback_router(runtime, guard, votes))
    app.include_router(articles_router(runtime, guard))
    app.include_router(admin_router(runtime, guard))
    if hook is not None:
        app.include_router(webhook_router(hook))
    mount_page(app, service.config.max_question_chars)
    mount_docs(app)
    return app
