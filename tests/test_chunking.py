"""chunk_text: offsets, coverage and token limits on real texts; the boundaries it promises."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from retrieval.chunking import chunk_text
from retrieval.demo import demo_corpus_files
from retrieval.types import Span

EVALSETS = Path(
    os.environ.get("CITEWISE_EVALSETS", Path(__file__).resolve().parents[2] / "shared" / "evalsets")
)
PROPERTY_SETS = ("stard", "xquad-zh", "xquad-en", "pubmedqa", "cmb-clin")
SETTINGS = [(128, 0), (64, 16)]  # (max_tokens, overlap_tokens)


def assert_valid(
    text: str, spans: list[Span], count: Callable[[str], int], max_tokens: int, overlap: int
) -> None:
    covered = bytearray(len(text))
    previous: Span | None = None
    for span in spans:
        assert text[span.start : span.end] == span.text
        assert span.text and span.text == span.text.strip()
        assert count(span.text) <= max_tokens, (count(span.text), span.text[:80])
        if previous is not None:
            assert span.start > previous.start
            if not overlap:
                assert span.start >= previous.end
        covered[span.start : span.end] = b"\x01" * (span.end - span.start)
        previous = span
    missed = [i for i, c in enumerate(text) if not covered[i] and not c.isspace()]
    assert not missed, f"characters not in any span: {text[missed[0] : missed[0] + 20]!r}"


def read_texts(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8") as f:
        return [(d["text"], d["lang"]) for d in map(json.loads, f)]


@pytest.mark.parametrize(("max_tokens", "overlap"), SETTINGS)
def test_invariants_on_the_demo_corpus(minilm_count_tokens, max_tokens, overlap):
    texts = [t for path in demo_corpus_files().values() for t in read_texts(path)]
    assert {lang for _, lang in texts} == {"en", "zh"}
    split = 0
    for text, _ in texts:
        spans = chunk_text(
            text,
            count_tokens=minilm_count_tokens,
            max_tokens=max_tokens,
            overlap_tokens=overlap,
        )
        assert_valid(text, spans, minilm_count_tokens, max_tokens, overlap)
        split += len(spans) > 1
    assert split > 50  # the limits really were exercised


@pytest.mark.slow
@pytest.mark.skipif(not EVALSETS.is_dir(), reason=f"evaluation sets not found at {EVALSETS}")
@pytest.mark.parametrize("name", PROPERTY_SETS)
@pytest.mark.parametrize(("max_tokens", "overlap"), SETTINGS)
def test_invariants_on_every_evalset_text(minilm_count_tokens, name, max_tokens, overlap):
    for text, _ in read_texts(EVALSETS / name / "corpus.jsonl"):
        spans = chunk_text(
            text,
            count_tokens=minilm_count_tokens,
            max_tokens=max_tokens,
            overlap_tokens=overlap,
        )
        assert_valid(text, spans, minilm_count_tokens, max_tokens, overlap)


def test_text_that_fits_is_one_span_found_with_one_count():
    calls: list[str] = []

    def count(s: str) -> int:
        calls.append(s)
        return len(s)

    text = "\n  依法成立的合同，受法律保护。\n\n"
    assert chunk_text(text, count_tokens=count, max_tokens=100) == [
        Span("依法成立的合同，受法律保护。", 3, 17)
    ]
    assert len(calls) == 1


def test_whitespace_only_text_has_no_spans():
    assert chunk_text(" \n\n\t ", count_tokens=len, max_tokens=10) == []


ARTICLES = [
    "第五十四条　自然人从事工商业经营，经依法登记，为个体工商户。个体工商户可以起字号。",
    "第五十五条　农村集体经济组织的成员，依法取得农村土地承包经营权，从事家庭承包经营的，"
    "为农村承包经营户。",
    "第五十六条　个体工商户的债务，个人经营的，以个人财产承担；家庭经营的，以家庭财产承担；"
    "无法区分的，以家庭财产承担。\n\n农村承包经营户的债务，以从事农村土地承包经营的农户财产承担；"
    "事实上由农户部分成员经营的，以该部分成员的财产承担。",
    "第五十七条　法人是具有民事权利能力和民事行为能力，依法独立享有民事权利和承担民事义务的组织。",
    "第五十八条　法人应当依法成立。\n\n法人应当有自己的名称、组织机构、住所、财产或者经费。"
    "法人成立的具体条件和程序，依照法律、行政法规的规定。",
]


def test_statute_articles_are_kept_whole(minilm_count_tokens):
    law = "中华人民共和国民法典\n第三章　法人\n" + "\n".join(ARTICLES)
    longest = max(minilm_count_tokens(a) for a in ARTICLES)
    spans = chunk_text(law, count_tokens=minilm_count_tokens, max_tokens=longest + 10)
    assert len(spans) > 2
    for span in spans[1:]:
        # Each span is a run of whole articles: it starts at one and ends where one ends.
        assert span.text.startswith("第五十")
        assert any(span.text.endswith(a) for a in ARTICLES)
    assert [a for a in ARTICLES if not any(a in s.text for s in spans)] == []


def test_an_article_too_long_for_one_span_is_cut_inside_itself_only():
    law = "\n".join(ARTICLES)
    starts = [law.index(a) for a in ARTICLES]
    long_start = starts[2]
    long_end = long_start + len(ARTICLES[2])
    assert len(ARTICLES[2]) > 110 > max(len(a) for i, a in enumerate(ARTICLES) if i != 2)
    spans = chunk_text(law, count_tokens=len, max_tokens=110)
    inside = [s for s in spans if s.start < long_end and s.end > long_start]
    assert len(inside) == 2
    assert all(long_start <= s.start and s.end <= long_end for s in inside)
    assert inside[1].text.startswith("农村承包经营户的债务")  # cut at its paragraph break
    assert all(s.start in starts for s in spans if s not in inside)


def test_chinese_sentences_end_with_their_mark(minilm_count_tokens):
    sentences = [
        "黑豹队的防守只丢了308分，在联赛中排名第六。",
        "职业碗防守截锋卡万·肖特以11次擒杀领先全队！",
        "他还迫使对手三次掉球，并两次重新拿到球？",
        "马里奥·爱迪生贡献了6次半擒杀；",
        "防线上还有经验丰富的防守端锋贾里德·艾伦。",
    ] * 4
    text = "".join(sentences)
    spans = chunk_text(text, count_tokens=minilm_count_tokens, max_tokens=40)
    assert len(spans) > 3
    for span in spans:
        assert span.text[-1] in "。！？；"
        assert span.text[0] not in "。！？；，"
    assert_valid(text, spans, minilm_count_tokens, 40, 0)


def test_english_sentences_and_markdown_headings_are_boundaries(minilm_count_tokens):
    section = (
        "Oxygen was discovered independently by Carl Wilhelm Scheele, in Uppsala, in 1773. "
        "Joseph Priestley published his findings first, in 1774! Was Lavoisier the first "
        "to recognise it as an element? Many historians say so.\n\n"
    )
    text = f"# Oxygen\n\n{section}{section}## History\n\n{section}{section}"
    spans = chunk_text(text, count_tokens=minilm_count_tokens, max_tokens=40)
    assert any(s.text.startswith("## History") for s in spans)
    for span in spans:
        assert span.text.endswith((".", "!", "?", "# Oxygen", "## History"))
    assert_valid(text, spans, minilm_count_tokens, 40, 0)


def test_overlap_repeats_the_end_of_the_previous_span(minilm_count_tokens):
    text = " ".join(f"Sentence number {i} is about the demo corpus." for i in range(40))
    spans = chunk_text(text, count_tokens=minilm_count_tokens, max_tokens=50, overlap_tokens=20)
    assert len(spans) > 3
    assert all(b.start < a.end for a, b in itertools.pairwise(spans))
    assert_valid(text, spans, minilm_count_tokens, 50, 20)


def test_a_tokenizer_that_counts_joined_text_higher_is_still_respected():
    # Counts 10 extra whenever two words touch: the splitter's sum of parts underestimates.
    def count(s: str) -> int:
        return len(s) + 10 * s.count("d w")

    text = "word " * 60
    spans = chunk_text(text, count_tokens=count, max_tokens=30)
    assert_valid(text, spans, count, 30, 0)


@pytest.mark.parametrize(
    ("max_tokens", "overlap", "message"),
    [(0, 0, "max_tokens must be at least 1"), (10, 10, "overlap_tokens must be in")],
)
def test_bad_limits_are_refused(max_tokens, overlap, message):
    with pytest.raises(ValueError, match=message):
        chunk_text("text", count_tokens=len, max_tokens=max_tokens, overlap_tokens=overlap)


def test_a_limit_below_one_character_says_so():
    with pytest.raises(ValueError, match="too small"):
        chunk_text("abc def", count_tokens=lambda s: len(s) + 2, max_tokens=2)


@pytest.mark.parametrize("overlap", [0, 4, 6])
def test_repeated_text_is_placed_in_order_and_fully_covered(overlap):
    # Identical chunks can be found at many offsets; each must land where it tiles the text.
    text = "word " * 60 + "end."
    spans = chunk_text(text, count_tokens=len, max_tokens=12, overlap_tokens=overlap)
    assert spans[-1].text.endswith("end.")
    assert_valid(text, spans, len, 12, overlap)
