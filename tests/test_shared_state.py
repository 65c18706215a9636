"""Two `citewise ui` processes on different ports, each with a data directory of its own (two
machines), sharing one PostgreSQL (conversations, documents, passages and vectors) and one Milvus
(knowledge-base search, a `milvus-lite server`): what one of them stores, the other sees at once.
The knowledge base gets there by `citewise migrate`, as a team moving an embedded install would.
Real SmolLM2."""

from __future__ import annotations

import json
import shutil

import httpx
import openai
import pytest
from cli_run import run_cli, serving_ui

from agent.state import DialogueStore

pytestmark = pytest.mark.slow

OXYGEN = "When did Carl Wilhelm Scheele discover oxygen?"
ZORBLAT = (
    "The Zorblat lantern festival of Quenville is held every year on the fourteenth of March. "
    "Families float paper lanterns on the Quen river at dusk."
)
FESTIVAL = [{"role": "user", "content": "When is the Zorblat lantern festival held?"}]


def test_a_conversation_and_documents_move_between_two_servers(
    education_data_dir, pg_database, milvus_server, tmp_path
):
    data = tmp_path / "a"
    shutil.copytree(education_data_dir, data)
    moved = run_cli("--data-dir", str(data), "migrate", "--to-database", pg_database,
                    "--to-store", milvus_server)  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    other = tmp_path / "b"  # the second machine: the same router, no knowledge-base files
    shutil.copytree(data, other, ignore=shutil.ignore_patterns("citewise.db*", "indexes"))
    config = tmp_path / "agent.json"
    settings = {
        "device": "cpu",
        "max_new_tokens": 24,
        "database_url": pg_database,
        "store": milvus_server,
    }
    config.write_text(json.dumps(settings), encoding="utf-8")
    argv = ["ui", "--api-token", "tok", "--config", str(config)]
    with (
        serving_ui(["--data-dir", str(data), *argv], tmp_path / "a.log") as a,
        serving_ui(["--data-dir", str(other), *argv], tmp_path / "b.log") as b,
    ):
        first, second = (
            openai.OpenAI(base_url=f"{url}/v1", api_key="tok", max_retries=0, timeout=600)
            for url in (a, b)
        )
        started = first.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": OXYGEN}]
        )
        session_id = started.model_extra["session_id"]
        go_on = second.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "Who named it?"}],
            extra_body={"session_id": session_id},
        )
        assert go_on.model_extra["session_id"] == session_id
        with DialogueStore(pg_database) as store:
            assert [t.user_text for t in store.history(session_id)] == [OXYGEN, "Who named it?"]

        docs = f"{a}/v1/knowledge_bases/education/documents"
        auth = {"Authorization": "Bearer tok"}
        files = [("files", ("zorblat.txt", ZORBLAT.encode(), "text/plain"))]
        uploaded = httpx.post(docs, files=files, headers=auth, timeout=300)
        assert uploaded.status_code == 201, uploaded.text
        reply = second.chat.completions.create(model="education", messages=FESTIVAL)
        assert "zorblat.txt" in {c["doc_id"] for c in reply.model_extra["citations"]}

        assert httpx.delete(f"{docs}/zorblat.txt", headers=auth).status_code == 200
        reply = second.chat.completions.create(model="education", messages=FESTIVAL)
        seen = reply.model_extra["citations"] + reply.model_extra["sources"]
        assert "zorblat.txt" not in {c["doc_id"] for c in seen}
    assert not (other / "citewise.db").exists()
