"""POST /admin/reload: load the build `current` points at now, as the watcher does."""

# No `from __future__ import annotations` in route modules: FastAPI reads endpoint annotations as
# objects.

from fastapi import APIRouter

from newsqa.bot.http.auth import Guard
from newsqa.bot.http.errors import ApiError, documented
from newsqa.bot.http.runtime import Runtime
from newsqa.bot.http.schemas import ReloadResult
from newsqa.index.format import IndexUnavailable


def admin_router(runtime: Runtime, guard: Guard) -> APIRouter:
    service = runtime.service
    router = APIRouter(tags=["admin"], dependencies=list(guard.dependencies))

    @router.post("/admin/reload", response_model=ReloadResult, responses=documented(*guard.statuses, 503))
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

    return router
