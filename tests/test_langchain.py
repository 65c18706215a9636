"""LangChain adapters: the hybrid retriever and any citewise LM inside LCEL chains."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, ChatMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough

from agent.langchain import CitewiseChatModel, CitewiseRetriever
from retrieval.lang import detect_lang
from retrieval.search import HybridSearcher
from retrieval.types import Filters

QUESTION = "When did Carl Wilhelm Scheele discover oxygen?"
PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "Answer in one short sentence using only these passages.\n\n{context}"),
        ("human", "{question}"),
    ]
)


def numbered(docs) -> str:
    return "\n\n".join(f"[{i}] {d.page_content}" for i, d in enumerate(docs, 1))


def test_retriever_returns_hits_as_documents(science_library):
    retriever = CitewiseRetriever(searcher=HybridSearcher(science_library), kbs=["science"], k=3)
    docs = retriever.invoke(QUESTION)
    assert len(docs) == 3
    top = docs[0].metadata
    assert top["doc_id"] in ("xq-en-12-0", "xq-zh-12-0") and top["kb"] == "science"
    assert {"chunk_id", "score", "title", "domain", "lang", "source"} <= set(top)
    assert "Scheele" in docs[0].page_content or "舍勒" in docs[0].page_content


def test_retriever_filters_apply(science_library):
    retriever = CitewiseRetriever(
        searcher=HybridSearcher(science_library), kbs=["science"], filters=Filters(lang="zh")
    )
    docs = retriever.invoke(QUESTION)
    assert docs and {d.metadata["lang"] for d in docs} == {"zh"}


def test_chat_model_maps_roles_and_streams(scripted_lm):
    lm = scripted_lm(["Scheele found it in 1773.", "Scheele found it in 1773."])
    model = CitewiseChatModel(lm=lm, max_new_tokens=16)
    messages = [
        SystemMessage("Be brief."),
        HumanMessage("When?"),
        AIMessage("1773."),
        HumanMessage("Who?"),
    ]
    assert model.invoke(messages).content == "Scheele found it in 1773."
    assert [m["role"] for m in lm.calls[0]] == ["system", "user", "assistant", "user"]
    chunks = list(model.stream("When?"))
    assert len(chunks) > 1 and "".join(c.text for c in chunks) == "Scheele found it in 1773."


def test_chat_model_stops_at_a_stop_sequence(scripted_lm):
    model = CitewiseChatModel(lm=scripted_lm(["Answer: 1773. Question: why?"]))
    assert model.invoke("When?", stop=["Question:"]).content == "Answer: 1773. "


def test_chat_model_rejects_unknown_roles(scripted_lm):
    model = CitewiseChatModel(lm=scripted_lm(["x"]))
    with pytest.raises(ValueError, match="not supported"):
        model.invoke([ChatMessage(role="critic", content="hm")])


@pytest.mark.slow
def test_lcel_chain_with_the_real_parts(education_agent):
    retriever = CitewiseRetriever(searcher=education_agent.searcher, kbs=["education"], k=2)
    model = CitewiseChatModel(lm=education_agent.lm, max_new_tokens=24)
    chain = (
        {"context": retriever | numbered, "question": RunnablePassthrough()}
        | PROMPT
        | model
        | StrOutputParser()
    )
    answer = chain.invoke(QUESTION)
    assert answer.strip() and detect_lang(answer) == "en"
    # Greedy decoding: streaming the same chain gives the same text, in several pieces.
    pieces = list(chain.stream(QUESTION))
    assert len(pieces) > 1 and "".join(pieces) == answer
