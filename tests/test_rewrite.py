"""Follow-up rewriting: when the LM is asked, and what happens when its rewrite is implausible."""

from __future__ import annotations

import pytest

from agent.rewrite import depends_on_history, last_user_question, plausible, rewrite

FLU = [
    ("user", "What are the symptoms of flu in adults?"),
    ("assistant", "Fever, cough and aching muscles [1]."),
]
LAW = [
    ("user", "What does the Personal Information Protection Law regulate?"),
    ("assistant", "It regulates how personal information is processed [1]."),
]
OXYGEN = [
    ("user", "When did Carl Wilhelm Scheele discover oxygen?"),
    ("assistant", "Scheele discovered oxygen in 1773 or earlier [1]."),
]
DRUGS_ZH = [
    ("user", "治疗高血压的常用药物有哪些？"),
    ("assistant", "常用药物有利尿剂和钙通道阻滞剂 [1]。"),
]
OXYGEN_ZH = [
    ("user", "卡尔·威尔海姆·舍勒于何时发现氧气？"),
    ("assistant", "舍勒于1773年或更早发现了氧气 [1]。"),
]


@pytest.mark.parametrize(
    ("message", "history"),
    [
        ("and for children?", FLU),
        ("What about its penalties?", LAW),
        ("And who else discovered it?", OXYGEN),
        ("Why?", OXYGEN),
        ("What does that mean?", LAW),
        ("那第二个呢", DRUGS_ZH),
        ("那儿童呢？", DRUGS_ZH),
        ("它有什么副作用？", DRUGS_ZH),
        ("还有谁发现了它？", OXYGEN_ZH),
    ],
)
def test_follow_ups_depend_on_history(message, history):
    assert depends_on_history(message, history)


@pytest.mark.parametrize(
    ("message", "history"),
    [
        ("What is the boiling point of mercury?", OXYGEN),
        ("Who wrote the law that governs residential leases?", LAW),
        ("How is type 2 diabetes diagnosed in adults?", FLU),
        ("Thanks!", OXYGEN),
        ("劳动合同到期公司不续签，有经济补偿吗？", DRUGS_ZH),
        ("其他国家的氧气是谁发现的？", OXYGEN_ZH),
        ("谢谢", DRUGS_ZH),
    ],
)
def test_standalone_messages_do_not(message, history):
    assert not depends_on_history(message, history)


def test_nothing_depends_on_an_empty_history():
    assert not depends_on_history("and for children?", [])


def test_standalone_message_never_calls_the_lm(scripted_lm):
    lm = scripted_lm(["this reply must stay in the queue"])
    assert rewrite(lm, "What is the boiling point of mercury?", OXYGEN) == (
        "What is the boiling point of mercury?",
        False,
    )
    assert lm.calls == [] and lm.replies == ["this reply must stay in the queue"]


def test_a_follow_up_without_pointers_is_rewritten_when_told(scripted_lm):
    # "How much notice exactly?" names nothing it points back at; the dialogue manager says it is
    # a follow-up when the router finds it too vague alone (tests/test_dialogue.py).
    lm = scripted_lm(["Who else discovered oxygen besides Carl Wilhelm Scheele?"])
    assert rewrite(lm, "Who else discovered it exactly?", OXYGEN, follow_up=True) == (
        "Who else discovered oxygen besides Carl Wilhelm Scheele?",
        True,
    )
    assert rewrite(lm, "Who else?", [], follow_up=True) == ("Who else?", False)


def test_a_rewrite_sharing_only_plain_words_is_no_rewrite():
    # Seen asking a gym's membership terms: "What if I get injured?" became "How can I get a
    # refund for my car?", passing on "i", "get" and "can".
    history = [
        ("user", "Can I cancel my annual membership?"),
        ("assistant", "Yes, within 14 days."),
    ]
    assert not plausible("How can I get a refund for my car?", "What if I get injured?", history)
    assert plausible(
        "Can I cancel my annual membership if I get injured?", "What if I get injured?", history
    )


def test_plausible_rewrite_is_used(scripted_lm):
    lm = scripted_lm(['"Who else discovered oxygen besides Carl Wilhelm Scheele?"\nExtra line.'])
    query, used_lm = rewrite(lm, "And who else discovered it?", OXYGEN)
    assert (query, used_lm) == ("Who else discovered oxygen besides Carl Wilhelm Scheele?", True)
    (call,) = lm.calls
    prompt = call[0]["content"]
    assert "When did Carl Wilhelm Scheele discover oxygen?" in prompt
    assert prompt.rstrip().endswith("Standalone question:")


def test_plausible_chinese_rewrite_is_used(scripted_lm):
    lm = scripted_lm(["治疗高血压的第二种常用药物是什么？"])
    assert rewrite(lm, "那第二个呢", DRUGS_ZH) == ("治疗高血压的第二种常用药物是什么？", True)
    assert "对话" in lm.calls[0][0]["content"]


@pytest.mark.parametrize(
    "reply",
    [
        "",  # nothing
        "Scheele discovered oxygen in 1773 or earlier [1].",  # a copy of the earlier answer
        "谁还发现了氧气？",  # another language
        "Who else discovered it?",  # nothing from the conversation added
        "When did Carl Wilhelm Scheele discover oxygen?",  # the message's own words dropped
        "Sure! Here is a standalone question that you can use for searching: " * 5,  # rambling
    ],
)
def test_implausible_rewrite_falls_back_to_previous_question_plus_message(scripted_lm, reply):
    lm = scripted_lm([reply])
    query, used_lm = rewrite(lm, "And who else discovered it?", OXYGEN)
    assert used_lm
    assert query == "When did Carl Wilhelm Scheele discover oxygen? And who else discovered it?"


def test_chinese_fallback_joins_without_a_space(scripted_lm):
    query, _ = rewrite(scripted_lm(["好的"]), "那第二个呢", DRUGS_ZH)
    assert query == "治疗高血压的常用药物有哪些？那第二个呢"


def test_plausible_checks_directly():
    assert plausible(
        "What are the penalties of the Personal Information Protection Law?",
        "What about its penalties?",
        LAW,
    )
    assert not plausible("What are its penalties?", "What about its penalties?", LAW)


BOOKS = [("user", "How long can I keep a book?"), ("assistant", "Books are lent for 21 days [1].")]


def test_the_earlier_question_asked_again_is_no_rewrite(scripted_lm):
    # SmolLM2 answered "And can I renew it?" with the previous question, "user: " label and all;
    # "can" and "I" are two of the message's three words, so it passed before.
    lm = scripted_lm(["user: How long can I keep a book?"])
    query, _ = rewrite(lm, "And can I renew it?", BOOKS)
    assert query == "How long can I keep a book? And can I renew it?"


def test_a_copied_role_label_is_taken_off(scripted_lm):
    lm = scripted_lm(["user: Can I renew a book?"])
    assert rewrite(lm, "And can I renew it?", BOOKS) == ("Can I renew a book?", True)


SEAFOOD = [
    ("user", "网上买的东西多少天内可以无理由退货？"),
    ("assistant", "资料中写道：消费者有权自收到商品之日起七日内退货 [1]。"),
]


def test_a_rewrite_that_no_longer_asks_is_refused(scripted_lm):
    # SmolLM2 turned the follow-up into a statement; it kept half the message's words and passed.
    lm = scripted_lm(["你可以看到，我买的是海鲜！"])
    query, _ = rewrite(lm, "那我买的是海鲜呢，也能退吗？", SEAFOOD)
    assert query == "网上买的东西多少天内可以无理由退货？那我买的是海鲜呢，也能退吗？"
    asked = scripted_lm(["网上买的海鲜我也能退吗？"])
    assert rewrite(asked, "那我买的是海鲜呢，也能退吗？", SEAFOOD)[0] == "网上买的海鲜我也能退吗？"


def test_a_history_too_long_to_rewrite_with_falls_back_to_the_last_question(scripted_lm):
    lm = scripted_lm(["never asked"])
    lm.max_positions = 60  # the rewrite prompt does not fit: the model is not asked
    query, _ = rewrite(lm, "And who else discovered it?", OXYGEN)
    assert query == f"{last_user_question(OXYGEN)} And who else discovered it?"
    assert lm.replies == ["never asked"]
