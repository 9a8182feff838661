"""The API's one error shape (`ErrorBody`): a sentence for a person, a stable code, and one entry per
bad input. Every refusal uses it: the app's handlers, the body and rate limits, the socket guard and
the Telegram webhook."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from newsqa.bot.http.schemas import ANSWER_ID_RULE, CONVERSATION_ID_RULE
from newsqa.index.embedding.embedder import ModelUnavailable
from newsqa.index.format import IndexUnavailable
from newsqa.retrieval.service import BadQuestion

log = logging.getLogger(__name__)


class FieldProblem(BaseModel):
    field: str = Field(description="Which input: 'question', 'top_k', 'conversation_id', 'answer_id', 'q', 'k', 'body' ...")
    problem: str


class ErrorBody(BaseModel):
    error: str = Field(description="What went wrong, in a sentence meant for a person")
    code: str = Field(description="Stable machine-readable kind: invalid_json, invalid_request, unauthorized, ...")
    detail: list[FieldProblem] | None = Field(default=None, description="One entry per bad input, when inputs were bad")


class ApiError(Exception):
    """Raised by an endpoint or dependency; answered with `ErrorBody` and the given status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        detail: list[FieldProblem] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers, self.detail = status, code, message, headers, detail


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    detail: list[FieldProblem] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=message, code=code, detail=detail)
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def error_json(code: str, message: str) -> bytes:
    """The body of an error answered below FastAPI (ASGI middleware, the socket guard), byte for byte
    as `error_response` writes it."""
    body = ErrorBody(error=message, code=code).model_dump()
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error statuses an operation may answer."""
    return {s: {"model": ErrorBody} for s in statuses}


# -- request validation as sentences --------------------------------------------------------------


def field_name(loc: tuple[Any, ...]) -> str:
    # loc is ("body", "question"), ("query", "k"), ("body",) ...; the first part is where, not what.
    parts = [str(p) for p in loc[1:]] if len(loc) > 1 else [str(loc[0])] if loc else []
    return ".".join(parts) or "body"


def describe_problem(error: dict[str, Any], max_top_k: int) -> FieldProblem:
    """One pydantic error as a sentence a person can act on."""
    kind, field, ctx = error.get("type", ""), field_name(tuple(error.get("loc", ()))), error.get("ctx") or {}
    is_question = field in ("question", "q")
    if kind == "json_invalid":
        return FieldProblem(field="body", problem=f"The body is not valid JSON ({ctx.get('error', 'parse error')}).")
    if field == "body" and kind in ("model_attributes_type", "dict_type", "model_type", "missing"):
        return FieldProblem(
            field="body",
            problem='The body must be a JSON object like {"question": "..."}, '
            "sent with Content-Type: application/json.",
        )
    if kind == "missing":
        what = "a question" if is_question else f'"{field}"'
        return FieldProblem(field=field, problem=f'The request needs {what} (the "{field}" field).')
    if kind == "extra_forbidden":
        return FieldProblem(field=field, problem=f'"{field}" is not a field this endpoint takes.')
    if kind == "string_too_short" and is_question:
        return FieldProblem(field=field, problem="The question is empty; type a question about the articles.")
    if kind == "string_too_long" and is_question:
        limit = ctx.get("max_length")
        return FieldProblem(field=field, problem=f"The question is too long; the limit is {limit:,} characters.")
    if kind == "string_unicode":
        return FieldProblem(field=field, problem=f'"{field}" is not valid Unicode text.')
    if kind == "string_type":
        return FieldProblem(field=field, problem=f'"{field}" must be text (a JSON string).')
    if field == "conversation_id" and kind.startswith("string_"):  # empty, too long, a character not allowed
        return FieldProblem(field=field, problem=CONVERSATION_ID_RULE)
    if field == "answer_id" and kind.startswith("string_"):
        return FieldProblem(field=field, problem=ANSWER_ID_RULE)
    if field == "vote" and kind == "literal_error":
        return FieldProblem(field=field, problem='"vote" must be "up" or "down".')
    if field in ("top_k", "k") and (kind.startswith("int") or kind in ("greater_than_equal", "less_than_equal")):
        return FieldProblem(field=field, problem=f'"{field}" must be a whole number from 1 to {max_top_k}.')
    return FieldProblem(field=field, problem=f'"{field}": {error.get("msg", "is not valid")}.')


def describe_validation(errors: list[dict[str, Any]], max_top_k: int) -> tuple[int, ErrorBody]:
    problems = [describe_problem(e, max_top_k) for e in errors]
    # Several errors often say the same thing (a non-object body fails every field).
    unique = list(dict.fromkeys(p.problem for p in problems))
    status, code = (
        (400, "invalid_json") if any(e.get("type") == "json_invalid" for e in errors) else (422, "invalid_request")
    )
    return status, ErrorBody(error=" ".join(unique[:3]), code=code, detail=problems)


# -- handlers ----------------------------------------------------------------------------------------


HTTP_MESSAGES = {
    400: ("bad_request", "The request could not be read; send UTF-8 JSON with Content-Type: application/json."),
    404: ("not_found", "There is nothing at this address; see /docs for the endpoints."),
    405: ("method_not_allowed", "This address does not take that method; see /docs for the endpoints."),
    413: ("too_large", "The request body is too large."),
}


def install_error_handlers(app: FastAPI, max_top_k: int) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, body = describe_validation(list(exc.errors()), max_top_k)
        return JSONResponse(body.model_dump(), status_code=status)

    @app.exception_handler(BadQuestion)
    async def bad_question(request: Request, exc: BadQuestion) -> JSONResponse:
        return error_response(422, "invalid_request", str(exc))

    @app.exception_handler(IndexUnavailable)
    async def index_unavailable(request: Request, exc: IndexUnavailable) -> JSONResponse:
        return error_response(503, "not_ready", str(exc))

    @app.exception_handler(ModelUnavailable)
    async def model_unavailable(request: Request, exc: ModelUnavailable) -> JSONResponse:
        return error_response(503, "not_ready", str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, message = HTTP_MESSAGES.get(exc.status_code, (f"http_{exc.status_code}", str(exc.detail)))
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "Something went wrong on the server; the problem has been logged.")
