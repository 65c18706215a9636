"""The HTTP API end to end with the real SmolLM2: the `openai` client against a served app, and the
`citewise ui` command itself as a user starts it."""

from __future__ import annotations

import json
import shutil

import httpx
import openai
import pytest
from cli_run import serving_ui

pytestmark = pytest.mark.slow

OXYGEN = "When did Carl Wilhelm Scheele discover oxygen?"
ZORBLAT = (
    "The Zorblat lantern festival of Quenville is held every year on the fourteenth of March. "
    "Families float paper lanterns on the Quen river at dusk."
)


@pytest.fixture(scope="module")
def server(serve_education, smollm2):
    """The real Agent with the shared SmolLM2, served with the API and the chat."""
    with serve_education(smollm2, time_limit_s=300) as (_, url):
        yield url


@pytest.fixture
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0, timeout=600)


def test_openai_client_stream_and_non_stream(client):
    reply = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": OXYGEN}]
    )
    extra = reply.model_extra
    assert reply.choices[0].message.content.strip()
    assert extra["route"]["kbs"] == ["education"] and not extra["refused"]
    assert any(c["doc_id"].startswith("xq-en-12") for c in extra["citations"])

    stream = client.chat.completions.create(
        model="education",
        messages=[{"role": "user", "content": "Who coined the name oxygen?"}],
        stream=True,
    )
    chunks = list(stream)
    tokens = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert len(tokens) > 3  # streamed piece by piece, not in one block
    last = chunks[-1].model_extra
    assert last["session_id"] == chunks[0].model_extra["session_id"] != extra["session_id"]
    assert last["answer"] and last["sources"]


def test_upload_ask_delete_with_the_real_model(client, server):
    base = f"{server}/v1/knowledge_bases/education/documents"
    uploaded = httpx.post(
        base, files=[("files", ("zorblat.txt", ZORBLAT.encode(), "text/plain"))], timeout=300
    )
    assert uploaded.status_code == 201, uploaded.text
    question = [{"role": "user", "content": "When is the Zorblat lantern festival held?"}]

    reply = client.chat.completions.create(model="education", messages=question)
    cited = {c["doc_id"] for c in reply.model_extra["citations"]}
    assert "zorblat.txt" in cited, reply.model_extra
    assert "March" in reply.choices[0].message.content

    assert httpx.delete(f"{base}/zorblat.txt").status_code == 200
    reply = client.chat.completions.create(model="education", messages=question)
    assert "zorblat.txt" not in {c["doc_id"] for c in reply.model_extra["citations"]}
    assert "zorblat.txt" not in {s["doc_id"] for s in reply.model_extra["sources"]}


def test_citewise_ui_command_serves_chat_and_api(education_data_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(education_data_dir, data)
    config = tmp_path / "agent.json"
    config.write_text(json.dumps({"device": "cpu", "max_new_tokens": 24}), encoding="utf-8")
    argv = ["--data-dir", str(data), "ui", "--api-token", "tok", "--config", str(config)]
    log = tmp_path / "ui.log"
    with serving_ui(argv, log) as url:
        assert httpx.get(f"{url}/").status_code == 200  # the chat page
        assert httpx.get(f"{url}/v1/models").status_code == 401
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="tok", max_retries=0, timeout=600)
        assert "education" in {m.id for m in client.models.list().data}
        reply = client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": OXYGEN}]
        )
        assert reply.model_extra["citations"] and reply.model_extra["session_id"]
        assert reply.usage is not None and reply.usage.completion_tokens <= 24
    assert f"serving on {url}" in log.read_text()
