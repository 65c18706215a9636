"""Domain policy: medical, emergency and legal notices in the user's language."""

from __future__ import annotations

import pytest

from agent.policy import is_emergency, jurisdiction, notices
from retrieval.types import Hit

CIVIL_CODE = Hit(
    chunk_id=1,
    doc_id="99",
    kb="legal",
    score=1.0,
    text="当事人协商一致，可以解除合同。",
    title="中华人民共和国民法典第五百六十二条",
    domain="legal",
)
PRIVACY_POLICY = Hit(
    chunk_id=2,
    doc_id="pq-1",
    kb="legal",
    score=1.0,
    text="We do not knowingly collect information from children under 13.",
    title="ticketmaster.com",
    domain="legal",
)


def kinds(found) -> list[str]:
    return [n.kind for n in found]


def test_medical_answer_carries_not_medical_advice():
    (note,) = notices("medical", "What are the side effects of aspirin?", [], "en")
    assert note.kind == "medical" and "not medical advice" in note.text
    (note,) = notices("medical", "阿司匹林有什么副作用？", [], "zh")
    assert note.kind == "medical" and "不构成医疗建议" in note.text


@pytest.mark.parametrize(
    "message",
    [
        "My father has chest pain and is sweating, what should I do?",
        "my friend took an overdose of sleeping pills",
        "She can't breathe after a bee sting",
        "我爸爸胸口痛，出冷汗，怎么办？",
        "孩子误服了药物，好像中毒了",
        "他突然失去意识倒在地上",
    ],
)
def test_emergency_detected_in_both_languages(message):
    assert is_emergency(message)


@pytest.mark.parametrize(
    "message",
    [
        "What is the recommended dose of vitamin D?",
        "Can tailored telephone counseling increase mammography screening?",
        "什么是高血压？",
        "合同解除的条件是什么？",
    ],
)
def test_ordinary_questions_are_not_emergencies(message):
    assert not is_emergency(message)


def test_emergency_notice_comes_first_with_the_local_number():
    found = notices("medical", "我妈妈呼吸困难，嘴唇发紫", [], "zh")
    assert kinds(found) == ["emergency", "medical"]
    assert "120" in found[0].text
    found = notices("medical", "he is unconscious and not breathing", [], "en")
    assert kinds(found) == ["emergency", "medical"]
    assert "911" in found[0].text or "112" in found[0].text


def test_emergency_outside_the_medical_domain_still_gets_both_notices():
    # The router may call "I have chest pain" general or chit-chat: the notice must not care.
    assert kinds(notices("general", "I have chest pain right now", [], "en")) == [
        "emergency",
        "medical",
    ]


def test_legal_notice_names_the_prc_when_the_sources_are_prc_statutes():
    (note,) = notices("legal", "Can a contract be cancelled by agreement?", [CIVIL_CODE], "en")
    assert note.kind == "legal"
    assert "not legal advice" in note.text and "People's Republic of China" in note.text
    (note,) = notices("legal", "合同可以协商解除吗？", [CIVIL_CODE], "zh")
    assert "不构成法律意见" in note.text and "中华人民共和国" in note.text


def test_legal_notice_without_a_known_jurisdiction_names_none():
    (note,) = notices(
        "legal", "Does Ticketmaster collect data on children?", [PRIVACY_POLICY], "en"
    )
    assert "not legal advice" in note.text
    assert "China" not in note.text
    assert jurisdiction([PRIVACY_POLICY], "en") == ""


def test_other_domains_carry_no_notice():
    assert notices("education", "When did Scheele discover oxygen?", [], "en") == ()
    assert notices("general", "你好", [], "zh") == ()
