"""What `citewise ask` / `chat` print under an answer: each citation, and the sentence it rests on
when the answer does not already show it (a short answer, "1773 [1].", is checked against it)."""

from __future__ import annotations

from agent.types import Citation, Reply, Route
from ui.cli.ask import _print_reply

SENTENCE = "Oxygen was discovered by Carl Wilhelm Scheele in Uppsala in 1773 or earlier."
NEXT = "Priestley published first."


def _reply(answer: str, support: str) -> Reply:
    cite = Citation(1, "xq-en-12-0", "education", 7, "Oxygen", SENTENCE, answer, 1.0, support, True)
    return Reply(
        "s1", 1, "q", answer, "q", Route("knowledge", "education"), False, False, (cite,), (), ()
    )


def test_a_short_answer_prints_the_sentence_it_was_read_from(capsys):
    _print_reply(_reply("Uppsala [1].", SENTENCE))
    out = capsys.readouterr().out
    assert "[1] education/xq-en-12-0 Oxygen" in out and f"\u201c{SENTENCE}\u201d" in out


def test_a_quote_already_in_the_answer_is_not_printed_twice(capsys):
    # The quote's markers sit inside it ("… 1773 or earlier [1]. Priestley …").
    answer = f"The documents say: {SENTENCE[:-1]} [1]. {NEXT}"
    _print_reply(_reply(answer, f"{SENTENCE} {NEXT}"))
    assert "\u201c" not in capsys.readouterr().out
