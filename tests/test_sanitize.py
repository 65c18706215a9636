"""What the answer sanitizer keeps: no copied prompt markup, no repeated sentences."""

from __future__ import annotations

from agent.sanitize import usable


def test_sentences_carrying_the_prompt_fence_are_dropped():
    text = 'Oxygen was found in 1773 [1]. The passage is: <passage n="1"> Oxygen... [1].'
    assert usable(text, secret="", lang="en", truncated=False) == "Oxygen was found in 1773 [1]."


def test_a_repeated_sentence_is_shown_once():
    text = "氧气于1773年被发现[1]。氧气于1773年被发现[1]。氧气于1773年被发现[1]。"
    assert usable(text, secret="", lang="zh", truncated=False) == "氧气于1773年被发现[1]。"
