"""What every /v1 request passes first: the per-client rate limit, then the bearer token."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from fastapi import HTTPException, Request

from ui.ratelimit import RateLimiter, retry_after
from ui.settings import ServerSettings


def api_guard(settings: ServerSettings) -> Callable[[Request], None]:
    """A FastAPI dependency enforcing `settings.rate_limit_per_minute` and `settings.api_token`."""
    limiter = RateLimiter(settings.rate_limit_per_minute)
    expected = f"Bearer {settings.api_token}".encode() if settings.api_token else None

    def guard(request: Request) -> None:
        # Counted before the token is checked, so guessing tokens is rate limited too.
        client = request.client.host if request.client else "unknown"
        wait = limiter.check(client)
        if wait > 0:
            raise HTTPException(
                429,
                f"rate limit of {settings.rate_limit_per_minute} requests per minute reached; "
                f"retry in {retry_after(wait)} s",
                headers={"Retry-After": retry_after(wait)},
            )
        if expected is None:
            return
        given = request.headers.get("authorization", "").encode()
        if not secrets.compare_digest(given, expected):
            raise HTTPException(
                401,
                "missing or wrong API token: send the header 'Authorization: Bearer <token>' "
                "with the token given to `citewise ui --api-token`",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return guard
