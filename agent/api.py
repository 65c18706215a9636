"""The Python agent API: `Agent`, the composition root that builds every part once, runs turns."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from agent.citations import SupportScorer
from agent.config import AgentConfig
from agent.dialogue import DialogueManager
from agent.evidence import EvidenceFinder
from agent.evidence_rerank import EvidenceReranker
from agent.limits import check_message, check_text
from agent.protocols import LM, CancelToken
from agent.state import DialogueStore, SessionInfo, TurnRecord
from agent.types import Done, Event, Reply
from agent.uploads import UploadLimits, UploadResult, delete_upload, ingest_uploads
from prompts import render
from retrieval.lang import detect_lang
from retrieval.types import Filters, Hit

if TYPE_CHECKING:
    from retrieval.ingest import IngestReport
    from retrieval.store import DocInfo, KBInfo
    from retrieval.types import Document


class Agent:
    """Ask questions of your knowledge bases; every session's history is kept (SQLite, or
    PostgreSQL with `database_url`)."""

    def __init__(self, config: AgentConfig | None = None, *, lm: LM | None = None) -> None:
        """Build every part from `config`; pass `lm` to share an already loaded model."""
        from agent.lm import load_lm
        from agent.router import load_router
        from retrieval.embedders import default_cache_dir
        from retrieval.kb import Library
        from retrieval.paths import data_dir, database_setting, store_setting
        from retrieval.search import FusionConfig, HybridSearcher

        self.config = cfg = config or AgentConfig()
        self.data_dir = data_dir(cfg.data_dir)
        self.library = Library(
            self.data_dir,
            store=store_setting(cfg.store),
            database_url=database_setting(cfg.database_url),
        )
        # The verifier is usually the knowledge bases' own embedder: load it once for both.
        verifier = self.library.embedder_for(cfg.verifier)
        scorer = SupportScorer(verifier)
        fusion = FusionConfig(weights=cfg.fusion_weights) if cfg.fusion_weights else FusionConfig()
        reranker = (
            EvidenceReranker(EvidenceFinder(scorer), cfg.rerank_weight)
            if cfg.rerank == "evidence"
            else None
        )
        self.searcher = HybridSearcher(self.library, fusion, reranker)
        cache = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir() / "models"
        self.lm = lm or load_lm(
            cfg.lm, cache_dir=cache, device=cfg.device, model=cfg.lm_model, backend=cfg.lm_backend
        )
        self.store = DialogueStore(cfg.dialogue_location())
        router_dir = Path(cfg.router) if cfg.router else self.data_dir / "router"
        self.router = load_router(router_dir, verifier)
        self.manager = DialogueManager(
            lm=self.lm,
            searcher=self.searcher,
            router=self.router,
            store=self.store,
            scorer=scorer,
            kb_domains=self.kb_domains,
            config=cfg.turn,
        )

    @classmethod
    def from_config(
        cls, source: str | os.PathLike[str] | Mapping[str, Any] | None = None, **overrides: Any
    ) -> Agent:
        """Build from a dict, a .toml/.json file, or keyword arguments (which win)."""
        return cls(AgentConfig.load(source, **overrides))

    # Knowledge bases: what every front-end (CLI, web UI, HTTP API, evals) calls.

    def knowledge_bases(self) -> list[KBInfo]:
        return self.library.list()

    def kb_domains(self) -> dict[str, str]:
        """Every knowledge base and its domain, read now (another process may have changed it)."""
        return {info.name: info.domain for info in self.library.list()}

    def create_kb(
        self,
        name: str,
        *,
        domain: str = "general",
        embedder: str | None = None,
        lang: str | None = None,
    ) -> KBInfo:
        return self.library.create(name, domain=domain, embedder=embedder, lang=lang)

    def documents(self, kb: str) -> list[DocInfo]:
        return self.library.documents(kb)

    def add_files(
        self,
        kb: str,
        files: Sequence[tuple[str, BinaryIO]],
        *,
        limits: UploadLimits | None = None,
        domain: str | None = None,
    ) -> UploadResult:
        """Check (name, file) uploads against `limits`, keep and ingest them (agent/uploads.py)."""
        return ingest_uploads(
            self.library, self.data_dir, kb, files, limits or UploadLimits(), domain
        )

    def add_documents(self, kb: str, docs: Sequence[Document]) -> IngestReport:
        return self.library.ingest_documents(kb, docs, progress=False)

    def ingest_paths(self, kb: str, paths: Sequence[str | Path]) -> IngestReport:
        return self.library.ingest_paths(kb, paths)

    def delete_document(self, kb: str, doc_id: str) -> bool:
        """Remove a document (from answers at once) and its stored upload, if it has one."""
        return delete_upload(self.library, self.data_dir, kb, doc_id)

    def search(
        self, query: str, kbs: Sequence[str], *, k: int = 5, filters: Filters | None = None
    ) -> list[Hit]:
        """The passages a turn would retrieve for `query` (no rewrite, no routing)."""
        return self.searcher.search(query, kbs, k=k, filters=filters)

    @property
    def scorer(self) -> SupportScorer:
        """The support scorer the citation verifier uses (shared, with its sentence cache)."""
        return self.manager.scorer

    def close(self) -> None:
        """Close the dialogue store and the knowledge bases (the model is left to the caller)."""
        self.store.close()
        self.library.close()

    def stream(
        self,
        message: str,
        session_id: str | None = None,
        *,
        kbs: Sequence[str] | None = None,
        filters: Filters | None = None,
        cancel: CancelToken | None = None,
        owner: str | None = None,
        readable: Collection[str] | None = None,
    ) -> Iterator[Event]:
        """Events of one turn: Rewritten, Routed, Retrieved, Token..., Done(reply).

        The message is checked first (empty, over `config.max_message_chars`, not Unicode text:
        ValueError) and so is `session_id` (unknown, or not `owner`'s: SessionNotFoundError),
        before anything is stored or generated. `owner` is the user the session belongs to
        (None: any session). `readable`, when given, is every knowledge base that user may
        read: nothing else is searched (with automatic routing, all of them are).
        """
        check_message(message, self.config.max_message_chars)
        if session_id is not None:
            self.store.session(session_id, owner)
        chosen = list(kbs) if kbs else list(self.config.kbs) or None
        if readable is not None:
            allowed = set(readable)
            if chosen is not None:
                chosen = [kb for kb in chosen if kb in allowed]
            elif allowed != set(self.kb_domains()):
                chosen = sorted(allowed & set(self.kb_domains()))
            if chosen == []:
                raise ValueError("no knowledge base you may read was chosen")
        sid = session_id or self.store.create_session(title=message.strip()[:60], owner=owner or "")
        return self.manager.turn(sid, message, kbs=chosen, filters=filters, cancel=cancel)

    def ask(self, message: str, session_id: str | None = None, **kwargs: Any) -> Reply:
        """Run one turn to the end and return its Reply."""
        for event in self.stream(message, session_id, **kwargs):
            if isinstance(event, Done):
                return event.reply
        raise RuntimeError("the turn ended without a reply")  # turn() always ends with Done

    def new_session(
        self,
        title: str = "",
        history: Sequence[Mapping[str, str]] = (),
        owner: str = "",
    ) -> str:
        """Start a session, optionally seeded with prior turns (OpenAI-style role/content pairs).

        Seeded turns are stored as they are, without generation, so a stateless client (the HTTP
        API, an evaluation case) gets the same follow-up rewriting as a chat that lived them.
        """
        pairs = list(_pairs(history))
        for user, answer in pairs:  # checked before the session is created
            check_text(user, "a history message")
            check_text(answer, "a history message")
        sid = self.store.create_session(title, owner=owner)
        for user, answer in pairs:
            self.store.append_turn(sid, TurnRecord(user_text=user, answer=answer, model="history"))
        return sid

    # `owner`: the user whose sessions these are (None: every session, as on the command line).

    def session(self, session_id: str, owner: str | None = None) -> SessionInfo:
        """The session, or SessionNotFoundError (also for another owner's session)."""
        return self.store.session(session_id, owner)

    def sessions(self, owner: str | None = None) -> list[SessionInfo]:
        return self.store.sessions(owner)

    def history(self, session_id: str, owner: str | None = None) -> list[TurnRecord]:
        return self.store.history(session_id, owner=owner)

    def rename_session(self, session_id: str, title: str, owner: str | None = None) -> None:
        self.store.rename_session(session_id, title, owner)

    def delete_session(self, session_id: str, owner: str | None = None) -> bool:
        return self.store.delete_session(session_id, owner)

    def feedback(
        self, turn_id: int, rating: int, comment: str = "", owner: str | None = None
    ) -> int:
        return self.store.add_feedback(turn_id, rating, comment, owner)

    def summarize(
        self,
        kb: str,
        doc_id: str,
        *,
        lang: str | None = None,
        sentences: int = 3,
        max_new_tokens: int | None = None,
    ) -> str:
        """A short summary of one stored document, in `lang` (default: the document's language)."""
        doc = self.library.document_text(kb, doc_id)
        lang = lang or detect_lang(doc.text)
        if lang not in ("en", "zh"):
            raise ValueError(f"lang must be 'en' or 'zh', not {lang!r}")
        prompt = render(
            "summarize", lang, title=doc.title, text=doc.text[:6000], sentences=sentences
        )
        return self._complete(prompt, max_new_tokens)

    def translate(self, text: str, target_lang: str, *, max_new_tokens: int | None = None) -> str:
        """Translate an answer between Chinese and English, keeping [n] markers."""
        if target_lang not in ("en", "zh"):
            raise ValueError(f"target_lang must be 'en' or 'zh', not {target_lang!r}")
        return self._complete(render("translate", target_lang, text=text), max_new_tokens)

    def _complete(self, prompt: str, max_new_tokens: int | None) -> str:
        pieces = self.lm.stream(
            [{"role": "user", "content": prompt}],
            max_new_tokens=max_new_tokens or self.config.turn.max_new_tokens,
            time_limit_s=self.config.turn.time_limit_s,
        )
        return "".join(pieces).strip()


def _pairs(history: Sequence[Mapping[str, str]]) -> Iterator[tuple[str, str]]:
    """(user, assistant) pairs from role/content messages; a user turn may lack its answer."""
    user: str | None = None
    for i, msg in enumerate(history):
        role, content = msg.get("role"), msg.get("content")
        if role not in ("user", "assistant") or not isinstance(content, str):
            raise ValueError(
                f"history[{i}] must be {{'role': 'user'|'assistant', 'content': str}}, got {msg!r}"
            )
        if role == "user":
            if user is not None:
                yield user, ""
            user = content
        else:
            yield user or "", content
            user = None
    if user is not None:
        yield user, ""
