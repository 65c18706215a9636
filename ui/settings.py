"""Server settings shared by the chat UI and the HTTP API: binding, auth and the limits enforced."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from agent.config import MAX_MESSAGE_CHARS
from agent.uploads import ALLOWED_UPLOAD_TYPES, UploadLimits

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 7860
    # Binding beyond loopback needs credentials or an explicit, warned-about --insecure.
    insecure: bool = False
    username: str | None = None  # Gradio login for the UI
    password: str | None = None
    api_token: str | None = None  # bearer token for /v1/* (and the UI password, alone)
    # User accounts exist (`citewise users`, ui/users.py): logins and tokens are theirs.
    accounts: bool = False
    max_upload_mb: float = 20.0  # per file
    max_upload_files: int = 20  # per request
    max_upload_chars: int = 1_000_000  # text extracted from one uploaded file
    allowed_types: tuple[str, ...] = ALLOWED_UPLOAD_TYPES
    max_message_chars: int = MAX_MESSAGE_CHARS  # the agent's own limit (agent/config.py)
    max_history_messages: int = 64  # per API request; each earlier pair becomes a stored turn
    rate_limit_per_minute: int = 60  # per client on the API
    # Addresses (or networks, "10.0.0.0/8") of reverse proxies whose X-Forwarded-For names the
    # client; from anyone else the header is ignored, so it cannot dodge the rate limit.
    trusted_proxies: tuple[str, ...] = ()
    # Wrong UI passwords: after `login_max_failures` from one address (or for one user name)
    # further attempts are refused for `login_lockout_s`, doubling with each further failure.
    login_max_failures: int = 5
    login_lockout_s: float = 30.0
    # One shared model on a small machine: answers run one or two at a time, the rest queue.
    concurrency_limit: int = 2
    max_queue: int = 64

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be 1-65535, not {self.port}")
        if min(self.max_upload_files, self.max_message_chars, self.max_history_messages) < 1 or (
            self.max_upload_mb <= 0
        ):
            raise ValueError("upload and message limits must be positive")
        if self.concurrency_limit < 1 or self.rate_limit_per_minute < 1:
            raise ValueError("concurrency_limit and rate_limit_per_minute must be at least 1")
        if self.max_upload_chars < 1 or self.login_max_failures < 1 or self.login_lockout_s < 0:
            raise ValueError(
                "max_upload_chars and login_max_failures must be at least 1, login_lockout_s >= 0"
            )
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError as e:
                raise ValueError(
                    f"trusted proxy {proxy!r} is not an IP address or network: {e}"
                ) from None
        if (self.username is None) != (self.password is None):
            raise ValueError("give both --username and --password, or neither")
        if self.accounts and (self.password is not None or self.api_token is not None):
            raise ValueError(
                "user accounts exist in this data directory: users log in with their own "
                "passwords and API tokens (`citewise users token add NAME`), so --username, "
                "--password and --api-token are not used; leave them out"
            )
        if self.open_parts and not self.is_loopback and not self.insecure:
            raise ValueError(
                f"binding {self.host} exposes the server beyond this machine, and the "
                f"{' and the '.join(self.open_parts)} would have no login: set --username/"
                "--password (UI) and --api-token (API), or pass --insecure to accept the risk"
            )

    @property
    def upload_limits(self) -> UploadLimits:
        return UploadLimits(
            self.max_upload_mb, self.max_upload_files, self.max_upload_chars, self.allowed_types
        )

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS

    @property
    def open_parts(self) -> tuple[str, ...]:
        """The parts of the server anyone who can reach it may use: "UI" and/or "API"."""
        ui = self.accounts or self.password is not None or self.api_token is not None
        api = self.accounts or self.api_token is not None
        return tuple(part for part, guarded in (("UI", ui), ("API", api)) if not guarded)

    @property
    def exposed_without_auth(self) -> bool:
        """Reachable from other machines with a part left open (allowed only with --insecure)."""
        return not self.is_loopback and bool(self.open_parts)

    @property
    def auth(self) -> tuple[str, str] | None:
        """Gradio's `auth` argument, or None when no login is configured."""
        if self.username is None or self.password is None:
            return None
        return (self.username, self.password)
