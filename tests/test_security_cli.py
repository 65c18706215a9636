"""The command line as a careless user meets it (issue 11 finding 6): one message limit checked
before any model loads, unknown sessions refused, quiet pipes, secrets kept off the command line,
and the `citewise users` commands. Real subprocesses of this checkout's CLI."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest
from cli_run import ROOT, run_cli

from ui.cli.main import build_parser
from ui.cli.serve import settings_from_args


def _fast(done: subprocess.CompletedProcess[str], seconds: float, started: float) -> None:
    assert time.monotonic() - started < seconds, "the check ran after the models were loaded"
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr


def test_ask_refuses_a_message_over_the_limit_before_loading_models(tmp_path):
    started = time.monotonic()
    done = run_cli("--data-dir", str(tmp_path), "ask", "x" * 130_000, timeout=60)
    _fast(done, 8.0, started)
    assert "130000 characters; the limit is 4000" in done.stderr


@pytest.mark.parametrize("message", ["", "   "])
def test_ask_refuses_an_empty_message_at_once(tmp_path, message):
    started = time.monotonic()
    done = run_cli("--data-dir", str(tmp_path), "ask", message, timeout=60)
    _fast(done, 8.0, started)
    assert "the message is empty" in done.stderr


def test_ask_with_an_unknown_session_is_an_error_not_a_new_session(tmp_path):
    started = time.monotonic()
    done = run_cli("--data-dir", str(tmp_path), "ask", "--session", "nope", "hello", timeout=60)
    _fast(done, 8.0, started)
    assert "no dialogue session with id 'nope'" in done.stderr
    db = sqlite3.connect(tmp_path / "dialogue.db")
    assert db.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
    db.close()


def test_the_message_limit_is_the_same_in_the_python_api():
    from agent.config import MAX_MESSAGE_CHARS, AgentConfig
    from agent.limits import MessageTooLongError, check_message
    from ui.settings import ServerSettings

    assert (
        ServerSettings().max_message_chars == AgentConfig().max_message_chars == MAX_MESSAGE_CHARS
    )
    with pytest.raises(MessageTooLongError, match="the limit is 4000"):
        check_message("x" * 4001)
    assert check_message("x" * 4000) == "x" * 4000


def test_kb_show_into_a_closed_pipe_exits_quietly(education_data_dir):
    proc = subprocess.Popen(
        [sys.executable, "-m", "ui.cli", "--data-dir", str(education_data_dir), "kb", "show",
         "education"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)  # like `| head -c 10`: read a little, then go away
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) in (0, 141)
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_secrets_come_from_files_and_the_environment(tmp_path, monkeypatch):
    pw = tmp_path / "pw"
    pw.write_text("from-a-file\n", encoding="utf-8")
    monkeypatch.setenv("CITEWISE_API_TOKEN", "from-the-env")
    monkeypatch.setenv("CITEWISE_USERNAME", "me")
    args = build_parser().parse_args(["ui", "--password-file", str(pw)])
    settings = settings_from_args(args)
    assert (settings.username, settings.password, settings.api_token) == (
        "me",
        "from-a-file",
        "from-the-env",
    )
    monkeypatch.delenv("CITEWISE_USERNAME")
    flag = build_parser().parse_args(["ui", "--api-token", "flag-wins"])
    assert settings_from_args(flag).api_token == "flag-wins"
    tok = tmp_path / "tok"
    tok.write_text("", encoding="utf-8")
    empty = build_parser().parse_args(["ui", "--api-token-file", str(tok)])
    with pytest.raises(ValueError, match="is empty"):
        settings_from_args(empty)


def test_users_commands_manage_accounts_tokens_and_readers(tmp_path):
    data = str(tmp_path)
    env = {"CITEWISE_NEW_PASSWORD": "correct-horse"}
    assert run_cli("--data-dir", data, "users", "add", "alice", env=env).returncode == 0
    pw = tmp_path / "pw"
    pw.write_text("battery-staple\n", encoding="utf-8")
    admin = run_cli(
        "--data-dir", data, "users", "add", "root", "--admin", "--password-file", str(pw)
    )
    assert admin.returncode == 0, admin.stderr
    short = run_cli("--data-dir", data, "users", "add", "bob", stdin="short\n")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    again = run_cli("--data-dir", data, "users", "add", "alice", env=env)
    assert again.returncode == 2 and "exists already" in again.stderr

    token = run_cli("--data-dir", data, "users", "token", "add", "alice", "--label", "laptop")
    assert token.returncode == 0 and token.stdout.startswith("cw_")
    listed = run_cli("--data-dir", data, "users", "token", "list").stdout
    assert "alice" in listed and "laptop" in listed and token.stdout.strip() not in listed
    raw = (tmp_path / "users.db").read_bytes()
    assert b"correct-horse" not in raw and token.stdout.strip().encode() not in raw

    from ui.users import UserStore

    store = UserStore.for_data_dir(tmp_path)
    alice = store.user_for_token(token.stdout.strip())
    root = store.verify("root", "battery-staple")
    assert alice is not None and alice.name == "alice"
    assert root is not None and root.admin

    assert run_cli("--data-dir", data, "users", "readers", "legal", "alice").returncode == 0
    assert store.readers() == {"legal": {"alice"}}
    assert (
        run_cli("--data-dir", data, "users", "passwd", "alice", stdin="new-password\n").returncode
        == 0
    )
    assert store.verify("alice", "new-password") is not None
    token_id = listed.split()[0]
    assert run_cli("--data-dir", data, "users", "token", "revoke", token_id).returncode == 0
    assert store.user_for_token(token.stdout.strip()) is None
    assert run_cli("--data-dir", data, "users", "remove", "alice").returncode == 0
    assert [u.name for u in store.users()] == ["root"]
    assert store.readers() == {}
    store.close()


def test_ui_refuses_shared_secrets_when_accounts_exist(tmp_path):
    from ui.users import UserStore

    store = UserStore.for_data_dir(tmp_path)
    store.add("alice", "correct-horse")
    store.close()
    done = run_cli("--data-dir", str(tmp_path), "ui", "--api-token", "t", timeout=120)
    assert done.returncode == 2 and "user accounts exist" in done.stderr
