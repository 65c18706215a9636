"""Who may use the server, and as whom: one `Access` for the HTTP API and the chat UI.

Three modes, decided when the server starts:

- **accounts** (`citewise users add ...` created `<data_dir>/users.db`): the UI login is a user's
  name and password, `/v1` needs one of that user's API tokens (`citewise users token add`);
  each user sees only their own conversations and feedback, reads the knowledge bases open to
  them, and only administrators manage knowledge bases.
- **shared secret** (`--username/--password` and/or `--api-token`): one user. `/v1` needs the
  token when one is set. The UI needs a login whenever either is set: the username and password,
  or (with a token alone) any user name with the API token as the password, so a token never
  leaves the chat's delete and upload buttons open.
- **open** (none of these, on loopback only): one user, no login, as before.

Failed UI logins are counted per client address and per user name (`LoginGuard`); past
`settings.login_max_failures` further attempts are refused (429) for a lockout that doubles with
each failure.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from ui.clients import client_address
from ui.settings import ServerSettings
from ui.users import SINGLE_USER, Principal, UserStore


class Access:
    def __init__(self, settings: ServerSettings, users: UserStore | None = None) -> None:
        self.settings = settings
        self.users = users if settings.accounts else None

    @property
    def ui_login_required(self) -> bool:
        s = self.settings
        return self.users is not None or s.password is not None or s.api_token is not None

    @property
    def api_token_required(self) -> bool:
        return self.users is not None or self.settings.api_token is not None

    def api_principal(self, authorization: str) -> Principal | None:
        """Who an `Authorization` header authenticates on /v1; None when it does not."""
        if not self.api_token_required:
            return SINGLE_USER
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        token = token.strip()
        if self.users is not None:
            return self.users.user_for_token(token)
        expected = self.settings.api_token or ""
        if secrets.compare_digest(token.encode("utf-8", "replace"), expected.encode()):
            return SINGLE_USER
        return None

    def ui_login(self, username: str, password: str) -> bool:
        """Gradio's `auth` callable."""
        if self.users is not None:
            return self.users.verify(username, password) is not None
        s = self.settings
        given = password.encode("utf-8", "replace")
        if s.username is not None and s.password is not None:
            ok_user = secrets.compare_digest(
                username.encode("utf-8", "replace"), s.username.encode()
            )
            if ok_user and secrets.compare_digest(given, s.password.encode()):
                return True
        if s.api_token is not None and username.strip():
            return secrets.compare_digest(given, s.api_token.encode())
        return False

    def gradio_auth(self) -> Callable[[str, str], bool] | None:
        return self.ui_login if self.ui_login_required else None

    def ui_principal(self, request: Any) -> Principal:
        """Who a Gradio event runs for (its `gr.Request`); with accounts, a request without a
        logged-in user raises PermissionError (Gradio's login check stops those first)."""
        if self.users is None:
            return SINGLE_USER
        name = getattr(request, "username", None) if request is not None else None
        principal = self.users.principal(name)
        if principal is None:
            raise PermissionError("log in to use citewise")
        return principal

    def readable(self, principal: Principal, kbs: list[str]) -> list[str]:
        """The knowledge bases of `kbs` that `principal` may read (all, without accounts)."""
        if self.users is None or principal.admin:
            return list(kbs)
        readers = self.users.readers()
        return [kb for kb in kbs if kb not in readers or principal.name in readers[kb]]

    def restricted(self, principal: Principal, all_kbs: list[str]) -> list[str] | None:
        """`readable` for Agent.stream: None when nothing is hidden from `principal`."""
        readable = self.readable(principal, all_kbs)
        return None if len(readable) == len(all_kbs) else readable


class _Lockout:
    """Failed attempts per key; past `limit` a key waits `base_s`, doubling per failure."""

    def __init__(
        self,
        limit: int,
        base_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.limit, self.base_s, self._clock, self._max_keys = limit, base_s, clock, max_keys
        self._failures: dict[str, tuple[int, float]] = {}  # key -> (failures, locked until)
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        with self._lock:
            _, until = self._failures.get(key, (0, 0.0))
        return max(0.0, until - self._clock())

    def failed(self, key: str) -> None:
        now = self._clock()
        with self._lock:
            if key not in self._failures and len(self._failures) >= self._max_keys:
                for old in list(self._failures)[: self._max_keys // 2]:
                    del self._failures[old]
            count, until = self._failures.pop(key, (0, 0.0))
            count += 1
            if count >= self.limit:
                until = now + min(3600.0, self.base_s * 2 ** (count - self.limit))
            self._failures[key] = (count, until)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


class LoginGuard:
    """ASGI middleware in front of Gradio's `POST /login`: refuses (429, Retry-After) attempts
    from an address or for a user name that failed too often, and counts the failures."""

    MAX_BODY = 16 * 1024

    def __init__(
        self, app: Any, settings: ServerSettings, clock: Callable[[], float] | None = None
    ):
        self.app = app
        self.settings = settings
        self.lockout = _Lockout(
            settings.login_max_failures, settings.login_lockout_s, clock=clock or time.monotonic
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or scope.get("path", "").rstrip("/") != "/login"
        ):
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.MAX_BODY:
                await _reply(send, 413, "login form too large")
                return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        peer = scope.get("client")[0] if scope.get("client") else None
        client = client_address(peer, headers, self.settings.trusted_proxies)
        fields = parse_qs(body.decode("utf-8", "replace"))
        user = (fields.get("username") or [""])[0].strip()[:64]
        keys = [f"addr:{client}", f"user:{user}"]
        wait = max(self.lockout.wait(k) for k in keys)
        if wait > 0:
            await _reply(
                send,
                429,
                f"too many failed logins; try again in {math.ceil(wait)} s",
                retry_after=math.ceil(wait),
            )
            return
        status = 0
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def watch(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, replay, watch)
        if status == 200:
            for key in keys:
                self.lockout.succeeded(key)
        elif 400 <= status < 500:
            for key in keys:
                self.lockout.failed(key)


async def _reply(send: Any, status: int, detail: str, retry_after: int | None = None) -> None:
    headers = [(b"content-type", b"application/json")]
    if retry_after is not None:
        headers.append((b"retry-after", str(max(1, retry_after)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps({"detail": detail}).encode()})
