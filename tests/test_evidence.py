"""The trained evidence scorer (agent/evidence.py) with the real e5 embedder: it finds the sentence
that answers, where the cosine-closest sentence is often another, and says when none does."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agent.citations import SupportScorer
from agent.evidence import FEATURES, MODEL_PATH, EvidenceFinder, EvidenceModel, asks_number
from retrieval.types import Hit

pytestmark = pytest.mark.slow

LEAFLET = (
    "Talk to a doctor before taking paracetamol if you have liver or kidney problems. "
    "Adults and children over 16 may take 500 mg to 1 g every 4 to 6 hours. "
    "Do not take more than 4,000 mg in 24 hours. "
    "Paracetamol is used to treat pain and fever."
)
SCHOOL = (
    "The library is open from 8:00 to 17:00 on weekdays. Sixth-form students may stay until 18:30. "
    "Mobile phones must be switched off during lessons. Students arriving after 8:45 sign in "
    "at reception."
)
ZH_SHOP = (
    "消费者通过网络购买商品，有权自收到商品之日起七日内退货，且无需说明理由。"
    "下列商品不适用无理由退货：消费者定做的商品；鲜活易腐的商品；在线下载的数字化商品。"
    "退回商品的运费由消费者承担；经营者和消费者另有约定的，按照约定。"
)

PHYSIO = (
    "A first assessment lasts 45 minutes and costs £65. If you need to cancel, tell us at least "
    "24 hours before your appointment. Appointments cancelled with less notice, or missed, are "
    "charged in full. There are six free parking spaces behind the building."
)


def hits(*texts: str) -> list[Hit]:
    return [Hit(i, f"d{i}", "kb", 1.0, t, f"doc {i}") for i, t in enumerate(texts)]


@pytest.fixture(scope="module")
def finder(e5_embedder) -> EvidenceFinder:
    return EvidenceFinder(SupportScorer(e5_embedder))


@pytest.mark.parametrize(
    ("question", "texts", "answer"),
    [
        (
            "What is the maximum amount of paracetamol an adult can take in 24 hours?",
            (LEAFLET,),
            "4,000",
        ),
        ("How late can sixth-form students stay in the library?", (SCHOOL,), "18:30"),
        ("网上买的东西多少天内可以无理由退货？", (ZH_SHOP,), "七日"),
        ("网购生鲜可以无理由退货吗？", (ZH_SHOP,), "鲜活易腐"),
        # "How late / how early" is answered by how long before something, too.
        ("How late can I cancel without paying?", (PHYSIO,), "24 hours"),
    ],
)
def test_the_answering_sentence_ranks_first(finder, question, texts, answer):
    ranked = finder.rank(question, hits(*texts))
    assert answer in ranked[0].sentence, [e.sentence for e in ranked]
    assert finder.answerable(ranked)


@pytest.mark.parametrize(
    ("question", "text"),
    [
        ("What is the school uniform policy?", SCHOOL),
        ("Can I take paracetamol while pregnant?", LEAFLET),
    ],
)
def test_on_topic_passages_without_the_answer_are_not_answerable(finder, question, text):
    ranked = finder.rank(question, hits(text))
    assert not finder.answerable(ranked), [(e.sentence, e.score) for e in ranked]


def test_model_file_records_its_features_and_held_out_figures():
    data = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    assert tuple(data["features"]) == FEATURES
    test = data["figures"]["test"]
    assert test["top1_trained"] > test["top1_cosine"]  # trained beats the cosine it replaced


def test_a_model_of_other_features_is_refused():
    one = np.zeros(1)
    with pytest.raises(ValueError, match="inputs"):  # a model of one feature, not of FEATURES
        EvidenceModel(((np.ones((1, 1)), one),), one, np.ones(1), 0.5)
    n = len(FEATURES)
    with pytest.raises(ValueError, match="one output"):
        EvidenceModel(((np.ones((n, 2)), np.zeros(2)),), np.zeros(n), np.ones(n), 0.5)
    model = EvidenceModel.load()
    p = model.probabilities(np.zeros((2, len(FEATURES))))
    assert p.shape == (2,) and np.all((p > 0) & (p < 1))


def test_asks_number():
    assert asks_number("What is the maximum dose?") and asks_number("辞职要提前几天？")
    assert not asks_number("Who discovered oxygen?")


CLINIC = (
    "流感疫苗每年十月开始接种，60岁以上老人免费。接种后须在观察区留观30分钟。",
    "慢性病患者凭医保卡每次最多可开具四周的药量。",
)


def test_a_true_sentence_beside_the_question_is_left_out(finder):
    # Seen asking our own clinic notice: the model's copy of the vaccination sentence verified
    # against its passage and was shown before the answer to a question on 取药.
    from agent.gate import weigh
    from agent.grounding import ground

    q = "慢性病患者一次最多能开多少药？"
    passages = hits(*CLINIC)
    decision = weigh(q, passages, finder)
    model = "接种后须在观察区留观30分钟 [1]。"
    answer, cites, refused = ground(
        model, query=q, lang="zh", hits=passages, decision=decision, scorer=finder.scorer,
        strict=True,
    )  # fmt: skip
    assert not refused and "四周" in answer and "30分钟" not in answer, answer
    assert all("四周" in c.supporting_text for c in cites)
    # The same sentence answering its own question stays.
    own = "接种后要观察多久？"
    kept, _, _ = ground(
        model, query=own, lang="zh", hits=passages, decision=weigh(own, passages, finder),
        scorer=finder.scorer, strict=True,
    )  # fmt: skip
    assert "30分钟" in kept, kept


@pytest.mark.parametrize(
    ("question", "text", "expected"),
    [
        # The 1.5B model wrote "资料中没有提到。" to questions like this one whose passage answers.
        ("网上买的东西多少天内可以无理由退货？", ZH_SHOP, "七日"),
        # An on-topic passage without the answer: the model's refusal stands.
        ("Can I take paracetamol while pregnant?", LEAFLET, None),
    ],
)
def test_a_model_refusal_is_overruled_only_by_confident_evidence(finder, question, text, expected):
    from agent.gate import weigh
    from agent.grounding import ground
    from agent.refusal import REFUSAL

    passages = hits(text)
    decision = weigh(question, passages, finder)
    lang = "zh" if expected == "七日" else "en"
    declined = "资料中没有提到。" if lang == "zh" else "The passages do not mention this."
    answer, cites, refused = ground(
        declined, query=question, lang=lang, hits=passages, decision=decision,
        scorer=finder.scorer, strict=True, overrule=0.4,
    )  # fmt: skip
    if expected is None:
        assert refused and answer == REFUSAL[lang] and not cites, (answer, decision.strength)
    else:
        assert not refused and expected in answer and cites[0].verified, answer
        kept = ground(
            declined, query=question, lang=lang, hits=passages, decision=decision,
            scorer=finder.scorer, strict=True, overrule=1.0,
        )  # fmt: skip
        assert kept[2], "overrule = 1 keeps every model refusal"


def test_the_quote_keeps_the_likely_sentences_beside_the_best_one(finder):
    # Seen asking our own library rules: "Is the library open on Sunday?" quoted only the
    # Saturday hours; the next sentence, which answers, ranked just below it.
    from agent.evidence import Evidence
    from agent.gate import GateDecision
    from agent.grounding import ground

    text = (
        "The library opens 9:00 to 19:00 Monday to Friday and 10:00 to 16:00 on\n"
        "Saturday. It is closed on Sunday. Books may be borrowed for three weeks."
    )
    saturday = "The library opens 9:00 to 19:00 Monday to Friday and 10:00 to 16:00 on Saturday."
    sunday, loans = "It is closed on Sunday.", "Books may be borrowed for three weeks."
    ranked = (Evidence(0, saturday, 0.6), Evidence(0, sunday, 0.5), Evidence(0, loans, 0.05))
    decision = GateDecision(True, 0.6, 0, saturday, True, ranked, cut=0.3)
    answer, cites, refused = ground(
        "", query="Is the library open on Sunday?", lang="en", hits=hits(text),
        decision=decision, scorer=finder.scorer, strict=True,
    )  # fmt: skip
    assert not refused and cites[-1].supporting_text == f"{saturday} {sunday}", answer
    assert "closed on Sunday [1]" in answer and "three weeks" not in answer


@pytest.mark.parametrize(
    ("runner_up", "second", "quoted"), [(0.3, 0.3, True), (0.1, 0.3, False), (0.3, 1.0, False)]
)
def test_the_runner_up_is_quoted_when_nearly_as_likely(finder, runner_up, second, quoted):
    # Seen on the held-out sets: the answer is the scorer's second sentence far more often than a
    # sentence further down; quoting both keeps it, each cited to its own passage.
    from agent.evidence import Evidence
    from agent.gate import GateDecision
    from agent.grounding import ground

    weekdays = "The pool is open 7:00 to 21:00 on weekdays."
    saturday = "On Saturdays it closes at 17:00."
    ranked = (Evidence(0, weekdays, 0.8), Evidence(1, saturday, runner_up))
    decision = GateDecision(True, 0.8, 0, weekdays, True, ranked, cut=0.18)
    answer, cites, refused = ground(
        "", query="When does the pool close on Saturday?", lang="en",
        hits=hits(weekdays, saturday), decision=decision, scorer=finder.scorer, strict=True,
        second=second,
    )  # fmt: skip
    assert not refused and "21:00 on weekdays [1]" in answer, answer
    assert ("closes at 17:00 [2]" in answer) is quoted, answer
    assert [c.n for c in cites] == ([1, 2] if quoted else [1])
    assert all(c.verified for c in cites)
