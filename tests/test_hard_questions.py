"""Questions a careless or unlucky user asks: an empty knowledge base, a third language, only
punctuation, a knowledge base whose one document is 10 MB. Each gets a clear answer or a refusal
(real e5, FAISS and SQLite; a scripted LM, since what is checked is the turn's path)."""

from __future__ import annotations

import pytest

from retrieval.kb import Library

pytestmark = pytest.mark.slow


def ask(manager, message: str):
    sid = manager.store.create_session("t")
    return [e for e in manager.turn(sid, message)][-1].reply


def test_empty_knowledge_base_refuses(make_manager, scripted_lm, tmp_path, e5_embedder):
    empty = Library(tmp_path / "empty", embedder_loader=lambda spec: e5_embedder)
    manager = make_manager(scripted_lm(["Oxygen was discovered in 1773 [1]."]), library=empty)
    reply = ask(manager, "When was oxygen discovered?")
    assert reply.refused and reply.answer and not reply.citations
    assert not manager.lm.calls  # nothing to answer from: the model is not asked to invent
    empty.close()


@pytest.mark.parametrize(
    "message",
    [
        "Quand l'oxygène a-t-il été découvert ?",
        "Когда был открыт кислород?",
        "酸素はいつ発見されたか",
    ],
)
def test_a_third_language_gets_an_answer_or_a_refusal(make_manager, scripted_lm, message):
    manager = make_manager(scripted_lm(respond=lambda m: "The documents do not say."))
    reply = ask(manager, message)
    assert reply.answer.strip()
    assert reply.refused or all(c.verified for c in reply.citations)


@pytest.mark.parametrize("message", ["？？？", "!!!...", "。", "[1]"])
def test_punctuation_only(make_manager, scripted_lm, message):
    manager = make_manager(scripted_lm(respond=lambda m: "Oxygen is a gas [1]."))
    reply = ask(manager, message)
    assert reply.answer.strip() and not reply.interrupted
    assert not any(c.verified for c in reply.citations)  # nothing was asked, nothing is claimed
    stored = manager.store.history(reply.session_id, limit=1)
    assert stored and stored[-1].user_text == message


def test_a_knowledge_base_with_one_10_mb_document(make_manager, scripted_lm, tmp_path, e5_embedder):
    big = tmp_path / "big.txt"
    big.write_text("The tenancy deposit is returned within 14 days. " * 210_000, encoding="utf-8")
    assert big.stat().st_size > 10_000_000
    lib = Library(tmp_path / "data", embedder_loader=lambda spec: e5_embedder)
    report = lib.ingest_paths("legal", [big], domain="legal", progress=False)
    assert report.skipped and "characters" in report.skipped[0].reason  # says what to do
    manager = make_manager(
        scripted_lm(["The deposit is returned within 14 days [1]."]), library=lib
    )
    reply = ask(manager, "When is the deposit returned?")
    assert reply.refused and not reply.citations
    lib.close()
