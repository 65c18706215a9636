"""The chat page's pure parts, without a browser: answer and sources HTML, interface language,
upload limits, knowledge-base scope."""

from __future__ import annotations

import dataclasses

import pytest

from agent.state import EvidenceRecord, TurnRecord
from agent.types import Citation, Notice, Reply, Route
from retrieval.types import Filters, Hit
from ui.settings import ServerSettings
from ui.web.answer import ANY, AUTO, scope
from ui.web.i18n import STRINGS, Labels, browser_lang, t
from ui.web.kb_tab import check_uploads
from ui.web.render import (
    Snippet,
    SourceView,
    answer_html,
    details_markdown,
    esc,
    reply_sources,
    snippet,
    sources_html,
    turn_sources,
)

PASSAGE = (
    "Oxygen was discovered independently by Carl Wilhelm Scheele, in Uppsala, in 1773 or "
    "earlier, and Joseph Priestley in Wiltshire, in 1774. Priority is often given for Priestley."
)
SUPPORT = "Oxygen was discovered independently by Carl Wilhelm Scheele, in Uppsala, in 1773 or earlier, and Joseph Priestley in Wiltshire, in 1774."  # noqa: E501


def _hit(chunk_id: int = 7, text: str = PASSAGE) -> Hit:
    return Hit(chunk_id, "xq-en-12-0", "education", 0.9, text, "Oxygen", "education", "en")


def _citation(n: int = 1, verified: bool = True, chunk_id: int = 7) -> Citation:
    return Citation(
        n, "xq-en-12-0", "education", chunk_id, "Oxygen", PASSAGE[:300], "Scheele found it [1].",
        0.8 if verified else 0.1, SUPPORT if verified else "", verified,
    )  # fmt: skip


def _reply(citations=(), refused=False, notices=(), sources=None) -> Reply:
    return Reply(
        "s1", 3, "who?", "Scheele found it [1].", "who discovered oxygen?",
        Route("knowledge", "education", kbs=("education",)), refused, False, tuple(citations),
        tuple(sources if sources is not None else [_hit()]), tuple(notices),
    )  # fmt: skip


def test_sources_panel_shows_title_domain_and_highlighted_support():
    html = sources_html(reply_sources(_reply([_citation()]), {}), "en")
    assert "<b>Oxygen</b>" in html
    assert '<span class="cw-domain">education</span>' in html
    assert f"<mark>{SUPPORT}</mark>" in html
    assert "education / xq-en-12-0" in html
    assert "cw-unverified" not in html and "Sources (1)" in html


def test_unverified_citation_is_marked_and_not_highlighted():
    html = sources_html(reply_sources(_reply([_citation(verified=False)]), {}), "zh")
    assert 'class="cw-source cw-unverified"' in html
    assert "未核实" in html and "<mark>" not in html
    assert "来源 (1)" in html


def test_citations_of_one_passage_share_an_entry():
    views = reply_sources(_reply([_citation(), _citation(verified=False)]), {})
    assert len(views) == 1 and views[0].verified and views[0].highlights == (SUPPORT,)


def test_refused_answer_lists_closest_passages_as_not_cited():
    hits = [_hit(i, f"passage {i}") for i in range(5)]
    views = reply_sources(_reply(refused=True, sources=hits), {})
    assert [v.text for v in views] == ["passage 0", "passage 1", "passage 2"]
    html = sources_html(views, "en")
    assert "Closest passages (not cited) (3)" in html and "cw-unverified" not in html


def test_model_text_is_escaped_everywhere():
    evil = '<img src=x onerror="alert(1)"> **bold**'
    cite = dataclasses.replace(_citation(), title=evil, supporting_text="")
    views = reply_sources(_reply([cite], sources=[_hit(text=evil)]), {})
    html = answer_html(evil, [Notice("medical", evil)], views, "en")
    assert "<img" not in html and "&lt;img" in html
    assert "\\*\\*bold\\*\\*" in html  # Markdown would otherwise make it bold
    assert esc("a_b") == "a\\_b"


def test_notices_are_set_apart_by_kind():
    html = answer_html(
        "x", [Notice("emergency", "Call 120."), Notice("legal", "Not advice.")], [], "en"
    )
    assert '<div class="cw-notice cw-notice-emergency" role="note">Call 120.</div>' in html
    assert "cw-notice-legal" in html
    assert answer_html("x", [], [], "en", interrupted=True).count("(stopped)") == 1


def test_snippet_windows_long_passages_around_the_support():
    text = "filler. " * 200 + "The key sentence. " + "tail. " * 200
    out = snippet(text, ["The key sentence."], width=200)
    assert ("The key sentence.", True) in out.pieces
    assert out.cut_start and out.cut_end and sum(len(p) for p, _ in out.pieces) == 200
    assert snippet("abc", ["not there"]) == Snippet((("abc", False),), False, False)
    view = SourceView(1, "t", "kb", "d", "general", "<b>x</b> The key sentence.", ("x",), True)
    html = sources_html([view], "en")  # through the template: marked and escaped
    assert "&lt;b&gt;<mark>x</mark>&lt;/b&gt;" in html


def test_stored_turn_renders_like_the_live_reply():
    cite = _citation()
    turn = TurnRecord(
        user_text="who?",
        answer="Scheele found it [1].",
        citations=(cite,),
        notices=(Notice("medical", "Not medical advice. Ask a doctor."),),
        evidence=(EvidenceRecord("education", "xq-en-12-0", 7, 0.9, PASSAGE, "Oxygen"),),
    )
    live = sources_html(reply_sources(_reply([_citation()]), {"education": "education"}), "en")
    stored = sources_html(turn_sources(turn, {"education": "education"}), "en")
    assert stored == live
    assert answer_html(turn.answer, turn.notices, [], "en") == answer_html(
        turn.answer, [Notice("medical", "Not medical advice. Ask a doctor.")], [], "en"
    )


def test_details_show_rewrite_route_and_timings():
    route = Route("knowledge", "legal", 0.91, 0.8, "prototype", ("legal",))
    md = details_markdown("who may register?", route, 5, {"ttft_ms": 412.4, "new_tokens": 9}, "en")
    assert "**Searched for:** who may register?" in md
    assert "knowledge / legal (prototype; 0.91 / 0.80)" in md
    assert "legal" in md and "**Passages retrieved:** 5" in md and "ttft_ms 412" in md
    assert "new_tokens" not in md
    assert details_markdown("", None, None, {}, "zh") == t("no_details", "zh")


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-US,en;q=0.9", "en"),
        ("en;q=0.5,zh-TW;q=0.8", "zh"),
        ("fr-FR,fr;q=0.9", "en"),
        ("", "en"),
        (None, "en"),
        ("zh;q=bad,en", "en"),
    ],
)
def test_browser_language(header, lang):
    assert browser_lang(header) == lang


def test_every_string_has_both_languages_and_the_same_fields():
    import string

    for key, texts in STRINGS.items():
        assert set(texts) == {"en", "zh"}, key
        fields = [{f for _, f, _, _ in string.Formatter().parse(v) if f} for v in texts.values()]
        assert fields[0] == fields[1], key


def test_labels_switch_language():
    class Box:  # stands in for a component: Labels only keeps it
        pass

    labels = Labels()
    labels.add(Box(), label="message", placeholder="message_ph")
    labels.add_computed(Box(), lambda lang: {"choices": [t("domain_any", lang)]})
    first, second = labels.updates("zh")
    assert first["label"] == "您的问题" and first["placeholder"].startswith("就您的文档")
    assert second["choices"] == ["所有领域"]


def test_upload_limits_are_checked_before_reading(tmp_path):
    settings = ServerSettings(max_upload_mb=0.001, max_upload_files=3)
    small = tmp_path / "a.txt"
    small.write_text("short")
    big = tmp_path / "b.md"
    big.write_text("x" * 5000)
    exe = tmp_path / "c.exe"
    exe.write_text("MZ")
    check = check_uploads([str(small), str(big), str(exe)], settings, "en")
    assert check.accepted == [small]
    assert check.rejected[0].startswith("skipped: b.md is 0.0 MB; the limit is 0.001 MB")
    assert check.rejected[1].startswith("skipped: c.exe: type .exe is not accepted")
    too_many = check_uploads([str(small)] * 4, settings, "zh")
    assert "the limit is 3" in too_many.error and not too_many.accepted
    assert check_uploads([], settings, "zh").error == t("no_files", "zh")


def test_scope_of_selector_values():
    from types import SimpleNamespace

    # scope() reads only the knowledge-base domains
    agent = SimpleNamespace(kb_domains=lambda: {"legal": "legal", "medical": "x"})
    assert scope(agent, AUTO, ANY) == (None, None)  # type: ignore[arg-type]
    assert scope(agent, "legal", ANY) == (["legal"], None)  # type: ignore[arg-type]
    assert scope(agent, AUTO, "medical") == (  # type: ignore[arg-type]
        ["legal", "medical"],
        Filters(domain="medical"),
    )
