"""Who may use the server (issue 11 findings 3-5): the chat's Gradio events need the same
credentials as the API, wrong passwords lock out, and users never see each other's conversations
or the knowledge bases kept from them.

In-process (FastAPI TestClient) over a real Agent with a ScriptedLM that quotes passage [1].
"""

from __future__ import annotations

import re
import shutil

import pytest
from fastapi.testclient import TestClient

from ui.settings import ServerSettings

_PASSAGE_1 = re.compile(r'<passage n="1" title="[^"]*">\s*(.*?)\s*</passage>', re.S)
SECRET_DOC = b"# Zorblat\n\nThe zorblat reactor on Kepler station runs on frozen helium tea."


def quote_first_passage(messages) -> str:
    found = _PASSAGE_1.search(messages[0]["content"])
    if found is None:
        return "Hello."
    return re.split(r"(?<=[.!?。])\s", found.group(1))[0] + " [1]"


@pytest.fixture(scope="module")
def agent(education_data_dir, tmp_path_factory, scripted_lm):
    from agent import Agent
    from agent.config import AgentConfig

    data = tmp_path_factory.mktemp("security-auth") / "data"
    shutil.copytree(education_data_dir, data)
    agent = Agent(
        AgentConfig.load(data_dir=str(data), device="cpu", max_new_tokens=32),
        lm=scripted_lm(respond=quote_first_passage),
    )
    yield agent
    agent.close()


def app(agent, users=None, **settings):
    from ui.server import create_app

    return create_app(agent, ServerSettings(**settings), users)


def login(http: TestClient, username: str, password: str) -> int:
    return http.post("/login", data={"username": username, "password": password}).status_code


# --- finding 4: an API token alone left the chat's buttons open -------------------------------


def _queue_join(http: TestClient) -> int:
    """Try to run the first event of the page through Gradio's queue, as the issue's probe did."""
    body = {"data": [], "fn_index": 0, "session_hash": "probe12345", "event_data": None}
    return http.post("/gradio_api/queue/join", json=body).status_code


def test_gradio_events_need_credentials_when_an_api_token_is_set(agent):
    http = TestClient(app(agent, api_token="tok-123456"))
    assert http.get("/config").status_code == 401
    assert _queue_join(http) == 401
    assert http.get("/v1/models").status_code == 401
    assert login(http, "me", "wrong") == 400
    assert login(http, "me", "tok-123456") == 200  # any name, the token as password
    assert http.get("/config").status_code == 200
    assert _queue_join(http) != 401


def test_without_any_credentials_on_loopback_the_chat_stays_open(agent):
    http = TestClient(app(agent))
    assert http.get("/config").status_code == 200


# --- finding 3: unlimited wrong passwords -----------------------------------------------------


def test_wrong_passwords_lock_the_login_out(agent):
    http = TestClient(
        app(agent, username="me", password="right-horse", login_max_failures=3, login_lockout_s=60)
    )
    assert [login(http, "me", f"guess-{i}") for i in range(3)] == [400, 400, 400]
    locked = http.post("/login", data={"username": "me", "password": "right-horse"})
    assert locked.status_code == 429  # even the right password waits now
    assert int(locked.headers["retry-after"]) >= 59
    assert "too many failed logins" in locked.json()["detail"]
    # Another user name from the same address is locked too (the address is counted).
    assert login(http, "other", "x") == 429


def test_lockout_grows_with_each_failure_and_clears_on_success():
    from ui.auth import _Lockout

    now = [0.0]
    lock = _Lockout(2, 10.0, clock=lambda: now[0])
    lock.failed("k")
    assert lock.wait("k") == 0.0
    lock.failed("k")
    assert lock.wait("k") == pytest.approx(10.0)
    now[0] = 10.0
    lock.failed("k")
    assert lock.wait("k") == pytest.approx(20.0)  # doubled
    lock.succeeded("k")
    assert lock.wait("k") == 0.0


# --- finding 5 and the users of the issue: accounts, tokens, ownership, restricted kbs ---------


@pytest.fixture(scope="module")
def users(agent):
    from ui.users import UserStore

    store = UserStore.for_data_dir(agent.data_dir)
    store.add("admin", "admin-password", admin=True)
    store.add("alice", "alice-password")
    store.add("bob", "bob-password")
    tokens = {name: store.add_token(name)[1] for name in ("admin", "alice", "bob")}
    yield store, tokens
    store.close()


@pytest.fixture(scope="module")
def accounts(agent, users):
    store, tokens = users
    http = TestClient(app(agent, store, accounts=True))

    def as_(name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[name]}"}

    return http, as_


def _ask(http, headers, content, **body):
    return http.post(
        "/v1/chat/completions",
        headers=headers,
        json={"model": "auto", "messages": [{"role": "user", "content": content}], **body},
    )


def test_passwords_and_tokens_are_stored_hashed(agent, users):
    import sqlite3

    store, tokens = users
    raw = (agent.data_dir / "users.db").read_bytes()
    assert b"alice-password" not in raw and tokens["alice"].encode() not in raw
    db = sqlite3.connect(agent.data_dir / "users.db")
    hashes = [r[0] for r in db.execute("SELECT password_hash FROM users")]
    db.close()
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert store.verify("alice", "alice-password").name == "alice"
    assert store.verify("alice", "bob-password") is None
    assert store.verify("nobody", "alice-password") is None


def test_each_user_continues_only_their_own_sessions(agent, accounts):
    http, as_ = accounts
    assert _ask(http, {}, "hi").status_code == 401
    mine = _ask(http, as_("alice"), "When did Carl Wilhelm Scheele discover oxygen?")
    assert mine.status_code == 200, mine.text
    sid = mine.json()["session_id"]
    assert agent.store.session(sid).owner == "alice"
    stolen = _ask(http, as_("bob"), "And who else?", session_id=sid)
    assert stolen.status_code == 404  # not 403: the id does not even exist for bob
    by_header = http.post(
        "/v1/chat/completions",
        headers={**as_("bob"), "X-Session-Id": sid},
        json={"messages": [{"role": "user", "content": "And who else?"}]},
    )
    assert by_header.status_code == 404
    assert [t.user_text for t in agent.history(sid)] == [
        "When did Carl Wilhelm Scheele discover oxygen?"
    ]
    assert _ask(http, as_("alice"), "And who else?", session_id=sid).status_code == 200


def test_the_chat_ui_layer_shows_users_only_their_own_conversations(agent, accounts):
    from agent.state import SessionNotFoundError, TurnNotFoundError
    from ui.web import session as chat_session

    http, as_ = accounts
    reply = _ask(http, as_("alice"), "When did Scheele discover oxygen?").json()
    sid, turn = reply["session_id"], reply["turn_id"]
    assert sid in {v for _, v in chat_session.session_choices(agent, "alice")}
    assert sid not in {v for _, v in chat_session.session_choices(agent, "bob")}
    with pytest.raises(SessionNotFoundError):
        chat_session.load_session(agent, sid, "en", "bob")
    with pytest.raises(TurnNotFoundError):
        agent.feedback(turn, 1, "bob rates alice", owner="bob")
    stale = chat_session.ChatState(session_id=sid)
    assert "⚠" in chat_session.rename(agent, stale, "mine now", "en", "bob")
    chat_session.delete(agent, stale, "en", "bob")
    assert agent.store.session(sid).title != "mine now"  # still there, not renamed
    assert agent.feedback(turn, 1, "alice rates her own", owner="alice") > 0
    assert [f.comment for f, _ in agent.store.feedback("bob")] == []
    assert "alice rates her own" in [f.comment for f, _ in agent.store.feedback("alice")]


def test_a_conversation_deleted_mid_answer_is_not_stored_again_without_its_owner(agent, accounts):
    # The chat's Delete button runs beside the answer it may cut short: the answer's turn is
    # stored only when it ends, after the session is gone, and must not bring it back ownerless.
    from ui.web import session as chat_session
    from ui.web.answer import ANY, AUTO, answer_steps

    settings = ServerSettings(accounts=True)
    state = chat_session.ChatState()
    first = "When did Carl Wilhelm Scheele discover oxygen?"
    list(answer_steps(agent, settings, state, first, AUTO, ANY, "en", "alice"))
    sid = state.session_id
    assert sid and agent.store.session(sid).owner == "alice"
    before = {s.id for s in agent.store.sessions()}
    steps = answer_steps(
        agent, settings, state, "Who else found it, then?", AUTO, ANY, "en", "alice"
    )
    next(steps)  # the question is shown
    next(steps)  # the agent is answering it, its session checked
    chat_session.delete(agent, state, "en", "alice")
    last = list(steps)[-1]
    assert last.reply is None and "was deleted" in (last.status or "")
    assert {s.id for s in agent.store.sessions()} == before - {sid}  # nothing new, sid gone
    assert all(s.owner for s in agent.store.sessions() if s.id not in before)


def test_sessions_without_an_owner_are_shown_to_no_account(agent, accounts, users):
    # Sessions stored before accounts existed (or by the command line) have owner "": with
    # accounts, no user sees or continues them, administrators included; the command line does.
    from types import SimpleNamespace

    from agent.state import SessionNotFoundError
    from ui.auth import Access
    from ui.web import session as chat_session

    http, as_ = accounts
    history = [
        {"role": "user", "content": "my old question"},
        {"role": "assistant", "content": "a"},
    ]
    legacy = agent.new_session("from before accounts", history=history)
    assert agent.store.session(legacy).owner == ""
    for name in ("admin", "alice", "bob"):
        assert legacy not in {v for _, v in chat_session.session_choices(agent, name)}
        with pytest.raises(SessionNotFoundError):
            chat_session.load_session(agent, legacy, "en", name)
        assert agent.history(legacy, name) == []
        assert _ask(http, as_(name), "And then?", session_id=legacy).status_code == 404
    assert [t.user_text for t in agent.history(legacy)] == ["my old question"]  # untouched
    assert legacy in {s.id for s in agent.sessions()}  # owner None: the command line
    # No account acts as owner "" (or None, which sees everything): names are never empty.
    access = Access(ServerSettings(accounts=True), users[0])
    for blank in ("", None):
        with pytest.raises(PermissionError):
            access.ui_principal(SimpleNamespace(username=blank))
    assert access.api_principal("Bearer ") is None and access.api_principal("") is None


def test_the_ui_principal_comes_from_the_gradio_login(agent, users):
    from types import SimpleNamespace

    from ui.auth import Access

    store, _ = users
    access = Access(ServerSettings(accounts=True), store)
    assert access.ui_principal(SimpleNamespace(username="alice")).name == "alice"
    assert access.ui_principal(SimpleNamespace(username="admin")).admin
    with pytest.raises(PermissionError):
        access.ui_principal(SimpleNamespace(username=None))
    with pytest.raises(PermissionError):
        access.ui_principal(SimpleNamespace(username="mallory"))
    http = TestClient(app(agent, store, accounts=True))
    assert http.get("/config").status_code == 401
    assert login(http, "alice", "bob-password") == 400
    assert login(http, "alice", "alice-password") == 200
    assert http.get("/config").status_code == 200


def test_only_admins_manage_knowledge_bases(agent, accounts, users):
    http, as_ = accounts
    files = [("files", ("zorblat.md", SECRET_DOC, "text/markdown"))]
    url = "/v1/knowledge_bases/secret/documents"
    assert http.post(url, headers=as_("alice"), files=files).status_code == 403
    assert http.post(url, files=files).status_code == 401
    created = http.post(url, headers=as_("admin"), files=files)
    assert created.status_code == 201, created.text
    assert http.delete(f"{url}/zorblat.md", headers=as_("bob")).status_code == 403
    users[0].set_readers("secret", ["alice"])


def test_a_restricted_knowledge_base_is_never_searched_for_another_user(agent, accounts):
    http, as_ = accounts
    question = "What does the zorblat reactor on Kepler station run on?"
    names = {m["id"] for m in http.get("/v1/models", headers=as_("bob")).json()["data"]}
    assert "secret" not in names and "education" in names
    assert "secret" in {
        m["id"] for m in http.get("/v1/models", headers=as_("alice")).json()["data"]
    }
    assert http.get("/v1/knowledge_bases/secret/documents", headers=as_("bob")).status_code == 404
    assert _ask(http, as_("bob"), question, model="secret").status_code == 404
    reply = _ask(http, as_("bob"), question).json()
    assert reply["route"]["kbs"] == ["education"]  # automatic routing chose among bob's only
    assert "secret" not in {s["kb"] for s in reply["sources"]}
    assert "secret" not in {c["kb"] for c in reply["citations"]}
    assert "helium" not in reply["answer"]
    allowed = _ask(http, as_("alice"), question, model="secret").json()
    assert "secret" in {s["kb"] for s in allowed["sources"]}
    assert "helium" in allowed["answer"]
    # The Python API keeps to the same list when given it.
    bob_kbs = ["education"]
    for event in agent.stream(question, readable=bob_kbs, owner="bob"):
        sources = getattr(event, "hits", None)
        if sources is not None:
            assert {h.kb for h in sources} <= {"education"}
    with pytest.raises(ValueError, match="no knowledge base you may read"):
        list(agent.stream(question, kbs=["secret"], readable=bob_kbs, owner="bob"))


def test_settings_refuse_shared_secrets_beside_accounts():
    with pytest.raises(ValueError, match="user accounts exist"):
        ServerSettings(accounts=True, api_token="t")
