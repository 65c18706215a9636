"""LangChain adapters: the hybrid retriever as a `BaseRetriever`, the local LM as a chat model.

They let citewise's parts run inside LCEL chains; `langchain-core` is imported only here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, SkipValidation

from agent.protocols import LM
from retrieval.search import HybridSearcher
from retrieval.types import Filters

_ROLES = {"human": "user", "ai": "assistant", "system": "system"}


class CitewiseRetriever(BaseRetriever):
    """Hybrid search over citewise knowledge bases; hit metadata rides in `Document.metadata`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    searcher: HybridSearcher
    kbs: Sequence[str]
    k: int = 5
    filters: Filters = Filters()

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[LCDocument]:
        hits = self.searcher.search(query, self.kbs, k=self.k, filters=self.filters)
        return [
            LCDocument(
                page_content=h.text,
                metadata={
                    "doc_id": h.doc_id,
                    "kb": h.kb,
                    "chunk_id": h.chunk_id,
                    "score": h.score,
                    "title": h.title,
                    "domain": h.domain,
                    "lang": h.lang,
                    "source": h.source,
                },
            )
            for h in hits
        ]


def _messages(messages: list[BaseMessage]) -> list[dict[str, str]]:
    out = []
    for m in messages:
        role = _ROLES.get(m.type)
        if role is None:
            raise ValueError(
                f"message type {m.type!r} is not supported; use system, human or ai messages"
            )
        out.append({"role": role, "content": m.text})
    return out


class CitewiseChatModel(BaseChatModel):
    """Any citewise LM (local transformers or OpenAI-compatible HTTP) as a LangChain chat model."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    lm: SkipValidation[LM]  # a Protocol: pydantic cannot check it with isinstance
    max_new_tokens: int = 256

    @property
    def _llm_type(self) -> str:
        return "citewise"

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        pieces = self.lm.stream(_messages(messages), max_new_tokens=self.max_new_tokens)
        text, emitted = "", 0
        try:
            for piece in pieces:
                text += piece
                cut = min((i for s in stop or () if (i := text.find(s)) >= 0), default=-1)
                new = text[emitted : cut if cut >= 0 else len(text)]
                emitted += len(new)
                if new:
                    chunk = ChatGenerationChunk(message=AIMessageChunk(content=new))
                    if run_manager:
                        run_manager.on_llm_new_token(new, chunk=chunk)
                    yield chunk
                if cut >= 0:
                    return
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()  # a stop sequence ends the generation, not only the output

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = "".join(c.text for c in self._stream(messages, stop, run_manager, **kwargs))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])
