"""One chat turn end to end with real retrieval, verifier and store, and a scripted LM for control.

The knowledge base is the small bilingual "science" kb (conftest); the scripted LM stands in for
the model so that each control path (refusal, chit-chat, stop, cancel, history, threads) is exact.
"""

from __future__ import annotations

import dataclasses
import re
import threading

import pytest

from agent.markers import strip_markers
from agent.protocols import CancelToken, LMError
from agent.types import Done, Retrieved, Rewritten, Token
from retrieval.lang import has_cjk

SCHEELE = "When did Carl Wilhelm Scheele discover oxygen?"
SCHEELE_ZH = "卡尔·威尔海姆·舍勒于何时发现氧气？"
ANSWER = "Oxygen was discovered by Carl Wilhelm Scheele in Uppsala in 1773 or earlier [1]."
MERCURY = "What is the boiling point of mercury?"


def run(manager, session: str, message: str, **kwargs) -> list:
    return list(manager.turn(session, message, **kwargs))


def reply_of(events):
    assert isinstance(events[-1], Done)
    return events[-1].reply


def test_events_in_order_and_turn_stored(make_manager, scripted_lm):
    lm = scripted_lm([ANSWER])
    manager = make_manager(lm)
    events = run(manager, "s1", SCHEELE)
    kinds = [type(e).__name__ for e in events]
    assert kinds[:3] == ["Rewritten", "Routed", "Retrieved"]
    assert set(kinds[3:-1]) == {"Token"} and len(kinds) > 5
    assert kinds[-1] == "Done"
    rewritten, routed, retrieved = events[:3]
    assert rewritten == Rewritten(SCHEELE, used_lm=False)
    assert routed.route.kbs == ("science",) and routed.route.intent == "knowledge"
    assert retrieved.hits[0].doc_id in ("xq-en-12-0", "xq-zh-12-0")
    assert "".join(e.text for e in events if isinstance(e, Token)) == ANSWER

    reply = reply_of(events)
    assert not reply.refused and not reply.interrupted
    assert reply.citations and all(c.verified for c in reply.citations)
    assert reply.citations[0].doc_id == "xq-en-12-0"
    assert "1773" in reply.answer and reply.answer.endswith("].")
    assert reply.sources == retrieved.hits
    assert {"rewrite_ms", "retrieve_ms", "ttft_ms", "total_ms"} <= set(reply.timings)

    (stored,) = manager.store.history("s1")
    assert (stored.id, stored.answer, stored.interrupted) == (reply.turn_id, reply.answer, False)
    assert stored.rewritten_query == SCHEELE
    assert [e.doc_id for e in stored.evidence] == [h.doc_id for h in reply.sources]
    assert stored.citations[0].doc_id == "xq-en-12-0"


def test_answer_prompt_fences_numbered_passages(make_manager, scripted_lm):
    lm = scripted_lm([ANSWER])
    reply = reply_of(run(make_manager(lm), "s1", SCHEELE))
    system, user = lm.calls[0][0], lm.calls[0][-1]
    assert system["role"] == "system" and user == {"role": "user", "content": SCHEELE}
    # Only the passages holding the likeliest answering sentences (agent/context.evidence_hits)
    # go in, each under its rank among the sources, so [n] still points at the right source.
    shown = [int(n) for n in re.findall(r'<passage n="(\d+)"', system["content"])]
    assert shown and len(shown) <= len(reply.sources)
    assert set(shown) <= set(range(1, len(reply.sources) + 1))
    assert "Oxygen was discovered independently" in system["content"]


def test_passages_beyond_the_context_budget_stay_out_of_the_prompt(make_manager, scripted_lm):
    lm = scripted_lm([ANSWER])
    # ScriptedLM counts words: 30 leave room for the best passage's opening sentences only.
    reply = reply_of(run(make_manager(lm, context_tokens=30), "s1", SCHEELE))
    system = lm.calls[0][0]["content"]
    assert system.count("<passage n=") == 1 and '<passage n="1"' in system
    assert "Oxygen was discovered independently" in system
    assert len(reply.sources) > 1  # every retrieved passage is still shown
    assert reply.citations and reply.citations[0].verified


def test_refusal_when_the_gate_fails_keeps_the_closest_sources(make_manager, scripted_lm):
    lm = scripted_lm(["this must not be used"])
    reply = reply_of(run(make_manager(lm), "s1", MERCURY))
    assert reply.refused and not reply.citations
    assert reply.answer.startswith("The knowledge base does not cover this")
    assert reply.sources, "the closest sources are shown with a refusal"
    assert reply.notices[0].kind == "refusal"
    assert lm.calls == []


def test_model_refusal_is_a_refusal(make_manager, scripted_lm):
    # overrule_refusal = 1 takes every model refusal at its word (the default overrules a refusal
    # when the evidence scorer is confident, which it is about the Scheele sentence: see below).
    lm = scripted_lm(["The documents do not say."])
    reply = reply_of(run(make_manager(lm, overrule_refusal=1.0), "s", SCHEELE))
    assert reply.refused and reply.answer == "The documents do not say."
    assert [n.kind for n in reply.notices] == ["refusal"]


def test_model_refusal_is_overruled_by_confident_evidence(make_manager, scripted_lm):
    reply = reply_of(run(make_manager(scripted_lm(["The documents do not say."])), "s", SCHEELE))
    assert not reply.refused and reply.answer.startswith("The documents say: ")
    assert "1773" in reply.answer
    assert reply.citations and all(c.verified for c in reply.citations)


def test_unsupported_answer_becomes_a_cited_quote(make_manager, scripted_lm):
    lm = scripted_lm(["Bananas are yellow and grow in tropical countries [2]."])
    reply = reply_of(run(make_manager(lm), "s1", SCHEELE))
    assert reply.answer.startswith("The documents say: ")
    assert "Bananas" not in reply.answer
    (cite,) = reply.citations
    assert cite.verified and cite.doc_id == "xq-en-12-0"
    assert reply.answer.endswith(f" [{cite.n}].")
    assert cite.sentence in strip_markers(reply.answer)


def test_a_factual_question_gets_the_words_that_answer_it(make_manager, scripted_lm):
    # The real span reader (agent/span.py) over the real passage: "where" is answered by the
    # place, cited to the sentence that says it, whatever the model wrote. (Asked "When …?" over
    # the same sentence, which names Scheele's year and then Priestley's, the reader answers
    # Priestley's 1774 with 0.66: docs/EVALS.md has how often it misreads.)
    lm = scripted_lm(["舍勒发现了氧气 [1]。"])
    reply = reply_of(run(make_manager(lm, short_answer=0.5), "s1", "舍勒在哪里发现了氧气？"))
    (cite,) = reply.citations
    assert not reply.refused and reply.answer == "乌普萨拉 [1]。", reply.answer
    assert cite.verified and "乌普萨拉" in cite.supporting_text and cite.doc_id == "xq-zh-12-0"


def test_an_open_question_the_reader_finds_no_answer_to_is_refused(make_manager, scripted_lm):
    # The passages are on topic (the evidence scorer passes them); the span reader reads the three
    # likeliest sentences and finds no answer in any: a refusal with the sources, no generation.
    lm = scripted_lm(["this must not be used"])
    manager = make_manager(lm, no_answer=0.5)
    asked = []

    def none(question, sentences):
        asked.append((question, list(sentences)))
        return [0.9 for _ in sentences]

    manager.search = dataclasses.replace(manager.search, no_answer=none)
    reply = reply_of(run(manager, "s1", SCHEELE))
    assert reply.refused and reply.answer.startswith("The knowledge base does not cover this")
    assert reply.sources and lm.calls == []
    (question, sentences), *_ = asked
    assert question == SCHEELE and 1 <= len(sentences) <= 3
    assert reply.timings["no_answer"] == 0.9
    # A yes / no question is not the reader's to refuse: it is answered as before.
    asked.clear()
    lm = scripted_lm(["Scheele discovered oxygen [1]."] * 3)
    manager = make_manager(lm, no_answer=0.5)
    manager.search = dataclasses.replace(manager.search, no_answer=none)
    reply = reply_of(run(manager, "s2", "Did Scheele discover oxygen?"))
    assert not reply.refused and asked == []
    # Nor one answered from statutes, whose clauses it reads as no answer (docs/EVALS.md).
    legal = {kb: "legal" for kb in manager.kb_domains}
    manager.search = dataclasses.replace(manager.search, kb_domains=lambda: legal)
    reply = reply_of(run(manager, "s3", SCHEELE))
    assert not reply.refused and asked == []


def test_an_open_question_the_scorer_refuses_is_answered_when_the_reader_finds_the_answer(
    make_manager, scripted_lm
):
    # evidence_threshold 1: the scorer refuses every sentence (a paraphrase sharing few words
    # with its answer). The reader reads the three likeliest and finds the answer in one.
    def none(question, sentences):
        asked.append(list(sentences))
        return [0.01 if "1773" in s and answering else 0.9 for s in sentences]

    asked: list[list[str]] = []
    answering = True
    lm = scripted_lm([ANSWER])
    manager = make_manager(lm, evidence_threshold=1.0, read_answers=0.05)
    manager.search = dataclasses.replace(manager.search, no_answer=none)
    reply = reply_of(run(manager, "s1", SCHEELE))
    assert not reply.refused and "1773" in reply.answer and reply.citations[0].verified
    assert 1 <= len(asked[0]) <= 3 and reply.timings["read_answers"] == 0.01
    # No sentence reads as answered: the scorer's refusal stands, with the sources.
    answering = False
    lm = scripted_lm(["this must not be used"])
    manager = make_manager(lm, evidence_threshold=1.0, read_answers=0.05)
    manager.search = dataclasses.replace(manager.search, no_answer=none)
    reply = reply_of(run(manager, "s2", SCHEELE))
    assert reply.refused and reply.sources and lm.calls == []
    assert reply.timings["read_answers"] == 0.9
    # The reader learnt from pairs in one language: an English sentence it reads as answering
    # a Chinese question ("一个班有多少个孩子？" → "3 miles") is not read at all.
    seen: list[str] = []

    def across(question, sentences):
        seen.extend(sentences)
        return [0.9 if has_cjk(s) else 0.01 for s in sentences]

    manager = make_manager(scripted_lm(["unused"]), evidence_threshold=1.0, read_answers=0.05)
    manager.search = dataclasses.replace(manager.search, no_answer=across)
    reply = reply_of(run(manager, "s3", SCHEELE_ZH))
    assert any(not has_cjk(h.text) for h in reply.sources), "the test needs English hits too"
    assert reply.refused and seen and all(has_cjk(s) for s in seen)


def test_the_reader_picks_the_evidence_when_it_reads_the_scorers_as_holding_no_answer(
    make_manager, scripted_lm
):
    # The scorer's likeliest sentence (Scheele's 1773) reads as holding no answer; another of its
    # three likeliest reads as the answer: that one is the evidence the answer quotes.
    asked: list[list[str]] = []

    def none(question, sentences):
        asked.append(list(sentences))
        return [0.9 if "1773" in s else 0.01 for s in sentences]

    lm = scripted_lm(["this sentence is not supported by anything."])
    manager = make_manager(lm, reader_picks=0.3)
    manager.search = dataclasses.replace(manager.search, no_answer=none)
    reply = reply_of(run(manager, "s1", SCHEELE))
    (sentences,) = asked
    picked = next(s for s in sentences if "1773" not in s)
    assert not reply.refused and picked.rstrip(".") in reply.answer
    # Within the margin the scorer's choice stands.
    lm = scripted_lm(["this sentence is not supported by anything."])
    manager = make_manager(lm, reader_picks=0.95)
    manager.search = dataclasses.replace(manager.search, no_answer=none)
    reply = reply_of(run(manager, "s2", SCHEELE))
    assert "1773" in reply.answer


def test_sentence_cut_by_the_token_budget_is_dropped(make_manager, scripted_lm):
    more = " Joseph Priestley discovered oxygen in Wiltshire in 1774 [1]."
    budget = len(ANSWER.split()) + 5
    reply = reply_of(
        run(make_manager(scripted_lm([ANSWER + more]), max_new_tokens=budget), "s", SCHEELE)
    )
    assert reply.answer.startswith("Oxygen was discovered by Carl Wilhelm Scheele")
    # The cut sentence is gone (the evidence quote after the answer names Priestley too).
    assert "Priestley discovered" not in reply.answer and reply.timings["new_tokens"] == budget


def test_sentences_in_another_language_are_dropped(make_manager, scripted_lm):
    lm = scripted_lm(["舍勒于1773年发现了氧气 [1]。The following passage is about oxygen [1]."])
    reply = reply_of(run(make_manager(lm), "s", SCHEELE_ZH))
    assert reply.answer.startswith("舍勒于1773年发现了氧气 [1]。资料中写道：")
    assert "following passage" not in reply.answer
    assert reply.citations[0].doc_id == "xq-zh-12-0"


def test_non_strict_keeps_unsupported_sentences_flagged(make_manager, scripted_lm):
    lm = scripted_lm([ANSWER + " Bananas are yellow [1]."])
    reply = reply_of(run(make_manager(lm, strict=False), "s1", SCHEELE))
    assert "Bananas" in reply.answer and "1773" in reply.answer
    assert [c.verified for c in reply.citations] == [True, False]


def test_chitchat_skips_retrieval(make_manager, scripted_lm, recording_router):
    lm = scripted_lm(["Hello! Ask me about your documents."])
    events = run(make_manager(lm, recording_router("chitchat", "general")), "s1", "Hello!")
    assert not any(isinstance(e, Retrieved) for e in events)
    reply = reply_of(events)
    assert reply.answer == "Hello! Ask me about your documents."
    assert reply.sources == () and not reply.refused
    assert "friendly assistant" in lm.calls[0][0]["content"]


def test_chitchat_in_the_wrong_language_falls_back_to_a_prompt(
    make_manager, scripted_lm, recording_router
):
    lm = scripted_lm(["Hello! How can I help you today?"])
    reply = reply_of(run(make_manager(lm, recording_router("chitchat", "general")), "s1", "你好"))
    assert reply.answer.startswith("能再具体说明一下")


@pytest.mark.parametrize(("intent", "refused"), [("clarify", False), ("out_of_scope", True)])
def test_clarify_and_out_of_scope_answer_without_the_lm(
    make_manager, scripted_lm, recording_router, intent, refused
):
    lm = scripted_lm()
    events = run(make_manager(lm, recording_router(intent, "general")), "s1", "hmm")
    reply = reply_of(events)
    assert reply.refused is refused and reply.answer and lm.calls == []
    assert not any(isinstance(e, Retrieved) for e in events)


def test_an_answer_without_the_number_asked_for_gives_way_to_the_evidence(
    make_manager, scripted_lm
):
    # "When …?" answered with a sentence that matches the passage but states no date.
    lm = scripted_lm(["Carl Wilhelm Scheele discovered oxygen independently [1]."])
    reply = reply_of(run(make_manager(lm), "s1", SCHEELE))
    assert reply.answer.startswith("The documents say: ")
    assert any(ch.isdigit() for ch in strip_markers(reply.answer)), reply.answer
    assert reply.citations and all(c.verified for c in reply.citations)


@pytest.mark.parametrize("intent", ["out_of_scope", "clarify"])
def test_unsure_out_of_scope_verdict_is_a_refusal_with_sources(
    make_manager, scripted_lm, recording_router, intent
):
    # The router is not sure the question is outside the documents (or too vague: "学校的校长是谁？"
    # over a school notice got "say more"): the user gets the knowledge path's refusal with the
    # closest sources, never the canned out-of-scope reply or a request to rephrase.
    lm = scripted_lm(["this must not be used"])
    events = run(make_manager(lm, recording_router(intent, "general", 0.6)), "s1", MERCURY)
    reply = reply_of(events)
    assert reply.route.intent == "knowledge" and reply.refused
    assert reply.answer.startswith("The knowledge base does not cover this")
    assert reply.sources and any(isinstance(e, Retrieved) for e in events)
    assert lm.calls == []


def test_an_unsure_vague_message_that_asks_nothing_gets_the_clarifying_question(
    make_manager, scripted_lm, recording_router
):
    lm = scripted_lm()
    reply = reply_of(
        run(make_manager(lm, recording_router("clarify", "general", 0.6)), "s1", "hmm")
    )
    assert reply.route.intent == "clarify" and reply.answer.startswith("Could you say")
    assert not reply.refused and reply.sources == () and lm.calls == []


@pytest.mark.parametrize("intent", ["clarify", "chitchat"])
def test_unsure_small_talk_verdict_with_strong_evidence_is_answered(
    make_manager, scripted_lm, recording_router, intent
):
    lm = scripted_lm([ANSWER])
    events = run(make_manager(lm, recording_router(intent, "general", 0.6)), "s1", SCHEELE)
    reply = reply_of(events)
    assert reply.route.intent == "knowledge" and reply.route.method == "rule+evidence"
    assert any(isinstance(e, Retrieved) for e in events)
    assert not reply.refused and reply.citations and reply.citations[0].verified


def test_a_vague_message_in_a_conversation_is_read_as_a_follow_up(
    make_manager, scripted_lm, recording_router
):
    # "How many years exactly?" is too vague alone (the router says clarify) but not after a
    # question about oxygen: it is rewritten with the conversation and answered.
    class VagueAlone(recording_router):  # type: ignore[misc,valid-type]
        def route(self, text: str):
            route = super().route(text)
            vague = "oxygen" not in text.lower()
            intent = "clarify" if vague else "knowledge"
            return dataclasses.replace(route, intent=intent, intent_confidence=0.95)

    lm = scripted_lm([ANSWER, "When exactly did Carl Wilhelm Scheele discover oxygen?", ANSWER])
    manager = make_manager(lm, VagueAlone())
    run(manager, "s1", SCHEELE)
    events = run(manager, "s1", "In which year exactly?")
    reply = reply_of(events)
    assert events[0] == Rewritten("When exactly did Carl Wilhelm Scheele discover oxygen?", True)
    assert reply.route.intent == "knowledge" and not reply.refused
    assert "1773" in reply.answer and reply.citations[0].verified
    # Without a conversation the same message gets the clarifying question.
    alone = reply_of(run(manager, "s2", "In which year exactly?"))
    assert alone.route.intent == "clarify" and alone.answer.startswith("Could you say")


def test_a_question_refused_alone_is_asked_again_as_a_follow_up(make_manager, scripted_lm):
    # "In which year exactly?" names nothing it points back at and answers nothing alone; the
    # model's rewrite with the conversation does. A rewrite that still answers nothing is refused.
    rewritten = "When exactly did Carl Wilhelm Scheele discover oxygen?"
    lm = scripted_lm([ANSWER, rewritten, ANSWER, "Does the oxygen laboratory have a sauna?"])
    manager = make_manager(lm)
    run(manager, "s1", SCHEELE)
    reply = reply_of(run(manager, "s1", "In which year exactly?"))
    assert reply.rewritten_query == rewritten and not reply.refused
    assert "1773" in reply.answer and reply.citations[0].verified
    refused = reply_of(run(manager, "s1", "Do you have a sauna?"))
    assert refused.refused and refused.rewritten_query == "Do you have a sauna?"
    alone = reply_of(run(make_manager(scripted_lm()), "s2", "Do you have a sauna?"))
    # The failed retry's search is not what the turn reports.
    assert refused.timings["gate_strength"] == alone.timings["gate_strength"]
    assert lm.replies == []  # the model was asked to rewrite, not to answer


def test_a_question_taken_for_small_talk_is_checked_against_the_documents(
    make_manager, scripted_lm, recording_router
):
    # However sure the router is, a question whose documents are on its topic is not chatted
    # about; small talk that asks something ("How are you today?") stays small talk.
    lm = scripted_lm([ANSWER, "I'm well, thank you!"])
    manager = make_manager(lm, recording_router("chitchat", "general", 0.99))
    reply = reply_of(run(manager, "s1", SCHEELE))
    assert reply.route.intent == "knowledge" and "1773" in reply.answer
    chat = reply_of(run(manager, "s2", "How are you today?"))
    assert chat.route.intent == "chitchat" and chat.answer == "I'm well, thank you!"
    assert chat.sources == ()
    # Not sure it is small talk and nothing answers it: a refusal with the closest sources.
    unsure = make_manager(
        scripted_lm(["must not be used"]), recording_router("chitchat", "general", 0.6)
    )
    reply = reply_of(run(unsure, "s3", "Can I bring my friend along?"))
    assert reply.route.intent == "knowledge" and reply.refused and reply.sources


def test_a_question_to_chosen_knowledge_bases_is_answered_from_them_not_chatted_about(
    make_manager, scripted_lm, recording_router
):
    # "Do you offer acupuncture?" to a clinic's pages, taken for small talk at 0.95, got "I'm not
    # a licensed medical professional…"; put to the knowledge bases the user chose, a question
    # gets their answer or a refusal with the closest sources. A greeting stays small talk.
    lm = scripted_lm(["Hello! Ask me about your documents."])
    manager = make_manager(lm, recording_router("chitchat", "general", 0.99))
    reply = reply_of(run(manager, "s1", "Do you offer acupuncture?", kbs=["science"]))
    assert reply.route.intent == "knowledge" and reply.refused and reply.sources
    hello = reply_of(run(manager, "s2", "Hello!", kbs=["science"]))
    assert (
        hello.route.intent == "chitchat" and hello.answer == "Hello! Ask me about your documents."
    )
    assert lm.replies == []


def test_unsure_small_talk_without_evidence_stays_small_talk(
    make_manager, scripted_lm, recording_router
):
    lm = scripted_lm(["Hello! Ask me about your documents."])
    events = run(make_manager(lm, recording_router("chitchat", "general", 0.6)), "s1", "Hello!")
    reply = reply_of(events)
    assert reply.route.intent == "chitchat" and reply.sources == ()
    assert reply.answer == "Hello! Ask me about your documents."
    assert not any(isinstance(e, Retrieved) for e in events)


def test_stream_closed_mid_answer_stores_the_partial_answer(make_manager, scripted_lm):
    manager = make_manager(scripted_lm([ANSWER]))
    turn = manager.turn("s1", SCHEELE)
    seen = ""
    for event in turn:
        if isinstance(event, Token):
            seen += event.text
            if len(seen.split()) == 4:
                break
    turn.close()
    (stored,) = manager.store.history("s1")
    assert stored.interrupted and stored.answer == seen.strip()
    assert stored.answer == "Oxygen was discovered by"
    assert stored.citations == ()


def test_cancel_token_stops_generation(make_manager, scripted_lm):
    manager = make_manager(scripted_lm([ANSWER]))
    cancel = CancelToken()
    events = []
    for event in manager.turn("s1", SCHEELE, cancel=cancel):
        events.append(event)
        if isinstance(event, Token):
            cancel.cancel()
    reply = reply_of(events)
    assert reply.interrupted
    assert reply.answer == "Oxygen" and reply.timings["new_tokens"] == 1
    assert manager.store.history("s1")[0].interrupted


def test_lm_failure_stores_the_turn_as_interrupted(make_manager, scripted_lm):
    def fail(messages):
        raise LMError("server down")

    manager = make_manager(scripted_lm(respond=fail))
    with pytest.raises(LMError, match="server down"):
        run(manager, "s1", SCHEELE)
    (stored,) = manager.store.history("s1")
    assert stored.interrupted and stored.answer == ""


def test_history_is_used_across_turns(make_manager, scripted_lm):
    lm = scripted_lm(
        [
            ANSWER,
            "Who else discovered oxygen besides Carl Wilhelm Scheele?",
            "Joseph Priestley discovered oxygen in Wiltshire in 1774 [1].",
        ]
    )
    manager = make_manager(lm)
    run(manager, "s1", SCHEELE)
    events = run(manager, "s1", "And who else discovered it?")
    assert events[0] == Rewritten("Who else discovered oxygen besides Carl Wilhelm Scheele?", True)
    assert SCHEELE in lm.calls[1][0]["content"]  # the rewrite prompt shows the conversation
    answer_call = lm.calls[2]
    assert [m["role"] for m in answer_call] == ["system", "user", "assistant", "user"]
    assert answer_call[1]["content"] == SCHEELE and "1773" in answer_call[2]["content"]
    reply = reply_of(events)
    assert "Priestley" in reply.answer and reply.citations[0].verified
    assert [t.idx for t in manager.store.history("s1")] == [0, 1]


def test_emergency_message_gets_the_emergency_notice(make_manager, scripted_lm, recording_router):
    lm = scripted_lm(["Please get help now."])
    router = recording_router("chitchat", "general")
    reply = reply_of(run(make_manager(lm, router), "s1", "My father has chest pain right now"))
    assert [n.kind for n in reply.notices] == ["emergency", "medical"]


def test_sessions_on_threads_never_see_each_other(make_manager, scripted_lm):
    def echo(messages):
        last = messages[-1]["content"]
        return f"You asked: {last}" if messages[0]["role"] == "system" else "Standalone?"

    manager = make_manager(scripted_lm(respond=echo))
    asks = {"a": [SCHEELE, "And who else discovered it?"], "b": [SCHEELE_ZH, "还有谁发现了它？"]}
    streamed: dict[str, list[str]] = {"a": [], "b": []}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def chat(session: str) -> None:
        try:
            for message in asks[session]:
                barrier.wait(timeout=60)
                tokens = [e.text for e in manager.turn(session, message) if isinstance(e, Token)]
                streamed[session].append("".join(tokens))
        except BaseException as e:  # reported below; a thread's exception would be lost
            errors.append(e)

    threads = [threading.Thread(target=chat, args=(s,)) for s in asks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    for session, messages in asks.items():
        turns = manager.store.history(session)
        assert [t.user_text for t in turns] == messages
        # Each token stream is exactly this session's echo: no pieces of the other's answer.
        assert streamed[session] == [f"You asked: {t.rewritten_query}" for t in turns]
    queries = {s: {t.rewritten_query for t in manager.store.history(s)} for s in asks}
    for call in manager.lm.calls:
        if call[0]["role"] == "system":  # an answer prompt: its history is one session's
            users = {m["content"] for m in call[1:] if m["role"] == "user"}
            assert any(users <= mine for mine in queries.values()), users
