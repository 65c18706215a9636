"""The HTTP API through the official `openai` client against a real uvicorn server on loopback.

The agent is real (e5 retrieval over the demo education kb, router, store, citation checks) except
for the LM: a ScriptedLM that quotes the first passage it is shown and cites it, so these tests
check the API's control flow quickly. tests/test_api_e2e.py runs the real SmolLM2.
"""

from __future__ import annotations

import json
import re
import threading

import httpx
import openai
import pytest

from ui.settings import ServerSettings

OXYGEN = "When did Carl Wilhelm Scheele discover oxygen?"
_PASSAGE_1 = re.compile(r'<passage n="1" title="[^"]*">\s*(.*?)\s*</passage>', re.S)


def quote_first_passage(messages) -> str:
    """An answer that copies the first sentence of passage [1] and cites it; else a greeting."""
    found = _PASSAGE_1.search(messages[0]["content"])
    if found is None:
        return "Hello."
    return re.split(r"(?<=[.!?。])\s", found.group(1))[0] + " [1]"


@pytest.fixture(scope="module")
def served(serve_education, scripted_lm):
    with serve_education(scripted_lm(respond=quote_first_passage)) as agent_and_url:
        yield agent_and_url


@pytest.fixture(scope="module")
def api_agent(served):
    """A real Agent over a private copy of the demo education kb (uploads change it)."""
    return served[0]


@pytest.fixture(scope="module")
def server(served) -> str:
    """The composed app (API + Gradio chat) served by uvicorn on a free loopback port."""
    return served[1]


@pytest.fixture
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)


def test_openapi_schema_lists_the_api(server):
    schema = httpx.get(f"{server}/openapi.json").json()
    assert {
        "/v1/chat/completions",
        "/v1/models",
        "/v1/knowledge_bases",
        "/v1/knowledge_bases/{kb}/documents",
        "/v1/knowledge_bases/{kb}/documents/{doc_id}",
    } <= set(schema["paths"])
    upload = schema["paths"]["/v1/knowledge_bases/{kb}/documents"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert httpx.get(f"{server}/docs").status_code == 200


def test_models_are_auto_and_the_knowledge_bases(client):
    models = {m.id: m for m in client.models.list().data}
    assert set(models) == {"auto", "education"}
    assert models["education"].model_extra["domain"] == "education"
    assert models["education"].model_extra["documents"] > 0


def test_completion_carries_citations_route_and_session(client, api_agent):
    reply = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": OXYGEN}]
    )
    extra = reply.model_extra
    assert reply.object == "chat.completion"
    assert "Scheele" in reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "stop"
    assert extra["citations"] and extra["citations"][0]["verified"]
    assert extra["citations"][0]["doc_id"].startswith("xq-en-12")
    assert extra["route"]["intent"] == "knowledge" and extra["route"]["kbs"] == ["education"]
    assert extra["rewritten_query"] == OXYGEN and extra["refused"] is False
    stored = api_agent.history(extra["session_id"])
    assert [t.user_text for t in stored] == [OXYGEN]
    assert stored[0].answer == reply.choices[0].message.content


def test_stream_sends_tokens_then_the_checked_reply(client):
    stream = client.chat.completions.create(
        model="education", messages=[{"role": "user", "content": OXYGEN}], stream=True
    )
    chunks = list(stream)  # the client stops at data: [DONE]
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    # The final answer is the checked one (here the marker moved before the full stop).
    assert "Scheele" in text and text[:150] == last.model_extra["answer"][:150]
    assert last.model_extra["citations"][0]["verified"]
    assert chunks[0].model_extra["session_id"] == last.model_extra["session_id"]


def test_history_in_messages_seeds_a_new_session(client, api_agent):
    history = [
        {"role": "system", "content": "ignored: citewise has its own instructions"},
        {"role": "user", "content": "Who discovered oxygen?"},
        {"role": "assistant", "content": "Carl Wilhelm Scheele and Joseph Priestley [1]."},
    ]
    reply = client.chat.completions.create(
        model="auto", messages=[*history, {"role": "user", "content": OXYGEN}]
    )
    turns = api_agent.history(reply.model_extra["session_id"])
    assert [t.user_text for t in turns] == ["Who discovered oxygen?", OXYGEN]
    assert turns[0].model == "history"


def test_session_id_continues_a_stored_session(client, api_agent):
    first = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": OXYGEN}]
    )
    sid = first.model_extra["session_id"]
    second = client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "Where did Scheele discover oxygen?"}],
        extra_body={"session_id": sid},
    )
    assert second.model_extra["session_id"] == sid
    assert len(api_agent.history(sid)) == 2
    with pytest.raises(openai.NotFoundError, match="no dialogue session"):
        client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": OXYGEN}],
            extra_headers={"X-Session-Id": "no-such-session"},
        )


def test_unknown_model_and_bad_messages_are_refused(client):
    with pytest.raises(openai.NotFoundError, match="no knowledge base named 'nope'"):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="last message must be"):
        client.chat.completions.create(
            model="auto", messages=[{"role": "assistant", "content": "hi"}]
        )
    with pytest.raises(openai.BadRequestError, match="invalid request"):
        client.chat.completions.create(model="auto", messages=[])


def test_message_too_long_is_refused(client):
    limit = ServerSettings().max_message_chars
    with pytest.raises(openai.APIStatusError, match=f"the limit is {limit}") as err:
        client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "x" * (limit + 1)}]
        )
    assert err.value.status_code == 413
    many = [{"role": "user", "content": "hi"}] * (ServerSettings().max_history_messages + 1)
    with pytest.raises(openai.APIStatusError, match="messages; the limit is") as err:
        client.chat.completions.create(model="auto", messages=many)
    assert err.value.status_code == 413


def test_concurrent_clients_get_their_own_sessions(client):
    questions = [OXYGEN, "Who coined the name oxygen?", "What is the Super Bowl?"]
    replies: dict[str, object] = {}

    def ask(q: str) -> None:
        stream = client.chat.completions.create(
            model="education", messages=[{"role": "user", "content": q}], stream=True
        )
        replies[q] = list(stream)[-1].model_extra

    threads = [threading.Thread(target=ask, args=(q,)) for q in questions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert set(replies) == set(questions)
    assert len({r["session_id"] for r in replies.values()}) == len(questions)


def test_paths_outside_the_served_files_are_not_readable(server, api_agent):
    data = api_agent.data_dir
    for path in (
        "/gradio_api/file=../../etc/passwd",
        "/gradio_api/file=/etc/passwd",
        "/file=/etc/passwd",
        f"/gradio_api/file={data}/citewise.db",
        f"/gradio_api/file={data}/dialogue.db",
        "/gradio_api/file=%2e%2e/%2e%2e/etc/passwd",
        "/static/../../../../etc/passwd",
        "/assets/..%2f..%2f..%2fetc%2fpasswd",
    ):
        response = httpx.get(f"{server}{path}")
        assert response.status_code in (403, 404), (path, response.status_code)
        assert "root:" not in response.text
    # httpx would normalize "/../.."; send the raw request line instead.
    raw = _raw_get(server, "/../../etc/passwd")
    assert raw.split()[1] in ("400", "403", "404") and "root:" not in raw
    assert httpx.get(f"{server}/monitoring").status_code in (403, 404)


def _raw_get(server: str, target: str) -> str:
    import socket

    host, port = httpx.URL(server).host, httpx.URL(server).port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        return b"".join(iter(lambda: sock.recv(65536), b"")).decode("latin-1")


def test_upload_list_delete(server, api_agent):
    base = f"{server}/v1/knowledge_bases/education/documents"
    text = (
        "The Zorblat lantern festival of Quenville is held every year on the fourteenth of March."
    )
    response = httpx.post(
        base, files=[("files", ("zorblat.md", text.encode(), "text/markdown"))], timeout=120
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["added"] == 1 and body["documents"][0]["doc_id"] == "zorblat.md"
    # Stored before the answer came back: in the kb, and the original kept outside served files.
    assert (api_agent.data_dir / "uploads" / "education" / "zorblat.md").read_text() == text
    listed = {d["doc_id"]: d for d in httpx.get(base).json()["data"]}
    assert listed["zorblat.md"]["n_chunks"] >= 1

    ask = {"model": "education", "messages": [{"role": "user", "content": "When is Zorblat?"}]}
    reply = httpx.post(f"{server}/v1/chat/completions", json=ask, timeout=120).json()
    assert reply["citations"][0]["doc_id"] == "zorblat.md"

    assert httpx.delete(f"{base}/zorblat.md").json()["deleted"] is True
    assert "zorblat.md" not in {d["doc_id"] for d in httpx.get(base).json()["data"]}
    reply = httpx.post(f"{server}/v1/chat/completions", json=ask, timeout=120).json()
    assert all(c["doc_id"] != "zorblat.md" for c in reply["citations"])
    assert all(s["doc_id"] != "zorblat.md" for s in reply["sources"])
    assert httpx.delete(f"{base}/zorblat.md").status_code == 404


# --- settings variants, served in-process --------------------------------------------------------


def _client(agent, **settings):
    from fastapi.testclient import TestClient

    from ui.server import create_app

    return TestClient(create_app(agent, ServerSettings(**settings)))


def test_bearer_token_is_required_when_set(api_agent):
    http = _client(api_agent, api_token="s3cret")
    missing = http.get("/v1/models")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "api-token" in missing.json()["error"]["message"]
    assert http.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert http.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    client = openai.OpenAI(base_url="http://testserver/v1", api_key="wrong", http_client=http)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_rate_limit_answers_429_with_retry_after(api_agent):
    http = _client(api_agent, rate_limit_per_minute=3)
    codes = [http.get("/v1/models").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = http.get("/v1/models")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize(
    ("settings", "files", "status", "message"),
    [
        ({"max_upload_mb": 0.001}, [("big.txt", b"word " * 400)], 413, "limit is 0.001 MB"),
        ({"max_upload_files": 2}, [(f"f{i}.txt", b"some text") for i in range(3)], 413, "2 files"),
        ({}, [("tool.exe", b"MZ binary")], 415, "type .exe is not accepted"),
        ({}, [("../../escape.txt", b"text")], 201, ""),
    ],
    ids=["size", "count", "type", "name-with-path"],
)
def test_upload_limits(api_agent, settings, files, status, message):
    http = _client(api_agent, **settings)
    before = {d.doc_id for d in api_agent.library.documents("education")}
    response = http.post(
        "/v1/knowledge_bases/education/documents",
        files=[("files", (name, data, "text/plain")) for name, data in files],
    )
    assert response.status_code == status, response.text
    if status != 201:
        assert message in response.json()["error"]["message"]
        assert {d.doc_id for d in api_agent.library.documents("education")} == before
        return
    # A path in the file name is dropped: the file lands in the kb's upload folder only.
    assert response.json()["documents"][0]["doc_id"] == "escape.txt"
    assert (api_agent.data_dir / "uploads" / "education" / "escape.txt").is_file()
    assert not (api_agent.data_dir / "escape.txt").exists()
    assert http.delete("/v1/knowledge_bases/education/documents/escape.txt").status_code == 200


def test_upload_of_unreadable_file_is_refused(api_agent):
    http = _client(api_agent)
    response = http.post(
        "/v1/knowledge_bases/education/documents",
        files=[("files", ("blank.txt", b"   \n  ", "text/plain"))],
    )
    assert response.status_code == 422
    assert "blank.txt: empty file" in json.dumps(response.json())
    assert not (api_agent.data_dir / "uploads" / "education" / "blank.txt").exists()


@pytest.mark.parametrize(
    ("part", "error"),
    [
        ("library", "store milvus://db:19530: Milvus did not answer search (gone); check it"),
        ("store", "PostgreSQL at postgresql://db/c did not answer (gone); nothing was saved"),
    ],
)
def test_a_store_that_stops_answering_is_a_503_naming_it(api_agent, monkeypatch, part, error):
    # The real failures are forced in tests/test_milvus_server.py and tests/test_state_pg.py;
    # here only the mapping of their errors to HTTP is the point.
    from agent.state import DialogueStoreError
    from retrieval.errors import RetrievalError

    def fail(*args, **kwargs):
        raise (RetrievalError if part == "library" else DialogueStoreError)(error)

    target = api_agent.library if part == "library" else api_agent.store
    monkeypatch.setattr(target, "dense_search" if part == "library" else "append_turn", fail)
    http = _client(api_agent)
    question = {"model": "education", "messages": [{"role": "user", "content": OXYGEN}]}
    answer = http.post("/v1/chat/completions", json=question)
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["message"] == error
