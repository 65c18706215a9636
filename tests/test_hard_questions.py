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


LIBRARY_RULES = """# Riverside Public Library: Borrowing Rules

## Loans

Adult members may borrow up to 12 items at a time. Children under 14 may borrow up to 6 items.
Books are lent for 21 days; DVDs for 7 days.
"""
PARKING_RULES = """# 青园小区停车管理办法

第一条 访客车辆须在门岗登记，免费停放2小时。
第二条 车库内禁止停放电动自行车。
"""


def test_a_question_the_router_files_under_the_wrong_domain_is_answered(
    make_manager, scripted_lm, recording_router, tmp_path, e5_embedder
):
    # Found asking our own documents: "How many items can a child borrow?" reads as legal, so
    # only the parking rules (legal) were searched and the library rules (education) never were.
    (tmp_path / "library.md").write_text(LIBRARY_RULES, encoding="utf-8")
    (tmp_path / "parking.md").write_text(PARKING_RULES, encoding="utf-8")
    lib = Library(tmp_path / "data", embedder_loader=lambda spec: e5_embedder)
    lib.ingest_paths("library", [tmp_path / "library.md"], domain="education", progress=False)
    lib.ingest_paths("parking", [tmp_path / "parking.md"], domain="legal", progress=False)
    manager = make_manager(
        scripted_lm(respond=lambda m: "Children under 14 may borrow up to 6 items [1]."),
        router=recording_router(domain="legal"),
        library=lib,
    )
    reply = ask(manager, "How many items can a child borrow?")
    assert not reply.refused and reply.citations and reply.citations[0].verified
    assert "6 items" in reply.answer and reply.citations[0].kb == "library"
    assert set(reply.route.kbs) == {"library", "parking"} and "widened" in reply.route.method
    # Knowledge bases the user chose are not widened: the parking rules do not say.
    sid = manager.store.create_session("t")
    chosen = [e for e in manager.turn(sid, "How many items can a child borrow?", kbs=["parking"])]
    assert chosen[-1].reply.refused and chosen[-1].reply.route.kbs == ("parking",)
    lib.close()
