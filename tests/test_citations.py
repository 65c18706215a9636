"""Citation verification with the real e5 verifier: sentence splitting, markers, support, repair."""

from __future__ import annotations

import pytest

from agent.citations import (
    SupportConfig,
    SupportScorer,
    markers,
    split_sentences,
    strip_markers,
    verify,
    with_markers,
)
from retrieval.types import Hit

OXYGEN = (
    "Oxygen was discovered independently by Carl Wilhelm Scheele, in Uppsala, in 1773 or "
    "earlier, and Joseph Priestley in Wiltshire, in 1774, but Priestley is often given priority "
    "because his work was published first. The name oxygen was coined in 1777 by Antoine "
    "Lavoisier."
)
PANTHERS = (
    "The Panthers defense gave up just 308 points, ranking sixth in the league, while also "
    "leading the NFL in interceptions with 24 and boasting four Pro Bowl selections."
)
OXYGEN_ZH = (
    "卡尔·威尔海姆·舍勒于 1773 年或更早在乌普萨拉独立发现了氧气。"
    "约瑟夫·普利斯特里于 1774 年在威尔特郡也发现了氧气。"
)


def hit(n: int, text: str) -> Hit:
    return Hit(chunk_id=n, doc_id=f"doc-{n}", kb="kb", score=1.0, text=text, title=f"T{n}")


@pytest.fixture(scope="module")
def scorer(e5_embedder) -> SupportScorer:
    return SupportScorer(e5_embedder)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A is B [1]. C is D [2] [3].", ["A is B [1].", "C is D [2] [3]."]),
        ("The dose is 3.5 mg [1]. Next.", ["The dose is 3.5 mg [1].", "Next."]),
        ("It is in the U.S. Army. E.g. this", ["It is in the U.S. Army.", "E.g. this"]),
        ("See e.g. the law [2].", ["See e.g. the law [2]."]),
        ("甲是乙。[1]乙是丙 [2]。丙！丁", ["甲是乙。[1]", "乙是丙 [2]。", "丙！", "丁"]),
        ("First line\nsecond line [1]", ["First line", "second line [1]"]),
        ("", []),
        ("[1] .", []),
    ],
)
def test_split_sentences_keeps_all_text_and_markers(text, expected):
    assert split_sentences(text) == expected


def test_markers_forms_and_stripping():
    assert markers("A [2] and B [1, 2]【3】 [2024].") == [2, 1, 3]
    assert markers("甲是乙[1]，丙[2]。") == [1, 2]
    assert strip_markers("A is B [1] [2].") == "A is B."
    assert with_markers("A is B.", [2]) == "A is B [2]."
    assert with_markers("甲是乙。", [1]) == "甲是乙 [1]。"


def test_supported_sentence_scores_above_invented_one(scorer):
    supported, _ = scorer.support("Scheele discovered oxygen in 1773.", OXYGEN)
    invented, _ = scorer.support("The Eiffel Tower is 330 metres tall.", OXYGEN)
    threshold = scorer.config.threshold
    assert supported >= threshold > invented


def test_support_names_the_passage_sentence_that_supports(scorer):
    _, best = scorer.support("Lavoisier named oxygen in 1777.", OXYGEN)
    assert best.startswith("The name oxygen was coined in 1777")


def test_cross_lingual_support_uses_meaning_alone(scorer):
    support, best = scorer.support("Scheele discovered oxygen in 1773.", OXYGEN_ZH)
    assert support >= scorer.config.threshold
    assert "舍勒" in best
    unrelated, _ = scorer.support("The Panthers gave up 308 points.", OXYGEN_ZH)
    assert unrelated < scorer.config.threshold


def test_verify_keeps_supported_citation(scorer):
    result = verify("Scheele discovered oxygen in 1773 [1].", [hit(1, OXYGEN)], scorer)
    assert result.grounded == "Scheele discovered oxygen in 1773 [1]."
    (c,) = result.citations
    assert (c.n, c.doc_id, c.verified) == (1, "doc-1", True)
    assert c.sentence == "Scheele discovered oxygen in 1773."
    assert "1773" in c.supporting_text


def test_verify_says_a_repeated_sentence_once(scorer):
    # SmolLM2 wrote "The answer is: 1 [1]. The answer is: 1 [1]" over the paracetamol leaflet.
    answer = "Scheele discovered oxygen in 1773 [1]. Scheele discovered oxygen in 1773 [1]"
    result = verify(answer, [hit(1, OXYGEN)], scorer)
    assert result.grounded == "Scheele discovered oxygen in 1773 [1]."
    assert len(result.citations) == 1 and result.citations[0].verified


def test_verify_flags_invented_sentence(scorer):
    answer = "Scheele discovered oxygen in 1773 [1]. The Eiffel Tower is 330 metres tall [1]."
    result = verify(answer, [hit(1, OXYGEN), hit(2, PANTHERS)], scorer)
    assert result.grounded == "Scheele discovered oxygen in 1773 [1]."
    assert result.unsupported_sentences == ("The Eiffel Tower is 330 metres tall.",)
    assert [c.verified for c in result.citations] == [True, False]
    assert "Eiffel" in result.text  # the full text keeps it, flagged, for non-strict display


def test_verify_removes_dangling_marker(scorer):
    result = verify("Scheele discovered oxygen in 1773 [9].", [hit(1, OXYGEN)], scorer)
    assert "[9]" not in result.text and "[9]" not in result.grounded
    assert all(c.n == 1 for c in result.citations)


def test_verify_attaches_the_right_passage_to_uncited_sentence(scorer):
    passages = [hit(1, PANTHERS), hit(2, OXYGEN)]
    result = verify("Lavoisier coined the name oxygen in 1777.", passages, scorer)
    assert result.grounded == "Lavoisier coined the name oxygen in 1777 [2]."
    assert [(c.n, c.doc_id, c.verified) for c in result.citations] == [(2, "doc-2", True)]


def test_verify_moves_a_wrong_citation_to_the_supporting_passage(scorer):
    passages = [hit(1, PANTHERS), hit(2, OXYGEN)]
    result = verify("Priestley found oxygen in Wiltshire in 1774 [1].", passages, scorer)
    assert result.grounded.endswith("[2].")
    assert [(c.n, c.verified) for c in result.citations] == [(1, False), (2, True)]


def test_verify_chinese_answer(scorer):
    answer = "舍勒于1773年发现了氧气[1]。埃菲尔铁塔高330米[1]。"
    result = verify(answer, [hit(1, OXYGEN_ZH)], scorer)
    assert result.grounded == "舍勒于1773年发现了氧气 [1]。"
    assert result.unsupported_sentences == ("埃菲尔铁塔高330米。",)


def test_config_rejects_impossible_values():
    with pytest.raises(ValueError, match="threshold"):
        SupportConfig(threshold=1.5)
    with pytest.raises(ValueError, match="semantic_floor"):
        SupportConfig(semantic_floor=1.0)


def test_passage_sentences_are_embedded_once(e5_embedder):
    class Counting:
        """The real e5, counting the passage texts it is asked to embed."""

        name, dim, max_tokens = e5_embedder.name, e5_embedder.dim, e5_embedder.max_tokens

        def __init__(self) -> None:
            self.embedded: list[str] = []

        def embed_documents(self, texts):
            self.embedded += list(texts)
            return e5_embedder.embed_documents(texts)

        def embed_query(self, text):
            return e5_embedder.embed_query(text)

        def count_tokens(self, text):
            return e5_embedder.count_tokens(text)

    counting = Counting()
    scorer = SupportScorer(counting, cache_size=3)
    first = scorer.support("Scheele discovered oxygen in 1773.", OXYGEN)
    assert len(counting.embedded) == 2  # the passage's two sentences
    assert scorer.support("Scheele discovered oxygen in 1773.", OXYGEN) == first
    assert len(counting.embedded) == 2  # the gate and the verifier of one turn share them
    scorer.support("The Panthers gave up 308 points.", PANTHERS + " " + OXYGEN_ZH)
    assert len(scorer._cache) == 3  # bounded: the oldest went out


def test_a_restated_question_is_not_a_supported_claim(scorer):
    answer = "When did Scheele discover oxygen [1]? Scheele discovered oxygen in 1773 [1]."
    result = verify(answer, [hit(1, OXYGEN)], scorer)
    assert result.grounded == "Scheele discovered oxygen in 1773 [1]."
    assert result.unsupported_sentences == ("When did Scheele discover oxygen?",)
    assert len(result.citations) == 1


def test_pronouns_do_not_carry_an_invented_claim(scorer):
    # Seen asking our own dental-practice page: "we will inform you immediately" verified on the
    # passage's "we" and "us"; what it claims ("inform", "immediately") is in no passage.
    passage = (
        "Please arrive 10 minutes before your appointment so that we can update your medical "
        "history. If you need to cancel, tell us at least 24 hours in advance; appointments "
        "missed without notice are charged a £25 fee."
    )
    question = "What happens if I miss an appointment without telling you?"
    invented = "If you miss an appointment without telling us, we will inform you immediately [1]."
    assert verify(invented, [hit(1, passage)], scorer, question=question).grounded == ""
    stated = "Appointments missed without notice are charged a £25 fee [1]."
    assert verify(stated, [hit(1, passage)], scorer, question=question).grounded == stated
