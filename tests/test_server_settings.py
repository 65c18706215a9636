"""Who may reach the server: binding rules of `citewise ui`, and the API's per-client rate limit."""

from __future__ import annotations

import pytest
from cli_run import run_cli

from ui.cli.main import build_parser
from ui.cli.serve import settings_from_args
from ui.http.ratelimit import RateLimiter, retry_after
from ui.settings import ServerSettings


def _settings(*argv: str) -> ServerSettings:
    return settings_from_args(build_parser().parse_args(["ui", *argv]))


def test_loopback_is_the_default_and_needs_no_login(capsys):
    settings = _settings()
    assert (settings.host, settings.port, settings.auth) == ("127.0.0.1", 7860, None)
    assert not settings.exposed_without_auth
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("argv", "open_part"),
    [
        ([], "UI and the API"),
        (["--username", "u", "--password", "p"], "API"),
    ],
)
def test_binding_beyond_loopback_needs_both_logins(argv, open_part):
    with pytest.raises(ValueError, match=f"the {open_part} would have no login"):
        _settings("--host", "0.0.0.0", *argv)


def test_binding_beyond_loopback_with_logins_is_allowed(capsys):
    settings = _settings(
        "--host", "0.0.0.0", "--username", "u", "--password", "p", "--api-token", "t"
    )
    assert settings.auth == ("u", "p") and settings.api_token == "t"
    assert capsys.readouterr().err == ""


def test_an_api_token_alone_guards_the_ui_too(capsys):
    # The UI then asks for a login whose password is the token (ui/auth.py, issue 11 finding 4).
    settings = _settings("--host", "0.0.0.0", "--api-token", "t")
    assert settings.open_parts == () and not settings.exposed_without_auth
    assert capsys.readouterr().err == ""


def test_insecure_allows_it_with_a_warning(capsys):
    settings = _settings("--host", "0.0.0.0", "--insecure", "--username", "u", "--password", "p")
    assert settings.exposed_without_auth and settings.open_parts == ("API",)
    err = capsys.readouterr().err
    assert "WARNING" in err and "the API on 0.0.0.0:7860 can be used by anyone" in err


def test_the_command_refuses_an_open_public_binding():
    done = run_cli("ui", "--host", "0.0.0.0", "--port", "7999", timeout=120)
    assert done.returncode == 2
    assert "exposes the server beyond this machine" in done.stderr
    assert "--insecure" in done.stderr


def test_settings_reject_nonsense():
    with pytest.raises(ValueError, match="port"):
        ServerSettings(port=0)
    with pytest.raises(ValueError, match="both --username and --password"):
        ServerSettings(username="u")
    with pytest.raises(ValueError, match="limits must be positive"):
        ServerSettings(max_upload_mb=0)


def test_rate_limiter_refills_at_the_per_minute_rate():
    now = [0.0]
    limiter = RateLimiter(6, clock=lambda: now[0])  # one request every 10 s after the burst
    assert [limiter.check("a") for _ in range(6)] == [0.0] * 6
    assert limiter.check("a") == pytest.approx(10.0)
    assert limiter.check("b") == 0.0  # clients are counted apart
    now[0] = 10.0
    assert limiter.check("a") == 0.0
    assert limiter.check("a") == pytest.approx(10.0)
    assert retry_after(0.2) == "1" and retry_after(10.0) == "10"


def test_rate_limiter_memory_is_bounded():
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0], max_keys=4)
    for i in range(10):
        limiter.check(f"client-{i}")
        now[0] += 0.5
    assert len(limiter._buckets) <= 4
