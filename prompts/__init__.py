"""Jinja prompt templates and the one function that renders them.

Templates live beside this file as `<intent>/<domain>.<lang>.jinja`, falling back to
`<intent>/<lang>.jinja`. Rendering is strict: a missing variable is an error, never an empty string.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

_DIR = Path(__file__).parent


@cache
def _env() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(
        loader=FileSystemLoader(_DIR),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def template_for(intent: str, lang: str, domain: str = "general") -> str:
    """The most specific template name that exists for this intent, language and domain."""
    for name in (f"{intent}/{domain}.{lang}.jinja", f"{intent}/{lang}.jinja", f"{intent}/en.jinja"):
        if (_DIR / name).is_file():
            return name
    raise FileNotFoundError(f"no prompt template for intent {intent!r} in {_DIR}")


def render(intent: str, lang: str, domain: str = "general", **variables: Any) -> str:
    """Render the template for (intent, lang, domain) with `variables`."""
    text: str = _env().get_template(template_for(intent, lang, domain)).render(**variables)
    return text.strip()


def fence(text: str) -> str:
    """Quote document text so it cannot close the passage fence it is placed in."""
    return text.replace("</passage", "<\\/passage").replace("<passage", "<\\passage")
