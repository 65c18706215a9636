"""Answer, grounding and aggregate metrics against values computed by hand."""

import math

import pytest

from agent.citations import SupportConfig
from evals.answer_metrics import (
    answer_contains,
    bleu,
    exact_match,
    extract_yesno,
    normalize_en,
    percentile,
    rouge_l,
    token_f1,
    tokens,
    yesno_correct,
)
from evals.grounding import supported_sentences
from evals.runstore import CaseRecord
from evals.scoring import aggregate, answer_text, case_scores


def test_squad_normalization_drops_case_punctuation_articles():
    assert normalize_en("The Denver Broncos!") == "denver broncos"
    assert exact_match("denver broncos.", ["The Denver Broncos"]) == 1.0
    assert exact_match("Broncos", ["The Denver Broncos"]) == 0.0


def test_token_f1_by_hand():
    # pred {denver, broncos, won} vs gold {denver, broncos}: p = 2/3, r = 1, F1 = 0.8
    assert token_f1("Denver Broncos won", ["the Denver Broncos"]) == pytest.approx(0.8)
    # best over answers
    assert token_f1("Carolina", ["Denver", "Carolina Panthers"]) == pytest.approx(2 / 3)
    assert token_f1("nothing here", ["Denver"]) == 0.0


def test_chinese_is_scored_by_character():
    assert tokens("北京，中国。") == ["北", "京", "中", "国"]
    # pred 北京市 (3 chars) vs gold 北京 (2): common 2, p = 2/3, r = 1 -> 0.8
    assert token_f1("北京市", ["北京"], "zh") == pytest.approx(0.8)
    assert exact_match("北京。", ["北京"], "zh") == 1.0
    assert answer_contains("事故造成12人死亡", ["12人"], "zh") == 1.0
    assert answer_contains("事故造成12人死亡", ["12人", "印度"], "zh") == 0.0
    assert answer_contains("It is not known.", ["no"]) == 0.0  # whole words in English
    # A currency sign is its own token: "£48" answers "48" (own-questions scored it a miss).
    assert answer_contains("Follow-ups cost £48 [1].", ["48"]) == 1.0
    assert answer_contains("It costs $48.", ["£48"]) == 0.0


@pytest.mark.parametrize(
    ("answer", "label"),
    [
        ("Yes, the drug lowered blood pressure.", "yes"),
        ("No. The trial showed no effect.", "no"),
        ("It is not associated with survival.", "no"),
        ("Maybe; the evidence is mixed.", "maybe"),
        ("是的，该药物有效。", "yes"),
        ("不是，研究没有发现差异。", "no"),
        ("可能有关。", "maybe"),
        ("The study enrolled 40 patients.", None),
    ],
)
def test_extract_yesno_both_languages(answer, label):
    assert extract_yesno(answer) == label


def test_yesno_correct():
    assert yesno_correct("Yes, it does.", ["yes"]) == 1.0
    assert yesno_correct("No.", ["yes"]) == 0.0
    assert yesno_correct("The study enrolled 40 patients.", ["no"]) == 0.0


def test_rouge_l_by_hand():
    # "a b c d e" vs "a x c e": LCS a c e = 3; p = 3/5, r = 3/4, F1 = 2*.6*.75/1.35 = 2/3
    assert rouge_l("alpha beta gamma delta epsilon", "alpha x gamma epsilon") == pytest.approx(
        2 / 3
    )
    # characters for Chinese: 高血压病 vs 高血压: LCS 3, p = 3/4, r = 1 -> 6/7
    assert rouge_l("高血压病", "高血压", "zh") == pytest.approx(6 / 7)
    assert rouge_l("", "anything") == 0.0


def test_bleu_by_hand():
    assert bleu("one two three four", "one two three four") == pytest.approx(1.0)
    # pred "one two three five" vs ref "one two three four": p1 = 3/4, p2 = 2/3 -> (2+1)/(3+1),
    # p3 = 1/2 -> (1+1)/(2+1), p4 = 0/1 -> 1/2; equal lengths, no brevity penalty.
    expected = math.exp((math.log(3 / 4) + math.log(3 / 4) + math.log(2 / 3) + math.log(1 / 2)) / 4)
    assert bleu("one two three five", "one two three four") == pytest.approx(expected)
    # brevity: a 2-word prediction of a 4-word reference pays exp(1 - 4/2)
    short = bleu("one two", "one two three four")
    assert short == pytest.approx(math.exp(1 - 2) * math.exp((0 + math.log(2 / 2) * 3) / 4))
    assert bleu("zzz", "one two") == 0.0


def test_percentile_interpolates():
    assert percentile([1, 2, 3, 4, 5], 50) == 3
    assert percentile([10, 20], 95) == pytest.approx(19.5)
    with pytest.raises(ValueError):
        percentile([], 50)


class FixedScorer:
    """Support table given by hand: scores[sentence index][passage index]."""

    config = SupportConfig(threshold=0.45)

    def __init__(self, table):
        self.table = table

    def scores(self, sentences, passages):
        return [[(s, "") for s in row] for row in self.table[: len(sentences)]]


def test_faithfulness_counts_sentences_their_citations_support():
    answer = "A is B [1]. C is D [2]. E is F."
    scorer = FixedScorer([[0.9, 0.1], [0.9, 0.2], [0.9, 0.9]])
    # sentence 1 cites passage 1 (0.9: supported); sentence 2 cites passage 2 (0.2: not);
    # sentence 3 cites nothing (unsupported whatever the passages say).
    assert supported_sentences(answer, ["p1", "p2"], scorer) == (1, 3)
    assert supported_sentences("", ["p1"], scorer) == (0, 0)


def _record(**kw):
    base = dict(
        id="c",
        question="q",
        lang="en",
        domain="general",
        group="",
        answer_type="span",
        gold_doc_ids=["d1", "d2"],
        answers=["Denver"],
        reference="",
        rewritten_query="q",
        intent="knowledge",
        route_domain="general",
        ranked_ids=["x", "d1"],
        retrieved_ids=["x", "d1"],
        answer="Denver [1].",
        citations=[{"n": 1, "doc_id": "d1", "support": 0.9, "verified": True}],
        refused=False,
        n_sentences=2,
        n_supported=1,
        timings={"ttft_ms": 100.0, "total_ms": 300.0, "gen_ms": 200.0, "new_tokens": 11},
    )
    base.update(kw)
    record = CaseRecord(**base)
    return CaseRecord(**{**base, "scores": case_scores(record)})


def test_case_scores_by_hand():
    s = _record().scores
    assert s["answer.em"] == 1.0 and s["answer.f1"] == 1.0
    assert s["retrieval.recall@1"] == 0.0 and s["retrieval.recall@5"] == 0.5
    assert s["retrieval.mrr"] == 0.5
    assert s["faithfulness"] == 0.5
    assert s["citation.precision"] == 1.0 and s["citation.recall"] == 0.5
    refused = _record(refused=True, answer="The documents do not say.").scores
    assert refused["answer.f1"] == 0.0 and "faithfulness" not in refused
    assert answer_text("The documents say: Denver won [1].") == "Denver won."


def test_aggregate_refusal_answer_rate_latency():
    records = [
        _record(id="a", refused=False),
        _record(id="b", refused=True),
        _record(id="r1", answer_type="refuse", gold_doc_ids=[], answers=[], refused=True),
        _record(id="r2", answer_type="refuse", gold_doc_ids=[], answers=[], refused=False),
    ]
    m = aggregate(records)
    # refused: b, r1; should refuse: r1, r2 -> precision 1/2, recall 1/2; answerable a, b -> 1/2
    assert m["refusal.precision"] == 0.5 and m["refusal.recall"] == 0.5
    assert m["answer_rate"] == 0.5
    assert m["answer.em"] == 0.5  # a right, b refused
    assert m["latency.total_p50_ms"] == 300.0
    # 4 cases x (11 - 1) tokens after the first over 4 x 0.2 s
    assert m["tokens_per_s"] == pytest.approx(50.0)
