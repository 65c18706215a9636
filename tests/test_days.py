"""A number stated for some days does not verify a claim about others (agent/days.py)."""

from __future__ import annotations

import pytest

from agent.citations import SupportScorer, verify
from agent.claims import check_claim
from agent.days import bound, other_days
from retrieval.types import Hit

HOURS = (
    "Opening hours: Monday to Thursday 8:00-18:00, Friday 8:00-15:00. We are closed at weekends."
)


@pytest.mark.parametrize(
    ("claim", "support", "wrong"),
    [
        ("Open on Fridays from 8:00 to 18:00.", HOURS, "18:00"),
        ("At weekends it opens 8:00 to 15:00.", HOURS, "8:00"),
        ("Monday to Friday 8:00 to 18:00.", HOURS, "8:00"),
        ("On Fridays it closes at 15:00.", HOURS, None),
        ("It opens at 8:00 on Mondays.", HOURS, None),
        ("It closes at 18:00.", HOURS, None),  # no day said: nothing to bind
        ("Monday to Friday, 8:00 to 18:00.", HOURS, None),  # days in another clause: unbound
        (
            "双休日8:00至12:00可以施工。",
            "工作日8:00至12:00、14:00至18:00可以施工；双休日不得施工。",
            "8:00",
        ),
        ("周五下午可以施工到18:00。", "周一至周五14:00至18:00可以施工。", None),
        ("周六开放到17:00。", "周一至周五9:00-19:00，周六、周日9:00-17:00", None),
    ],
)
def test_a_number_belongs_to_its_days(claim: str, support: str, wrong: str | None) -> None:
    assert other_days(claim, support) == wrong


def test_a_day_range_may_run_over_the_weekend() -> None:
    (_, days), *_ = bound("Friday to Monday 10:00-16:00")
    assert sorted(days) == [0, 4, 5, 6]
    assert other_days("Open Tuesdays 10:00-16:00.", "Friday to Monday 10:00-16:00") == "10:00"


def test_the_claim_check_names_the_days() -> None:
    check = check_claim("Open on Fridays from 8:00 to 18:00.", HOURS, HOURS)
    assert not check.ok and check.reason == "18:00 is for other days in the supporting sentence"


def test_a_range_belongs_to_the_nearest_days_in_its_clause() -> None:
    days = [sorted(d) for _, d in bound("open 8:00-18:00 Monday to Thursday and 8:00-15:00 Friday")]
    assert days == [[0, 1, 2, 3], [0, 1, 2, 3], [4], [4]]
    assert [d for _, d in bound("Take 2 tablets every 4 hours.")] == [frozenset(), frozenset()]


@pytest.fixture(scope="module")
def scorer(e5_embedder) -> SupportScorer:
    return SupportScorer(e5_embedder)


def test_hours_for_other_days_do_not_verify(scorer) -> None:
    hit = Hit(0, "hours", "kb", 1.0, HOURS, "Dental practice")
    question = "When are you open on Fridays?"
    false = verify(
        "The practice is open on Fridays from 8:00 to 18:00 [1].", [hit], scorer, question
    )
    assert not false.citations[0].verified and false.grounded == ""
    true = verify(
        "On Fridays the practice is open from 8:00 to 15:00 [1].", [hit], scorer, question
    )
    assert true.citations[0].verified
