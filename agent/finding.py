"""Search a turn's knowledge bases and weigh what comes back with the evidence gate; when the
router's choice does not answer, search the other knowledge bases before refusing ("How many
DVDs can a child borrow?" reads as legal, the library rules are filed under education)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from agent.config import TurnConfig
from agent.evidence import EvidenceFinder
from agent.gate import DEFAULT_THRESHOLD, GateDecision, weigh
from agent.turn_state import TurnState, elapsed_ms
from agent.types import Route
from retrieval.search import HybridSearcher
from retrieval.types import Filters


@dataclass(frozen=True)
class Search:
    searcher: HybridSearcher
    finder: EvidenceFinder
    config: TurnConfig
    kb_domains: Callable[[], Mapping[str, str]]  # every knowledge base, read per turn

    def find(
        self,
        state: TurnState,
        route: Route,
        filters: Filters | None,
        timings: dict[str, float],
        t0: float,
    ) -> GateDecision:
        """Search the route's knowledge bases into `state.hits` and weigh them; when they do not
        answer and the router (not the user) chose them, search the other knowledge bases."""
        k = self.config.k
        state.hits = tuple(self.searcher.search(state.query, route.kbs, k=k, filters=filters))
        timings["retrieve_ms"] = elapsed_ms(t0)
        decision = self.weigh(state, timings)
        every = tuple(self.kb_domains())
        others = tuple(kb for kb in every if kb not in route.kbs)
        if decision.passed or state.kbs_given or not others:
            return decision
        # The route's own knowledge bases were searched and did not answer: not again.
        wide = tuple(self.searcher.search(state.query, others, k=k, filters=filters))
        timings["widened_ms"] = elapsed_ms(t0)
        widened = self.weigh(dataclasses.replace(state, hits=wide), timings)
        if widened.passed or (widened.on_topic and not decision.on_topic):
            state.hits = wide
            state.route = dataclasses.replace(route, kbs=every, method=f"{route.method}+widened")
            return widened
        timings["gate_strength"] = round(decision.strength, 4)
        return decision

    def weigh(self, state: TurnState, timings: dict[str, float]) -> GateDecision:
        """The evidence gate's verdict on `state.hits`."""
        cfg = self.config
        decision = weigh(
            state.query,
            state.hits,
            self.finder,
            DEFAULT_THRESHOLD if cfg.gate_threshold is None else cfg.gate_threshold,
            cfg.evidence_threshold,
        )
        timings["gate_strength"] = round(decision.strength, 4)
        return decision
