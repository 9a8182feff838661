"""POST /ask (an answer with citations) and GET /search (the ranked passages), within the configured
question length and number of passages."""

# No `from __future__ import annotations` in route modules: FastAPI reads endpoint annotations as
# objects, and these close over the limits known only when the router is made.

from typing import Annotated

from fastapi import APIRouter, Query

from newsqa.bot.http.auth import Guard
from newsqa.bot.http.errors import documented
from newsqa.bot.http.runtime import Runtime
from newsqa.bot.http.schemas import ask_request_model
from newsqa.retrieval.models import Answer, SearchResult


def questions_router(runtime: Runtime, guard: Guard) -> APIRouter:
    service = runtime.service
    max_chars, max_top_k = service.config.max_question_chars, service.config.max_top_k
    AskRequest = ask_request_model(max_chars, max_top_k)
    router = APIRouter(tags=["questions"], dependencies=list(guard.dependencies))

    @router.post("/ask", response_model=Answer, responses=documented(400, *guard.statuses, 413, 422, 503))
    async def ask(body: AskRequest) -> Answer:  # type: ignore[valid-type]
        """Answer a question from the articles, with numbered citations (same object as `newsqa ask --json`)."""
        runtime.require_ready()
        return await runtime.run(service.ask, body.question, body.top_k)  # type: ignore[attr-defined]

    @router.get("/search", response_model=SearchResult, responses=documented(*guard.statuses, 422, 503))
    async def search(
        q: Annotated[str, Query(min_length=1, max_length=max_chars, description="The query text")],
        k: Annotated[int | None, Query(ge=1, le=max_top_k, description="How many passages")] = None,
    ) -> SearchResult:
        """The ranked passages for a query, without composing an answer."""
        runtime.require_ready()
        return await runtime.run(service.search, q, k)

    return router
