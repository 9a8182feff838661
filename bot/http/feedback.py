"""POST /feedback: a person's 👍 or 👎 on an answer the API gave, named by its `answer_id`; a later
vote on the same answer replaces the earlier one (bot/http/votes.py keeps them)."""

# No `from __future__ import annotations` in route modules: FastAPI reads endpoint annotations as
# objects.

import logging
import sqlite3

from fastapi import APIRouter

from newsqa.bot.http.auth import Guard
from newsqa.bot.http.errors import ApiError, documented
from newsqa.bot.http.runtime import Runtime
from newsqa.bot.http.schemas import FeedbackRequest, FeedbackResult
from newsqa.bot.http.votes import Votes

log = logging.getLogger(__name__)

UNKNOWN_ANSWER = (
    "No answer with this answer_id is remembered (it was never given, or was given so long ago that it has "
    "been forgotten); ask the question again and vote on the new answer."
)
UNAVAILABLE = "The vote could not be stored, because the server's state file cannot be written; the problem has been logged."


def feedback_router(runtime: Runtime, guard: Guard, votes: Votes) -> APIRouter:
    router = APIRouter(tags=["feedback"], dependencies=list(guard.dependencies))

    @router.post("/feedback", response_model=FeedbackResult, responses=documented(400, *guard.statuses, 404, 413, 422, 503))
    async def feedback(body: FeedbackRequest) -> FeedbackResult:
        """Vote on an answer of POST /ask: `up` (👍) or `down` (👎), with an optional comment.

        Kept with the answer's question, text, citations and index build, for `newsqa feedback
        export`. One vote per answer: a later one (from any client) replaces it, and `replaced` says
        so. 404 (`unknown_answer`) for an answer this server does not remember.
        """
        # The index need not be loaded: a vote reads and writes only the state file.
        try:
            replaced = await runtime.run(votes.vote, body.answer_id, body.vote, body.comment)
        except (sqlite3.Error, OSError):
            log.exception("vote on answer %s not stored", body.answer_id)
            raise ApiError(503, "unavailable", UNAVAILABLE) from None
        if replaced is None:
            raise ApiError(404, "unknown_answer", UNKNOWN_ANSWER)
        return FeedbackResult(answer_id=body.answer_id, vote=body.vote, replaced=replaced)

    return router
