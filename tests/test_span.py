"""The short-answer reader (agent/span.py): the shipped weights read the answer out of a sentence,
in English and Chinese; a factual question gets the span with the sentence as its citation, and
everything else (a yes / no question, an unsure reader, a close runner-up) keeps the quote."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from agent.evidence import Evidence
from agent.gate import GateDecision
from agent.grounding import ground
from agent.span import ShortAnswer, asks_fact, best_span, opens, rate
from retrieval.types import Hit

SACKS = (
    "Pro Bowl defensive tackle Kawann Short led the team in sacks with 11, while also forcing "
    "three fumbles and recovering two."
)


@pytest.mark.parametrize(
    ("question", "fact"),
    [
        ("Who led the Panthers in sacks?", True),
        ("How late can sixth-form students stay in the library?", True),
        ("In which year was the library built?", True),
        ("What should I do if I miss a dose?", False),
        ("Why was the game delayed?", False),
        ("Can I return fresh food bought online?", False),
        ("How do I renew a book?", False),
        ("辞职要提前多久通知公司？", True),
        ("谁负责小区的停车管理？", True),
        ("网购生鲜可以无理由退货吗？", False),
        ("为什么要签书面劳动合同？", False),
    ],
)
def test_which_questions_a_few_words_answer(question, fact):
    assert asks_fact(question) is fact


def test_best_span_keeps_start_before_end_and_bounds_the_length():
    starts = np.log(np.array([0.1, 0.1, 0.7, 0.1]))
    ends = np.log(np.array([0.6, 0.1, 0.1, 0.2]))  # the likeliest end is before the start
    i, j, logp = best_span(starts, ends, longest=2)
    assert (i, j) == (2, 3) and np.isclose(logp, np.log(0.7 * 0.2))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "sentence", "answer"),
    [
        ("Who led the Panthers in sacks?", SACKS, "Kawann Short"),
        (
            "What is the most paracetamol an adult may take in 24 hours?",
            "Do not take more than 4,000 mg in 24 hours.",
            "4,000 mg",
        ),
        (
            "辞职要提前多久通知用人单位？",
            "劳动者提前三十日以书面形式通知用人单位，可以解除劳动合同。",
            "三十日",
        ),
        # The tokenizer cuts "£" off the number; the answer keeps it (seen: "180 [1].").
        (
            "How much is the Year 6 residential?",
            "The Year 6 residential to the Peak District costs £180, payable in three parts.",
            "£180",
        ),
    ],
)
def test_the_shipped_reader_reads_the_answer(question, sentence, answer):
    from agent.span import default_reader

    got = default_reader().read(question, sentence)
    assert got is not None and answer in got.text and len(got.text) <= 3 * len(answer), got
    assert got.text in sentence
    assert 0 < got.score <= 1


@pytest.mark.slow
def test_the_shipped_reader_says_when_a_sentence_holds_no_answer():
    # Trained with sentences that look like the answer and are not (SQuAD 2.0's "no answer" at
    # <s>): it reads the answering sentence as answering and the other as holding nothing.
    from agent.span import default_reader

    reader = default_reader()
    points = "The Panthers defense gave up just 308 points, ranking sixth in the league."
    wage = "用人单位应当按照劳动合同约定向劳动者支付劳动报酬。"
    notice = "劳动者提前三十日以书面形式通知用人单位，可以解除劳动合同。"
    sure, unsure = reader.none("Who led the Panthers in sacks?", [SACKS, points])
    assert sure < 0.1 < 0.5 < unsure
    sure, unsure = reader.none("辞职要提前多久通知用人单位？", [notice, wage])
    assert sure < 0.1 < 0.5 < unsure
    got = reader.read("辞职要提前多久通知用人单位？", wage)
    assert got is not None and got.score < 0.1 and got.none > 0.5


@pytest.mark.parametrize(
    ("question", "open_"),
    [
        ("2021年宝马全球销量？", True),
        ("第七届香港立法会议员宣誓仪式的时间", True),
        ("Who won Super Bowl 50?", True),
        ("What is the school uniform policy?", True),
        ("Can I take paracetamol while pregnant?", False),
        ("Is the library open on Sunday?", False),
        ("Why was the game delayed?", False),
        ("高血压患者可以喝咖啡吗？", False),
        ("如何申请转专业？", False),
    ],
)
def test_which_questions_the_reader_may_refuse(question, open_):
    assert opens(question) is open_


# The model wrote nothing here, so the support scorer is asked about no sentence.
NO_MODEL_SENTENCES: Any = SimpleNamespace(
    config=SimpleNamespace(threshold=0.5), scores=lambda sentences, texts: []
)


def _decision(*ranked: Evidence) -> GateDecision:
    return GateDecision(True, ranked[0].score, ranked[0].hit, ranked[0].sentence, True, ranked, 0.2)


def _ground(question: str, decision: GateDecision, texts: tuple[str, ...], score: float):
    calls = []

    def reader(q: str, s: str) -> ShortAnswer:
        calls.append((q, s))
        return ShortAnswer("Kawann Short", score)

    hits = [Hit(i, f"d{i}", "kb", 1.0, t, f"doc {i}") for i, t in enumerate(texts)]
    out = ground(
        "", query=question, lang="en", hits=hits, decision=decision, scorer=NO_MODEL_SENTENCES,
        strict=True, second=0.3, reader=reader, short=0.4,
    )  # fmt: skip
    return out, calls


def test_a_sure_span_answers_a_factual_question_cited_to_its_sentence():
    (answer, cites, refused), calls = _ground(
        "Who led the Panthers in sacks?", _decision(Evidence(0, SACKS, 0.9)), (SACKS,), 0.8
    )
    assert (answer, refused) == ("Kawann Short [1].", False)
    assert calls == [("Who led the Panthers in sacks?", SACKS)]
    assert [(c.n, c.supporting_text, c.verified) for c in cites] == [(1, SACKS, True)]


@pytest.mark.parametrize(
    ("question", "score", "runner_up"),
    [
        ("Who led the Panthers in sacks?", 0.2, 0.0),  # the reader is unsure
        ("Did Kawann Short lead the team in sacks?", 0.8, 0.0),  # yes / no: the sentence says it
        ("Who led the Panthers in sacks?", 0.8, 0.5),  # the runner-up may hold the answer
    ],
)
def test_otherwise_the_sentence_is_quoted(question, score, runner_up):
    other = "The Panthers line also featured veteran defensive end Jared Allen."
    ranked = [Evidence(0, SACKS, 0.9)] + ([Evidence(1, other, runner_up)] if runner_up else [])
    (answer, cites, refused), _ = _ground(question, _decision(*ranked), (SACKS, other), score)
    assert not refused and answer.startswith("The documents say: Pro Bowl"), answer
    assert all(c.verified for c in cites)


def test_a_rate_keeps_its_sentence():
    # Seen in review: "物业费每月多少钱？" was answered "2.5元 [1]。" over "住宅每月每平方米2.5元":
    # the span dropped the 每平方米 the fee is counted by.
    fee = "第一条 物业服务费按房屋建筑面积计收，住宅每月每平方米2.5元，按季度预交。"
    hits = [Hit(0, "d0", "kb", 1.0, fee, "物业")]
    decision = _decision(Evidence(0, fee, 0.9))
    answer, cites, refused = ground(
        "", query="物业费每月多少钱？", lang="zh", hits=hits, decision=decision,
        scorer=NO_MODEL_SENTENCES, strict=True, second=0.3,
        reader=lambda q, s: ShortAnswer("2.5元", 0.9), short=0.4,
    )  # fmt: skip
    assert not refused and answer.startswith("资料中写道：") and "每平方米2.5元" in answer, answer
    assert [c.supporting_text for c in cites] == [fee] and cites[0].verified
    assert rate("2.5元", fee) and not rate("2.5元", "停车场收取2.5元。")


def test_a_process_that_ends_while_the_reader_loads_exits_cleanly() -> None:
    # A one-off turn answered without the reader (small talk, a refusal) ended the process while
    # the background load ran: "terminate called without an active exception", exit 134.
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    code = "from agent.span import warm; warm()"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "terminate called" not in done.stderr and "Traceback" not in done.stderr
