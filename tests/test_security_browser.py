"""Two users of one server, in a real browser (issue 11): accounts created with `citewise users`,
`citewise ui` started as a user starts it (real SmolLM2, short answers), each user logged in to
their own browser context. Neither sees the other's conversation in the chat's list, nor a
knowledge base kept from them."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest
from cli_run import run_cli
from test_ui_browser import Server, ask, browser, start_server, stop_server  # noqa: F401

pytestmark = pytest.mark.slow

QUESTION = "When did Carl Wilhelm Scheele discover oxygen?"


@pytest.fixture(scope="module")
def server(education_data_dir, tmp_path_factory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("ui-users")
    data = root / "data"
    shutil.copytree(education_data_dir, data)
    # The owners checked below are of the sessions this module makes: the copy starts with none.
    if (data / "dialogue.db").exists():
        from agent.state import DialogueStore

        with DialogueStore(data / "dialogue.db") as store:
            assert store.sessions() == [], "a test stored sessions in education_data_dir"
    for name, password in (("alice", "alice-password"), ("bob", "bob-password")):
        done = run_cli(
            "--data-dir", str(data), "users", "add", name, env={"CITEWISE_NEW_PASSWORD": password}
        )
        assert done.returncode == 0, done.stderr
    # A knowledge base only alice may read: bob's chat must not offer it.
    assert (
        run_cli("--data-dir", str(data), "users", "readers", "education", "alice").returncode == 0
    )
    config = root / "agent.toml"
    config.write_text('device = "cpu"\nmax_new_tokens = 24\ntime_limit_s = 120.0\n')
    srv = start_server(data, config, root / "server.log")
    yield srv
    stop_server(srv)


def logged_in(browser, url: str, name: str, password: str):  # noqa: F811
    context = browser.new_context(locale="en-US", viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    inputs = page.locator("input")
    inputs.first.wait_for()
    inputs.nth(0).fill(name)
    page.locator("input[type=password]").fill(password)
    page.get_by_role("button", name="Login").click()
    page.locator("#cw-message textarea").wait_for()
    return page


def session_options(page) -> list[str]:
    page.locator("#cw-sessions input").click()
    time.sleep(0.5)
    texts = page.locator("[data-testid=dropdown-option]").all_inner_texts()
    page.keyboard.press("Escape")
    return texts


def kb_options(page) -> list[str]:
    page.locator("#cw-kb input").click()
    time.sleep(0.5)
    texts = page.locator("[data-testid=dropdown-option]").all_inner_texts()
    page.keyboard.press("Escape")
    return texts


def test_a_wrong_password_does_not_log_in(browser, server):  # noqa: F811
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.goto(server.url)
    page.locator("input").first.wait_for()
    page.locator("input").nth(0).fill("alice")
    page.locator("input[type=password]").fill("bob-password")
    page.get_by_role("button", name="Login").click()
    page.wait_for_timeout(2000)
    assert page.locator("#cw-message textarea").count() == 0
    context.close()


def test_two_users_never_see_each_others_conversations(browser, server):  # noqa: F811
    alice = logged_in(browser, server.url, "alice", "alice-password")
    bob = logged_in(browser, server.url, "bob", "bob-password")
    try:
        message, _ = ask(alice, QUESTION)
        assert "Scheele" in message.inner_text() or message.locator(".cw-source").count()
        mine = session_options(alice)
        assert any(QUESTION[:20] in o for o in mine), mine
        bob.reload()
        bob.locator("#cw-message textarea").wait_for()
        assert not any(QUESTION[:20] in o for o in session_options(bob))
        assert "education" not in " ".join(kb_options(bob))
        assert "education" in " ".join(kb_options(alice))
        from agent.state import DialogueStore

        with DialogueStore(server.data_dir / "dialogue.db") as store:
            owners = {s.owner for s in store.sessions()}
        assert owners == {"alice"}
    finally:
        alice.context.close()
        bob.context.close()
