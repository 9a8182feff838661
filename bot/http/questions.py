"""POST /ask (an answer with citations, read with its conversation when it names one, and remembered
for the votes on it) and GET /search (the ranked passages), within the configured question length and
number of passages."""

# No `from __future__ import annotations` in route modules: FastAPI reads endpoint annotations as
# objects, and these close over the limits known only when the router is made.

from typing import Annotated

from fastapi import APIRouter, Query

from newsqa.bot.http.auth import Guard
from newsqa.bot.http.conversations import Conversations
from newsqa.bot.http.errors import documented
from newsqa.bot.http.runtime import Runtime
from newsqa.bot.http.schemas import AskResponse, ask_request_model
from newsqa.bot.http.votes import Votes
from newsqa.retrieval.models import Answer, SearchResult


def questions_router(runtime: Runtime, guard: Guard, conversations: Conversations, votes: Votes) -> APIRouter:
    service = runtime.service
    max_chars, max_top_k = service.config.max_question_chars, service.config.max_top_k
    AskRequest = ask_request_model(max_chars, max_top_k)
    router = APIRouter(tags=["questions"], dependencies=list(guard.dependencies))

    @router.post("/ask", response_model=AskResponse, responses=documented(400, *guard.statuses, 413, 422, 503))
    async def ask(body: AskRequest) -> AskResponse:  # type: ignore[valid-type]
        """Answer a question from the articles, with numbered citations (the object `newsqa ask --json`
        prints, plus `conversation_id`).

        With a `conversation_id`, a follow-up ("Còn Mỹ thì sao?") is read with the conversation's
        previous question (`context_used`, `context_question`), and the question is remembered for
        the next one. Without one the question is read alone.

        Every answer is remembered for a while, so that POST /feedback can vote on it by its
        `answer_id`.
        """
        runtime.require_ready()
        question, top_k, conversation = body.question, body.top_k, body.conversation_id  # type: ignore[attr-defined]

        def answered() -> Answer:  # the store's reads and writes run in the question's worker thread too
            if conversation is None:
                answer = service.ask(question, top_k)
            else:
                answer = conversations.ask(service, conversation, question, top_k)
            votes.remember(answer)
            return answer

        answer = await runtime.run(answered)
        return AskResponse(**dict(answer), conversation_id=conversation)

    @router.get("/search", response_model=SearchResult, responses=documented(*guard.statuses, 422, 503))
    async def search(
        q: Annotated[str, Query(min_length=1, max_length=max_chars, description="The query text")],
        k: Annotated[int | None, Query(ge=1, le=max_top_k, description="How many passages")] = None,
    ) -> SearchResult:
        """The ranked passages for a query, without composing an answer."""
        runtime.require_ready()
        return await runtime.run(service.search, q, k)

    return router
