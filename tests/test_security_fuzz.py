"""Generated bad requests against the whole app in-process (issue 11): at least 2,000 of them,
none answered with a 5xx or a traceback, and the data directory afterwards byte-identical except
for what the requests that succeeded wrote.

hypothesis draws chat bodies (wrong shapes and types, lone surrogates, huge and empty texts,
unknown sessions and models), uploads (hostile knowledge-base and file names, junk bytes, wrong
domains), deletes, and arbitrary methods and paths under /v1, Gradio's routes and the files it
serves, with junk headers. The agent is real (e5 retrieval, router, store) with a ScriptedLM.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ui.settings import ServerSettings

pytestmark = pytest.mark.slow  # about 2,400 requests: a few minutes on 2 cores

# CITEWISE_FUZZ_SCALE=0.1 for a quick look; the issue asks for 2,000 requests or more.
SCALE = float(os.environ.get("CITEWISE_FUZZ_SCALE", "1"))
EXAMPLES = {
    k: max(1, int(v * SCALE))
    for k, v in {
        "chat": 900,
        "upload": 500,
        "delete": 250,
        "paths": 700,
        "headers": 600,
        "accounts": 400,
    }.items()
}


class Ledger:
    """Every request sent, with what the successful ones may have written."""

    def __init__(self) -> None:
        self.requests = 0
        self.server_errors: list[str] = []
        self.sessions: set[str] = set()  # created or continued by a 2xx answer
        self.uploads: set[tuple[str, str]] = set()  # (kb, file) stored by a 201
        self.deleted: set[tuple[str, str]] = set()  # (kb, doc_id) deleted by a 200

    def record(self, response: httpx.Response, what: str) -> None:
        self.requests += 1
        text = response.text
        if response.status_code >= 500 or "Traceback (most recent call last)" in text:
            self.server_errors.append(f"{response.status_code} {what}: {text[:300]}")


@pytest.fixture(scope="module")
def fuzz(education_data_dir, tmp_path_factory, scripted_lm):
    from agent import Agent
    from agent.config import AgentConfig
    from ui.server import create_app

    data = tmp_path_factory.mktemp("fuzz") / "data"
    shutil.copytree(education_data_dir, data)
    agent = Agent(
        AgentConfig.load(data_dir=str(data), device="cpu", max_new_tokens=8),
        lm=scripted_lm(respond=lambda messages: "Hello."),
    )
    (data / "notes.md").write_text("a file at the top of the data directory\n")
    from ui.users import UserStore

    users = UserStore.for_data_dir(data)
    users.add("alice", "alice-password")
    users.add("root", "root-password", admin=True)
    users.set_readers("fuzzkb", ["root"])  # the kb the good uploads create: hidden from alice
    TOKENS.update({name: users.add_token(name)[1] for name in ("alice", "root")})
    before = _snapshot(data)
    limits: dict[str, Any] = {
        "rate_limit_per_minute": 10**9,
        "max_upload_mb": 0.05,
        "max_upload_files": 3,
    }
    ledger = Ledger()
    open_app = create_app(agent, ServerSettings(**limits))
    accounts_app = create_app(agent, ServerSettings(accounts=True, **limits), users)
    with (
        TestClient(open_app, raise_server_exceptions=False) as http,
        TestClient(accounts_app, raise_server_exceptions=False) as accounts,
    ):
        ACCOUNTS.append(accounts)
        yield http, ledger, agent, before
    users.close()
    agent.close()


TOKENS: dict[str, str] = {}
ACCOUNTS: list[TestClient] = []  # the same agent served with user accounts


def _snapshot(folder: Path) -> dict[str, object]:
    """Files by relative path: bytes, or for SQLite databases their rows (WAL files and the
    shared-memory index change on reads and are left out)."""
    out: dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if not path.is_file() or rel.endswith(("-wal", "-shm", "-journal")):
            continue
        if path.suffix == ".db":
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            out[rel] = {
                table: sorted(map(repr, db.execute(f'SELECT * FROM "{table}"')))
                for (table,) in db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '%fts%'"
                )
            }
            db.close()
        else:
            out[rel] = path.read_bytes()
    return out


# --- strategies ---------------------------------------------------------------------------------

# Text with everything hostile in reach: lone surrogates, NUL and control characters, RTL marks,
# CJK, emoji, path pieces.
hostile_text = st.one_of(
    st.text(st.characters(codec=None, exclude_categories=()), max_size=40),
    st.sampled_from(
        ["", " ", "\ud800", "a\udfffb", "..", "../..", "%2e%2e", "\x00", "CON", "a" * 300,
         "x" * 4001, "\u202e", "ﾟ", "😀" * 10, "auto", "education", "nope", "null"]
    ),
)  # fmt: skip
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), hostile_text)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(hostile_text, inner, max_size=4)
    ),
    max_leaves=12,
)
roles = st.one_of(st.sampled_from(["user", "assistant", "system", "developer", "tool"]), json_value)
message = st.fixed_dictionaries(
    {},
    optional={
        "role": roles,
        "content": st.one_of(
            hostile_text,
            json_value,
            st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": hostile_text})),
        ),
    },
)
chat_body = st.one_of(
    json_value,
    st.fixed_dictionaries(
        {},
        optional={
            "model": st.one_of(hostile_text, json_value),
            "messages": st.one_of(st.lists(message, max_size=5), json_value),
            "stream": st.one_of(st.booleans(), json_value),
            "session_id": st.one_of(hostile_text, json_value),
            "temperature": json_value,
        },
    ),
)


# One request in ten is a good one, so that what successful requests write is exercised too.
good_chat = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["auto", "education"]),
        "messages": st.lists(
            st.fixed_dictionaries(
                {"role": st.just("user"), "content": st.text("abc xyz?中文", min_size=1)}
            ),
            min_size=1,
            max_size=2,
        ),
    }
)


def one_in_ten(good: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    return st.integers(0, 9).flatmap(lambda i: good if i == 0 else bad)


def _encode(body: object) -> bytes:
    # ensure_ascii: a lone surrogate travels as its JSON escape, as a hostile client sends it.
    return json.dumps(body, ensure_ascii=True, allow_nan=True).encode("ascii")


def _path_part(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


# --- the probes -----------------------------------------------------------------------------------


@settings(
    max_examples=EXAMPLES["chat"],
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
@given(
    body=one_in_ten(
        good_chat.map(_encode), st.one_of(chat_body.map(_encode), st.binary(max_size=200))
    ),
    session_header=st.one_of(st.none(), st.text(st.characters(max_codepoint=255), max_size=40)),
    content_type=st.sampled_from(["application/json", "text/plain", "multipart/form-data", ""]),
)
def test_fuzz_chat_completions(fuzz, body, session_header, content_type):
    http, ledger, _, _ = fuzz
    headers = {"content-type": content_type}
    if session_header is not None:
        headers["x-session-id"] = session_header.strip() or "x"
    try:
        response = http.post("/v1/chat/completions", content=body, headers=headers)
    except (httpx.LocalProtocolError, UnicodeEncodeError):
        return  # the client itself refused to send it
    ledger.record(response, f"chat {body[:120]!r}")
    if response.status_code < 300:
        sid = response.headers.get("x-session-id") or response.json().get("session_id")
        ledger.sessions.add(sid)


@settings(
    max_examples=EXAMPLES["upload"],
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
@given(
    upload=one_in_ten(
        st.tuples(
            st.just("fuzzkb"),
            st.lists(
                st.tuples(
                    st.sampled_from(["ok.md", "ok.txt", "notes.md"]),
                    st.sampled_from([b"# Fuzz\n\nA readable note.", b"Plain text here."]),
                ),
                min_size=1,
                max_size=1,
            ),
            st.none(),
        ),
        st.tuples(
            hostile_text,
            st.lists(
                st.tuples(
                    st.one_of(
                        hostile_text, st.sampled_from(["notes.md", "a.txt", "x.exe", "b.docx"])
                    ),
                    st.one_of(
                        st.binary(max_size=300),
                        st.sampled_from(
                            [b"# Title\n\nSome text.", b"", b"\x00\x01", b"PK\x03\x04"]
                        ),
                    ),
                ),
                max_size=4,
            ),
            st.one_of(st.none(), hostile_text, st.sampled_from(["legal", "general"])),
        ),
    )
)
def test_fuzz_uploads(fuzz, upload):
    kb, files, domain = upload
    http, ledger, _, _ = fuzz
    data = {} if domain is None else {"domain": domain}
    parts = [("files", (name, content, "application/octet-stream")) for name, content in files]
    try:
        response = http.post(
            f"/v1/knowledge_bases/{_path_part(kb)}/documents", files=parts or None, data=data
        )
    except (httpx.LocalProtocolError, UnicodeEncodeError, ValueError):
        return
    ledger.record(response, f"upload kb={kb!r} files={[n for n, _ in files]!r}")
    if response.status_code == 201:
        for doc in response.json()["documents"]:
            ledger.uploads.add((kb, doc["doc_id"]))


@settings(
    max_examples=EXAMPLES["delete"],
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
@given(kb=hostile_text, doc=st.one_of(hostile_text, st.just("../notes.md")))
def test_fuzz_deletes(fuzz, kb, doc):
    http, ledger, _, _ = fuzz
    kb_part = _path_part(kb) or "x"
    response = http.delete(f"/v1/knowledge_bases/{kb_part}/documents/{_path_part(doc) or 'y'}")
    ledger.record(response, f"delete {kb!r}/{doc!r}")
    if response.status_code < 300:
        ledger.deleted.add((kb, doc))


@settings(
    max_examples=EXAMPLES["paths"],
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
    prefix=st.sampled_from(
        ["/v1/", "/v1/knowledge_bases/", "/gradio_api/", "/gradio_api/file=", "/file=",
         "/gradio_api/queue/", "/", "/login", "/gradio_api/upload", "/config", "/docs/"]
    ),
    rest=st.lists(hostile_text, max_size=3),
    body=st.one_of(st.none(), st.binary(max_size=100), chat_body.map(_encode)),
)  # fmt: skip
def test_fuzz_paths(fuzz, method, prefix, rest, body):
    http, ledger, _, _ = fuzz
    path = prefix + "/".join(_path_part(r) for r in rest)
    if method in ("GET", "HEAD") or (method == "DELETE" and body is None):
        body = None
    try:
        response = http.request(method, path, content=body)
    except (httpx.LocalProtocolError, httpx.InvalidURL, UnicodeEncodeError):
        return
    ledger.record(response, f"{method} {path} {body!r:.80}")
    if method == "DELETE" and response.status_code < 300:
        ledger.deleted.add((path, ""))
    if response.status_code < 300 and path.startswith("/v1/chat"):
        ledger.sessions.add(response.headers.get("x-session-id", ""))


@settings(
    max_examples=EXAMPLES["headers"],
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
@given(
    name=st.sampled_from(
        ["authorization", "x-forwarded-for", "content-type", "accept-language", "cookie",
         "x-session-id", "range", "host", "accept-encoding"]
    ),
    value=st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=200),
    path=st.sampled_from(
        ["/v1/models", "/v1/knowledge_bases", "/v1/knowledge_bases/education/documents", "/",
         "/config", "/gradio_api/info"]
    ),
)  # fmt: skip
def test_fuzz_headers(fuzz, name, value, path):
    http, ledger, _, _ = fuzz
    try:
        response = http.get(path, headers={name: value})
    except (httpx.LocalProtocolError, UnicodeEncodeError, ValueError):
        return
    ledger.record(response, f"GET {path} {name}: {value!r:.80}")


@settings(
    max_examples=EXAMPLES["accounts"],
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
@given(
    who=st.sampled_from(["alice", "root", "junk", "none", "cw_guess"]),
    route=st.sampled_from(["chat", "continue", "models", "docs", "upload", "delete"]),
    body=one_in_ten(good_chat, chat_body),
    data=st.data(),
)
def test_fuzz_with_accounts(fuzz, who, route, body, data):
    _, ledger, agent, _ = fuzz
    http = ACCOUNTS[0]
    headers = {"authorization": f"Bearer {TOKENS.get(who, who)}"} if who != "none" else {}
    kb = data.draw(st.one_of(st.sampled_from(["education", "fuzzkb", "nope"]), hostile_text))
    others = sorted(s.id for s in agent.sessions() if s.owner != who)
    try:
        if route in ("chat", "continue"):
            if route == "continue" and others and isinstance(body, dict):
                body = {**body, "session_id": data.draw(st.sampled_from(others))}
            response = http.post("/v1/chat/completions", content=_encode(body), headers=headers)
        elif route == "models":
            response = http.get("/v1/models", headers=headers)
        elif route == "docs":
            response = http.get(f"/v1/knowledge_bases/{_path_part(kb)}/documents", headers=headers)
        elif route == "upload":
            files = [("files", ("acct.md", b"# Accounts\n\nA note.", "text/markdown"))]
            url = f"/v1/knowledge_bases/{_path_part(kb) or 'x'}/documents"
            response = http.post(url, headers=headers, files=files)
        else:
            url = f"/v1/knowledge_bases/{_path_part(kb) or 'x'}/documents/acct.md"
            response = http.delete(url, headers=headers)
    except (httpx.LocalProtocolError, UnicodeEncodeError):
        return
    ledger.record(response, f"accounts {who} {route} kb={kb!r} {body!r:.80}")
    ok = response.status_code < 300
    if who not in ("alice", "root"):
        # 401, or 404/405 for a path no route matches (hostile kb names), never an answer
        assert response.status_code in (401, 404, 405), (who, route, response.status_code)
    if route == "continue" and isinstance(body, dict) and body.get("session_id") in others:
        assert response.status_code in (400, 401, 404, 413), response.text  # never theirs
    if who == "alice" and route in ("upload", "delete"):
        assert not ok, response.text  # only administrators change knowledge bases
    if who == "alice" and kb == "fuzzkb":
        assert not ok or route in ("chat", "continue", "models"), response.text
    if ok and route in ("chat", "continue"):
        ledger.sessions.add(response.json()["session_id"])
    if ok and route == "upload":
        ledger.uploads.add((kb, "acct.md"))
    if ok and route == "delete":
        ledger.deleted.add((kb, "acct.md"))
    if ok and route == "models" and who == "alice":
        assert "fuzzkb" not in {m["id"] for m in response.json()["data"]}


def test_fuzz_made_no_server_errors_and_changed_only_what_succeeded(fuzz):
    _, ledger, agent, before = fuzz
    assert ledger.requests >= 2000 * min(1.0, SCALE), ledger.requests
    assert ledger.sessions and ledger.uploads, "the good requests did not get through"
    assert ledger.server_errors == [], ledger.server_errors[:10]
    agent.store.close()  # its WAL into the file, so the rows are readable from outside
    agent.library.close()
    after = _snapshot(agent.data_dir)
    print(f"fuzz: {ledger.requests} requests, 0 server errors, {len(ledger.sessions)} sessions, "
          f"{len(ledger.uploads)} uploads, {len(ledger.deleted)} deletes succeeded")  # fmt: skip
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    wrote_kb = bool(ledger.uploads or ledger.deleted)
    for rel in changed:
        if rel == "dialogue.db":
            continue  # checked row by row below
        if rel.startswith(("indexes/", "citewise.db")) and wrote_kb:
            continue
        if rel.startswith("uploads/") and any(rel.endswith("/" + f) for _, f in ledger.uploads):
            continue
        pytest.fail(f"{rel} changed, but no successful request wrote it")
    assert after["notes.md"] == before["notes.md"]
    old, new = before.get("dialogue.db"), after.get("dialogue.db")
    if old != new:
        assert isinstance(old, dict) and isinstance(new, dict)
        for table in ("sessions", "turns"):
            added = set(new[table]) - set(old[table])
            assert not set(old[table]) - set(new[table]) or table == "sessions"
            for row in added:
                assert any(sid and sid in row for sid in ledger.sessions), row
