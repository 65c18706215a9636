"""Checks every entry point runs on a message before any model sees it: the CLI, the Python API,
the HTTP API and the chat refuse the same messages with the same words."""

from __future__ import annotations

from agent.config import MAX_MESSAGE_CHARS

__all__ = ["MAX_MESSAGE_CHARS", "MessageTooLongError", "check_message", "check_text"]


class MessageTooLongError(ValueError):
    """A message over `AgentConfig.max_message_chars`."""


def check_message(message: object, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`message` if it is a non-empty string of at most `limit` characters that can be stored
    (no lone surrogates); else ValueError (MessageTooLongError when it is too long)."""
    if not isinstance(message, str) or not message.strip():
        raise ValueError("the message is empty: type a question")
    if len(message) > limit:
        raise MessageTooLongError(
            f"the message has {len(message)} characters; the limit is {limit}: "
            "shorten it or split the question"
        )
    check_text(message, "the message")
    return message


def check_text(text: str, what: str) -> str:
    """`text` unless it holds a lone surrogate (not Unicode text) or a NUL character (which
    PostgreSQL cannot store, so neither store takes it): ValueError."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(
            f"{what} is not valid Unicode text (character {e.start} is a lone surrogate "
            f"{text[e.start]!r}); send UTF-8 text"
        ) from None
    if "\x00" in text:
        raise ValueError(
            f"{what} holds a NUL character (at {text.index(chr(0))}), which is not text; "
            "remove it and send again"
        )
    return text
