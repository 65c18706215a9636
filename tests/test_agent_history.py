"""Sessions seeded with prior turns (Agent.new_session(history=)), as stateless clients use."""

from __future__ import annotations

import pytest

from agent.api import _pairs


def test_pairs_match_users_with_their_answers():
    history = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "A"},
        {"role": "user", "content": "b"},
        {"role": "user", "content": "c"},
    ]
    assert list(_pairs(history)) == [("a", "A"), ("b", ""), ("c", "")]
    assert list(_pairs([{"role": "assistant", "content": "hi"}])) == [("", "hi")]


@pytest.mark.parametrize(
    "bad", [{"role": "system", "content": "x"}, {"role": "user"}, {"role": "user", "content": 3}]
)
def test_malformed_history_names_the_message(bad):
    with pytest.raises(ValueError, match=r"history\[0\]"):
        list(_pairs([bad]))


@pytest.mark.slow
def test_seeded_session_rewrites_a_follow_up(education_agent):
    sid = education_agent.new_session(
        "seeded",
        history=[
            {"role": "user", "content": "When did Carl Wilhelm Scheele discover oxygen?"},
            {"role": "assistant", "content": "Scheele discovered oxygen in 1771 [1]."},
        ],
    )
    stored = education_agent.history(sid)
    assert [(t.user_text, t.model) for t in stored] == [
        ("When did Carl Wilhelm Scheele discover oxygen?", "history")
    ]
    reply = education_agent.ask("And who else discovered it?", sid)
    assert reply.session_id == sid
    assert reply.rewritten_query != "And who else discovered it?"
    assert "oxygen" in reply.rewritten_query.lower(), reply.rewritten_query
    assert len(education_agent.history(sid)) == 2
