"""GET /articles (what is indexed, a page at a time) and GET /articles/{id} (one article's text and
the passages it was split into)."""

# No `from __future__ import annotations` in route modules: FastAPI reads endpoint annotations as
# objects.

from fastapi import APIRouter, Query

from newsqa.bot.http.auth import Guard
from newsqa.bot.http.errors import ApiError, documented
from newsqa.bot.http.runtime import Runtime
from newsqa.bot.http.schemas import ArticleDetail, ArticleList, ArticlePassage, ArticleSummary

# A 1M-passage build holds ~271k articles: one response with all of them would be tens of MB
ARTICLES_PER_PAGE = 1000


def articles_router(runtime: Runtime, guard: Guard) -> APIRouter:
    service = runtime.service
    router = APIRouter(tags=["articles"], dependencies=list(guard.dependencies))

    @router.get("/articles", response_model=ArticleList, responses=documented(*guard.statuses, 422, 503))
    async def articles(
        offset: int = Query(0, ge=0, description="skip this many articles"),
        limit: int = Query(ARTICLES_PER_PAGE, ge=1, le=ARTICLES_PER_PAGE, description="list at most this many"),
    ) -> ArticleList:
        """What is indexed: each article's id, title, publisher, URL, date and number of passages, a
        page at a time."""
        runtime.require_ready()

        def read() -> ArticleList:
            view = service.view()  # one build for the whole listing, even if a reload lands meanwhile
            listed = [
                ArticleSummary(
                    article_id=a.article_id,
                    title=a.title,
                    source=a.site,
                    url=a.url,
                    published=a.published,
                    passage_count=view.passage_count(a.article_id),
                )
                for a in view.articles_page(offset, limit)
            ]
            return ArticleList(build_id=view.build_id, count=view.article_count, offset=offset, articles=listed)

        return await runtime.run(read)

    @router.get(
        "/articles/{article_id}",
        response_model=ArticleDetail,
        responses=documented(*guard.statuses, 404, 422, 503),
    )
    async def article(article_id: str) -> ArticleDetail:
        """One article's publisher, URL and date, its cleaned text and the passages it was split into;
        404 for an unknown id."""
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
                source=found.site,
                url=found.url,
                published=found.published,
                text=found.text,
                paragraph_count=len(found.paragraph_spans),
                passages=[ArticlePassage.model_validate(p) for p in view.passages_of(article_id)],
            )

        detail = await runtime.run(read)
        if detail is None:
            raise ApiError(404, "not_found", f"No article has the id {article_id[:200]!r}; GET /articles lists them.")
        return detail

    return router
