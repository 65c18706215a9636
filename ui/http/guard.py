"""What every /v1 request passes first: the per-client rate limit, then the bearer token, which
names the user the request acts for (`request.state.principal`, see ui/auth.py)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException, Request

from ui.auth import Access
from ui.clients import client_address
from ui.http.ratelimit import RateLimiter, retry_after
from ui.users import SINGLE_USER, Principal


def api_guard(access: Access) -> Callable[[Request], None]:
    """A FastAPI dependency enforcing the rate limit and the token of `access.settings`."""
    settings = access.settings
    limiter = RateLimiter(settings.rate_limit_per_minute)
    how = (
        "one of your API tokens (`citewise users token add NAME`)"
        if access.users is not None
        else "the token given to `citewise ui --api-token`"
    )

    def guard(request: Request) -> None:
        # Counted before the token is checked, so guessing tokens is rate limited too.
        client = client_address(
            request.client.host if request.client else None,
            request.headers,
            settings.trusted_proxies,
        )
        wait = limiter.check(client)
        if wait > 0:
            raise HTTPException(
                429,
                f"rate limit of {settings.rate_limit_per_minute} requests per minute reached; "
                f"retry in {retry_after(wait)} s",
                headers={"Retry-After": retry_after(wait)},
            )
        principal = access.api_principal(request.headers.get("authorization", ""))
        if principal is None:
            raise HTTPException(
                401,
                "missing or wrong API token: send the header 'Authorization: Bearer <token>' "
                f"with {how}",
                headers={"WWW-Authenticate": "Bearer"},
            )
        request.state.principal = principal

    return guard


def principal(request: Request) -> Principal:
    """Who the request acts for (set by the guard)."""
    return getattr(request.state, "principal", SINGLE_USER)
