"""The Agent end to end with real parts: SmolLM2 on CPU, e5, FAISS + SQLite, the prototype router.

Over the demo education kb (XQuAD paragraphs in English and Chinese): two-turn follow-ups in both
languages answer with citations of the gold document, a question the documents do not cover is
refused, and the API around turns (config, sessions, feedback, tools) works.
"""

from __future__ import annotations

import pytest

from agent.config import AgentConfig
from agent.gate import DEFAULT_THRESHOLD
from agent.types import Done, Retrieved, Rewritten, Routed, Token
from retrieval.lang import detect_lang


def gold_cited(reply, gold: str) -> bool:
    return any(c.verified and c.doc_id == gold for c in reply.citations)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("first", "follow_up", "gold", "lang", "context"),
    [
        (
            "When did Carl Wilhelm Scheele discover oxygen?",
            "And who else discovered it?",
            "xq-en-12-0",
            "en",
            ("scheele", "oxygen"),
        ),
        (
            "卡尔·威尔海姆·舍勒于何时发现氧气？",
            "还有谁发现了它？",
            "xq-zh-12-0",
            "zh",
            ("舍勒", "氧气"),
        ),
    ],
)
def test_two_turn_follow_up_with_gold_citations(
    education_agent, first, follow_up, gold, lang, context
):
    one = education_agent.ask(first)
    assert not one.refused, one.answer
    assert gold_cited(one, gold), (one.answer, one.citations)
    assert detect_lang(one.answer) == lang and one.lang == lang
    assert one.route.intent == "knowledge" and one.route.kbs == ("education",)

    two = education_agent.ask(follow_up, one.session_id)
    assert two.session_id == one.session_id
    assert two.rewritten_query != follow_up
    assert any(word in two.rewritten_query.lower() for word in context), two.rewritten_query
    assert not two.refused, two.answer
    assert gold_cited(two, gold), (two.answer, two.citations)
    assert detect_lang(two.answer) == lang
    assert [t.user_text for t in education_agent.history(one.session_id)] == [first, follow_up]


@pytest.mark.slow
def test_uncovered_question_is_refused(education_agent):
    reply = education_agent.ask("What is the boiling point of mercury?")
    assert reply.refused and not reply.citations
    assert reply.notices[0].kind == "refusal"
    assert reply.sources, "the closest sources are listed"
    assert reply.timings["gate_strength"] < DEFAULT_THRESHOLD


@pytest.mark.slow
def test_stream_yields_the_turn_as_events(education_agent):
    events = list(education_agent.stream("黑豹队的防守丢了多少分？"))
    assert [type(e) for e in events[:3]] == [Rewritten, Routed, Retrieved]
    assert isinstance(events[-1], Done)
    tokens = [e for e in events if isinstance(e, Token)]
    assert tokens and events[-1].reply.timings["ttft_ms"] > 0
    reply = events[-1].reply
    assert reply.sources[0].doc_id == "xq-zh-0-0" and detect_lang(reply.answer) == "zh"


@pytest.mark.slow
def test_sessions_listed_rated_and_deleted(education_agent):
    sid = education_agent.new_session("greeting")
    reply = education_agent.ask("Hello!", sid)
    assert reply.route.intent == "chitchat" and not reply.sources
    listed = {s.id: s for s in education_agent.sessions()}
    assert listed[sid].title == "greeting" and listed[sid].turns == 1
    assert education_agent.feedback(reply.turn_id, 1, "nice") > 0
    assert education_agent.delete_session(sid)
    assert sid not in {s.id for s in education_agent.sessions()}
    assert education_agent.history(sid) == []
    assert not education_agent.delete_session(sid)


@pytest.mark.slow
def test_empty_message_is_rejected(education_agent):
    with pytest.raises(ValueError, match="empty"):
        education_agent.ask("   ")


@pytest.mark.slow
def test_summarize_and_translate_tools(education_agent):
    summary = education_agent.summarize("education", "xq-en-12-0", max_new_tokens=24)
    assert summary and detect_lang(summary) == "en"
    english = education_agent.translate("氧气于1773年被发现。", "en", max_new_tokens=24)
    assert english and detect_lang(english) == "en"
    with pytest.raises(ValueError, match="target_lang"):
        education_agent.translate("hi", "fr")


def test_config_from_dict_and_toml_agree(tmp_path):
    toml = tmp_path / "citewise.toml"
    toml.write_text(
        f'data_dir = "{tmp_path}"\ndevice = "cpu"\nmax_new_tokens = 48\nkbs = ["education"]\n'
        "[fusion_weights]\nzh = [0.5, 1.0]\n",
        encoding="utf-8",
    )
    from_toml = AgentConfig.load(toml)
    from_dict = AgentConfig.load(
        {
            "data_dir": str(tmp_path),
            "device": "cpu",
            "max_new_tokens": 48,
            "kbs": ["education"],
            "fusion_weights": {"zh": [0.5, 1.0]},
        }
    )
    assert from_toml == from_dict
    assert from_toml.kbs == ("education",) and from_toml.fusion_weights == {"zh": (0.5, 1.0)}
    assert AgentConfig.load(toml, max_new_tokens=8).turn.max_new_tokens == 8  # keywords win
    nested = AgentConfig.load({"turn": {"k": 3, "max_new_tokens": 20}, "max_new_tokens": 30})
    assert (nested.turn.k, nested.turn.max_new_tokens) == (3, 30)  # flat keys win


@pytest.mark.slow
def test_agent_was_built_from_a_dict(education_agent):
    assert education_agent.config == AgentConfig.load(
        {"data_dir": str(education_agent.data_dir)},
        device="cpu",
        max_new_tokens=48,
        time_limit_s=120.0,
    )
    assert education_agent.manager.config.max_new_tokens == 48
    assert education_agent.kb_domains() == {"education": "education"}


def test_config_errors_say_what_to_fix(tmp_path):
    with pytest.raises(ValueError, match="unknown config keys"):
        AgentConfig.load({"max_tokens": 5})
    with pytest.raises(FileNotFoundError):
        AgentConfig.load(tmp_path / "missing.toml")
    with pytest.raises(ValueError, match="device"):
        AgentConfig.load({"device": "tpu"})
    with pytest.raises(ValueError, match="unknown turn keys"):
        AgentConfig.load({"turn": {"top_k": 3}})
    with pytest.raises(ValueError, match="evidence_threshold must be between 0 and 1"):
        AgentConfig.load({"evidence_threshold": 1.5})
    with pytest.raises(ValueError, match="k, max_new_tokens and context_tokens"):
        AgentConfig.load({"k": 0})
