"""Hostile and careless input against the server (issue 11): nothing stored is lost, nothing
answers 500, and the limits hold when a client tries to walk around them.

A real Agent over a private copy of the demo education kb (e5 retrieval, router, store, citation
checks) with a ScriptedLM, so no probe waits on a model. Probes that depend on the HTTP framing
(chunked bodies, kept-alive connections, forwarded headers) go through uvicorn on loopback;
the rest through FastAPI's in-process TestClient. tests/test_security_auth.py has the login and
user probes, tests/test_security_fuzz.py the generated requests.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from ui.settings import ServerSettings

UPLOAD = "/v1/knowledge_bases/{kb}/documents"


@pytest.fixture(scope="module")
def agent(education_data_dir, tmp_path_factory, scripted_lm):
    from agent import Agent
    from agent.config import AgentConfig

    data = tmp_path_factory.mktemp("security") / "data"
    shutil.copytree(education_data_dir, data)
    agent = Agent(
        AgentConfig.load(data_dir=str(data), device="cpu", max_new_tokens=16),
        lm=scripted_lm(respond=lambda messages: "Hello."),
    )
    yield agent
    agent.close()


def client(agent, **settings) -> TestClient:
    from ui.server import create_app

    return TestClient(create_app(agent, ServerSettings(**settings)))


@contextmanager
def served(agent, **settings) -> Iterator[str]:
    from ui.server import background_server, create_app

    with background_server(create_app(agent, ServerSettings(**settings))) as url:
        yield url


def upload(http, kb: str, *files: tuple[str, bytes]) -> httpx.Response:
    return http.post(
        UPLOAD.format(kb=kb), files=[("files", (n, data, "text/plain")) for n, data in files]
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# --- finding 1: uploads that escaped their folder, and clean-up that deleted what it found ----


@pytest.mark.parametrize("kb", ["%2e%2e", "..", "%2E%2E", ".", "a%2F..%2F.."])
def test_dotdot_knowledge_base_upload_keeps_the_file_it_names(agent, kb):
    victim = agent.data_dir / "notes.md"
    victim.write_text("my own notes, not an upload\n", encoding="utf-8")
    before = snapshot(agent.data_dir)
    response = upload(client(agent), kb, ("notes.md", b"# overwritten\n\nattacker text"))
    assert 400 <= response.status_code < 500, response.text
    assert victim.read_text(encoding="utf-8") == "my own notes, not an upload\n"
    assert snapshot(agent.data_dir) == before  # not even an empty folder was left behind


def test_failed_upload_never_deletes_a_file_it_did_not_create(agent):
    http = client(agent)
    folder = agent.data_dir / "uploads" / "education"
    folder.mkdir(parents=True, exist_ok=True)
    kept = folder / "kept.md"
    kept.write_bytes(b"# Kept\n\nplaced here by hand, not uploaded")
    response = upload(http, "education", ("kept.md", b"   \n "))  # unreadable: empty
    assert response.status_code == 422
    assert kept.read_bytes() == b"# Kept\n\nplaced here by hand, not uploaded"
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_failed_reupload_keeps_the_stored_copy_and_the_document(agent):
    http = client(agent)
    good = b"# Reupload\n\nThe reupload probe has a stored copy worth keeping."
    assert upload(http, "education", ("reupload.md", good)).status_code == 201
    stored = agent.data_dir / "uploads" / "education" / "reupload.md"
    assert stored.read_bytes() == good
    again = upload(http, "education", ("reupload.md", b"\x00\x01\x02 binary"))
    assert again.status_code == 422, again.text
    assert stored.read_bytes() == good
    docs = {d.doc_id for d in agent.library.documents("education")}
    assert "reupload.md" in docs
    assert http.delete(UPLOAD.format(kb="education") + "/reupload.md").status_code == 200
    assert not stored.exists()


def test_upload_is_stored_only_after_it_was_ingested(agent):
    http = client(agent)
    response = upload(
        http, "education", ("fine.md", b"# Fine\n\nReadable."), ("bad.md", b"\x00\x00\x00")
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert [d["doc_id"] for d in body["documents"]] == ["fine.md"]
    assert [s["file"] for s in body["skipped"]] == ["bad.md"]
    folder = agent.data_dir / "uploads" / "education"
    assert (folder / "fine.md").is_file() and not (folder / "bad.md").exists()
    source = {d.doc_id: d.source for d in agent.library.documents("education")}["fine.md"]
    assert Path(source) == folder / "fine.md"  # not the staging folder it was read from
    assert http.delete(UPLOAD.format(kb="education") + "/fine.md").status_code == 200


# --- finding 2: input that used to end in a 500 -------------------------------------------------


def _raw_chat(http, body: str) -> httpx.Response:
    return http.post(
        "/v1/chat/completions",
        content=body.encode("ascii"),
        headers={"content-type": "application/json"},
    )


@pytest.mark.parametrize(
    "body",
    [
        '{"model": "auto", "messages": [{"role": "user", "content": "\\ud800"}]}',
        '{"model": "auto", "messages": [{"role": "user", "content": "why \\udfff?"}]}',
        '{"messages": [{"role": "user", "content": "hi"}], "session_id": "\\ud800"}',
        '{"model": "\\ud800", "messages": [{"role": "user", "content": "hi"}]}',
        '{"messages": [{"role": "user", "content": "a\\ud800"}, {"role": "assistant", '
        '"content": "b"}, {"role": "user", "content": "c"}]}',
    ],
    ids=["message", "message-low", "session-id", "model", "history"],
)
def test_lone_surrogates_are_a_clear_4xx(agent, body):
    sessions = len(agent.sessions())
    response = _raw_chat(client(agent), body)
    assert response.status_code in (400, 404, 422), response.text
    message = response.json()["error"]["message"]
    assert "Traceback" not in message and "surrogate" in message
    assert len(agent.sessions()) == sessions  # nothing was stored


def test_lone_surrogates_in_the_python_api_are_a_value_error(agent):
    from agent.state import SessionNotFoundError

    with pytest.raises(ValueError, match="surrogate"):
        agent.ask("\ud800")
    with pytest.raises(SessionNotFoundError):
        agent.ask("hello", "\ud800")
    with pytest.raises(ValueError, match="surrogate"):
        agent.new_session("t", history=[{"role": "user", "content": "\udc00"}])
    assert agent.history("\ud800") == []
    assert agent.delete_session("\ud800") is False


def multipart(name: bytes, data: bytes, boundary: str = "cwboundary") -> bytes:
    """A one-file multipart body with the file name sent as raw bytes (httpx would escape it)."""
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="'.encode()
        + name
        + b'"\r\nContent-Type: text/plain\r\n\r\n'
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )


@pytest.mark.parametrize(
    "name",
    [
        b"a" * 296 + b".txt",
        "é".encode() * 120 + b".md",
        b"bad\x00name.md",
        b"esc\x1b[31m.md",
        b"..",
        b"  .md",
    ],
    ids=["300-chars", "240-bytes", "nul", "escape", "dotdot", "blank"],
)
def test_unstorable_file_names_are_a_clear_4xx(agent, name):
    before = snapshot(agent.data_dir)
    response = client(agent).post(
        UPLOAD.format(kb="education"),
        content=multipart(name, b"# Title\n\ntext"),
        headers={"content-type": "multipart/form-data; boundary=cwboundary"},
    )
    assert response.status_code == 400, response.text
    assert "name" in response.json()["error"]["message"]
    assert snapshot(agent.data_dir) == before


def test_unstorable_names_given_to_ingest_uploads_are_refused_before_the_disk(agent):
    from agent.uploads import UploadRejected

    before = snapshot(agent.data_dir)
    for kb, name in [("education", "\ud800.md"), ("..", "ok.md"), ("\ud800", "ok.md")]:
        with pytest.raises(UploadRejected) as refused:
            agent.add_files(kb, [(name, io.BytesIO(b"text"))])
        assert refused.value.status == 400
    assert snapshot(agent.data_dir) == before


def test_long_file_name_leaves_the_kept_alive_connection_usable(agent):
    with served(agent) as url, httpx.Client(base_url=url) as http:
        response = upload(http, "education", ("a" * 296 + ".txt", b"some text"))
        assert response.status_code == 400 and "too long" in response.json()["error"]["message"]
        again = http.get("/v1/models")  # same connection pool: the connection was not reset
        assert again.status_code == 200


# --- finding 3: limits that could be walked around -----------------------------------------------


def test_chunked_upload_is_cut_off_at_the_limit(agent):
    sent = 0
    boundary = "cwboundary"
    total_mb = 64

    def body() -> Iterator[bytes]:
        nonlocal sent
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            'filename="huge.txt"\r\nContent-Type: text/plain\r\n\r\n'
        ).encode()
        yield head
        block = b"word " * (1024 * 1024 // 5)
        for _ in range(total_mb):
            sent += len(block)
            yield block
        yield f"\r\n--{boundary}--\r\n".encode()

    before = snapshot(agent.data_dir)
    with served(agent, max_upload_mb=1, max_upload_files=2) as url:
        try:
            response = httpx.post(
                f"{url}{UPLOAD.format(kb='education')}",
                content=body(),
                headers={"content-type": f"multipart/form-data; boundary={boundary}"},
                timeout=60,
            )
            assert response.status_code == 413, response.text
            assert "limit" in response.json()["error"]["message"]
            assert response.request.headers.get("transfer-encoding") == "chunked"
        except httpx.HTTPError:
            pass  # the server may close the connection while the client is still sending
    # The server stopped reading past its ~2 MB limit: the client could not push more than the
    # socket buffers hold beyond it, nowhere near the whole body (the old server read it all).
    assert sent < total_mb * 1024 * 1024 / 2, sent
    assert snapshot(agent.data_dir) == before


def test_chunked_upload_under_the_limit_still_works(agent):
    boundary = "cwboundary"

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            'filename="chunked.md"\r\nContent-Type: text/plain\r\n\r\n'
            "# Chunked\n\nSent without a Content-Length."
            f"\r\n--{boundary}--\r\n"
        ).encode()

    with served(agent, max_upload_mb=1) as url:
        response = httpx.post(
            f"{url}{UPLOAD.format(kb='education')}",
            content=body(),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        assert response.status_code == 201, response.text
        assert httpx.delete(f"{url}{UPLOAD.format(kb='education')}/chunked.md").status_code == 200


def _docx(text: str, paragraphs: int = 1) -> bytes:
    import docx

    document = docx.Document()
    for _ in range(paragraphs):
        document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_docx_text_bomb_is_refused_naming_the_limit(agent):
    bomb = _docx("lorem ipsum dolor sit amet " * 4000, paragraphs=30)  # 3.2 M characters
    assert len(bomb) < 100_000
    before = snapshot(agent.data_dir)
    response = client(agent, max_upload_chars=200_000).post(
        UPLOAD.format(kb="education"),
        files=[("files", ("bomb.docx", bomb, "application/octet-stream"))],
    )
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert "bomb.docx" in message and "200,000 characters" in message
    assert snapshot(agent.data_dir) == before


def test_loaders_bound_the_extracted_text(tmp_path):
    from retrieval.loaders import Skipped, load_paths

    (tmp_path / "big.docx").write_bytes(_docx("x" * 5000, paragraphs=10))
    (tmp_path / "big.txt").write_text("y " * 30_000, encoding="utf-8")
    (tmp_path / "lines.jsonl").write_text(
        json.dumps({"id": "long", "text": "z" * 20_000})
        + "\n"
        + json.dumps({"id": "short", "text": "fine"})
        + "\n",
        encoding="utf-8",
    )
    items = list(load_paths([tmp_path], max_chars=10_000))
    skipped = {
        Path(i.path).name + (i.reason[:11] if "corpus" in i.reason else ""): i.reason
        for i in items
        if isinstance(i, Skipped)
    }
    assert {k for k in skipped} == {"big.docx", "big.txt", "lines.jsonlcorpus line"}
    assert all("10,000 characters" in r for r in skipped.values())
    assert [i.id for i in items if not isinstance(i, Skipped)] == ["short"]


def test_forwarded_for_does_not_dodge_the_rate_limit(agent):
    with served(agent, rate_limit_per_minute=3) as url:
        codes = [
            httpx.get(f"{url}/v1/models", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
            for i in range(6)
        ]
    assert codes[:3] == [200, 200, 200] and set(codes[3:]) == {429}


def test_forwarded_for_counts_from_a_trusted_proxy(agent):
    with served(agent, rate_limit_per_minute=2, trusted_proxies=("127.0.0.1",)) as url:
        spread = [
            httpx.get(f"{url}/v1/models", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
            for i in range(4)
        ]
        same = [
            httpx.get(f"{url}/v1/models", headers={"X-Forwarded-For": "198.51.100.7"}).status_code
            for _ in range(3)
        ]
    assert spread == [200, 200, 200, 200]  # each client behind the proxy has its own budget
    assert same == [200, 200, 429]


def test_trusted_proxies_must_be_addresses():
    with pytest.raises(ValueError, match="not an IP address"):
        ServerSettings(trusted_proxies=("proxy.example",))


# --- finding 6: a long history never overflows the model's window ----------------------------


def test_prompt_budget_drops_old_history_to_fit_the_window(make_manager, scripted_lm):
    from agent.prompt_budget import PER_MESSAGE_TOKENS, PromptTooLongError
    from agent.state import TurnRecord

    window = 900  # a small window, counted in words (ScriptedLM.count_tokens)
    lm = scripted_lm(respond=lambda messages: "Scheele discovered oxygen. [1]")
    lm.max_positions = window
    manager = make_manager(lm, context_tokens=200)
    sid = manager.store.create_session("long")
    for i in range(3):
        long = f"question {i} " + "word " * 250
        manager.store.append_turn(sid, TurnRecord(user_text=long, answer="answer " * 100))
    events = list(manager.turn(sid, "When did Carl Wilhelm Scheele discover oxygen?"))
    assert events[-1].reply.answer
    assert lm.calls, "the model was asked"
    for call in lm.calls:
        size = sum(lm.count_tokens(m["content"]) + PER_MESSAGE_TOKENS for m in call)
        assert size <= window - 48
    answer_call = lm.calls[-1]
    assert answer_call[0]["role"] == "system" and answer_call[-1]["role"] == "user"
    assert len(answer_call) < 2 + 6  # some of the 6 history messages were left out
    asked = len(lm.calls)
    with pytest.raises(PromptTooLongError, match="shorten the message"):
        list(manager.turn(sid, "oxygen " * 1000))
    assert len(lm.calls) == asked  # refused before the model read anything
