"""Dialogue manager, LM backends, router and the Python agent API.

`from agent import Agent` is all a user needs; heavy libraries load when an Agent is built.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.api import Agent

__all__ = ["Agent"]


def __getattr__(name: str) -> Any:
    if name == "Agent":
        from agent.api import Agent

        return Agent
    raise AttributeError(name)
