"""The API key (NEWSQA_API_KEY): a dependency every data route carries when a key is set."""

# No `from __future__ import annotations` here: FastAPI resolves a dependency's annotations against
# the module's globals, and `require_key`'s closes over a local (the bearer scheme).

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from newsqa.bot.http.errors import ApiError


def api_key_dependency(key: bytes) -> Callable[..., Any]:
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


@dataclass(frozen=True)
class Guard:
    """What a guarded route carries: its dependencies, and the statuses they add to its documentation."""

    dependencies: tuple[Any, ...] = ()
    statuses: tuple[int, ...] = ()

    @classmethod
    def for_key(cls, key: str) -> "Guard":
        if not key:
            return cls()
        return cls((Depends(api_key_dependency(key.encode("utf-8"))),), (401,))
