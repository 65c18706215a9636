"""Agent configuration: what a turn does (TurnConfig) inside what the agent is built from
(AgentConfig), read from keyword arguments, a dict, or a TOML/JSON file; each validates itself."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

# The longest message a turn accepts, in characters: the CLI, the Python API, the HTTP API and the
# chat all refuse longer ones before any model runs (a long message is also a long prompt).
MAX_MESSAGE_CHARS = 4000


@dataclass(frozen=True)
class TurnConfig:
    """How one turn retrieves, answers and checks (the dialogue manager reads only this)."""

    k: int = 5
    max_new_tokens: int = 256
    # LM tokens of retrieved passage text in an answer prompt (agent/context.py).
    context_tokens: int = 1500
    time_limit_s: float | None = 60.0
    history_turns: int = 3
    gate_threshold: float | None = None  # default: agent.gate.DEFAULT_THRESHOLD (measured)
    # Answerability: the best sentence's probability of answering (agent/evidence.py);
    # default: the trained model's threshold; 0 answers whatever is on topic.
    evidence_threshold: float | None = None
    # A model reply that declines while the best sentence has at least this probability of
    # answering is overruled by that sentence's quote (measured in docs/EVALS.md: the 1.5B model
    # declined answerable questions whose passage held the answer); 1 keeps every model refusal.
    overrule_refusal: float = 0.4
    # The scorer's runner-up sentence is quoted with the best one when its probability is at
    # least this share of the best's: the answer is in the top two far more often than in the
    # top one (docs/EVALS.md, "A second quote"); 1 quotes the best sentence alone.
    second_quote: float = 0.3
    # A factual question ("Who…", "多少…") is answered by the words of the best sentence that
    # answer it when the trained reader (agent/span.py) gives them at least this probability,
    # the sentence shown as the citation; 1 always quotes the sentence (docs/EVALS.md).
    short_answer: float = 0.4
    # An open question ("2021年宝马全球销量", "Who…"; not yes / no, why or how) is refused when the
    # trained reader (agent/span.py) gives each of the evidence scorer's three likeliest sentences
    # at least this probability of holding no answer: on-topic passages without the answer
    # (docs/EVALS.md, "No answer here"); not over a legal knowledge base (statutes answer in
    # clauses it reads as none); 1 leaves the decision to the evidence scorer alone.
    no_answer: float = 0.5
    # An open question the evidence scorer refuses is answered when the reader gives one of its
    # three likeliest sentences less than this probability of holding no answer (a paraphrase
    # shares few words with the sentence that answers it; docs/EVALS.md, "The reader answers");
    # 0 leaves the refusal to the scorer.
    read_answers: float = 0.02
    # When the question is answered, the reader picks the evidence sentence among those three
    # (in the question's language) when it reads the scorer's choice as holding no answer more
    # likely than its own by over this (docs/EVALS.md, "The reader picks"); 1 keeps the scorer's.
    reader_picks: float = 0.3
    # Show only sentences a passage supports; unsupported ones are dropped (and reported).
    strict: bool = True

    def __post_init__(self) -> None:
        if min(self.k, self.max_new_tokens, self.context_tokens) < 1 or self.history_turns < 0:
            raise ValueError(
                "k, max_new_tokens and context_tokens must be at least 1, history_turns ≥ 0"
            )
        if self.time_limit_s is not None and self.time_limit_s <= 0:
            raise ValueError(f"time_limit_s must be positive (or None), not {self.time_limit_s}")
        for name in (
            "gate_threshold", "evidence_threshold", "overrule_refusal", "second_quote",
            "short_answer", "no_answer", "read_answers", "reader_picks",
        ):  # fmt: skip
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1 (or unset), not {value}")


TURN_KEYS = frozenset(f.name for f in fields(TurnConfig))


@dataclass(frozen=True)
class AgentConfig:
    data_dir: str | None = None  # default: $CITEWISE_HOME or the per-user data dir
    # A local HF folder, a .gguf file, an OpenAI-compatible http(s) URL, or several such URLs
    # (comma-separated, or a list in a file): a pool, agent/lm_pool.py.
    lm: str = "bundled:smollm2"
    lm_model: str = ""  # model name sent to an OpenAI-compatible server
    # How a local GGUF runs: "auto" (llama.cpp when llama-cpp-python is installed and the
    # device is a CPU, else transformers), "llama.cpp" or "transformers" (agent/lm.py).
    lm_backend: str = "auto"
    cache_dir: str | None = None  # converted local models; default: the per-user cache dir
    device: str | None = None  # "cuda" | "cpu"; default: CUDA when available
    verifier: str = "bundled:e5"  # embedder for citation support and the evidence gate
    router: str | None = None  # trained router folder; default <data_dir>/router, else prototypes
    kbs: tuple[str, ...] = ()  # search only these; default: the router picks by domain
    turn: TurnConfig = field(default_factory=TurnConfig)
    max_message_chars: int = MAX_MESSAGE_CHARS
    fusion_weights: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    # Second-stage retrieval: "" (none) or "evidence" (agent/evidence_rerank.py; measured in
    # README "Retrieval": no gain on STARD or PolicyQA, so off by default).
    rerank: str = ""
    rerank_weight: float = 0.35
    # Conversations and feedback: "" keeps them in <data_dir>/dialogue.db; a
    # "postgresql://user@host:5432/db" URL puts them on a server several citewise processes share
    # (agent/state_pg.py; the password may also come from PGPASSWORD or ~/.pgpass); with a Milvus
    # `store`, the knowledge bases' documents and passages too (retrieval/store_pg.py), and the
    # accounts (ui/users.py). $CITEWISE_DATABASE_URL when empty.
    database_url: str = ""
    # Knowledge-base search: "" for FAISS + FTS5 files in the data directory ($CITEWISE_STORE
    # when set), "milvus:///path/kb.db" (Milvus Lite) or "milvus://host:19530" (a Milvus server).
    store: str = ""

    def __post_init__(self) -> None:
        if self.store:
            from retrieval.milvus_index import parse_store

            parse_store(self.store)  # ValueError naming the setting
        if self.database_url and not self.database_url.startswith(("postgresql://", "postgres://")):
            raise ValueError(
                f"database_url must be a postgresql:// URL, not {self.database_url.split(':')[0]!r}"
                "...: write postgresql://user:password@host:5432/database, or leave it empty for "
                "dialogue.db in the data directory"
            )
        if self.lm_backend not in ("auto", "llama.cpp", "transformers"):
            raise ValueError(
                f"lm_backend must be 'auto', 'llama.cpp' or 'transformers', not {self.lm_backend!r}"
            )
        if self.max_message_chars < 1:
            raise ValueError("max_message_chars must be at least 1")
        if self.rerank not in ("", "evidence"):
            raise ValueError(f"rerank must be '' or 'evidence', not {self.rerank!r}")
        if not 0.0 <= self.rerank_weight <= 1.0:
            raise ValueError(f"rerank_weight must be between 0 and 1, not {self.rerank_weight}")
        if self.device not in (None, "cuda", "cpu"):
            raise ValueError(f"device must be 'cuda' or 'cpu', not {self.device!r}")

    def dialogue_location(self) -> Path | str:
        """Where conversations live: the database_url, else dialogue.db in the data directory."""
        from retrieval.paths import data_dir, database_setting

        return database_setting(self.database_url) or data_dir(self.data_dir) / "dialogue.db"

    @classmethod
    def load(
        cls, source: str | os.PathLike[str] | Mapping[str, Any] | None = None, **overrides: Any
    ) -> AgentConfig:
        """From a dict, a .toml or .json file, or nothing; keyword overrides win.

        The turn's settings may be given flat (`max_new_tokens = 64`) or as a `[turn]` table;
        flat keys win over the table's.
        """
        values: dict[str, Any] = {}
        if isinstance(source, Mapping):
            values.update(source)
        elif source is not None:
            path = Path(source)
            if not path.is_file():
                raise FileNotFoundError(f"config file {path} not found")
            if path.suffix == ".toml":
                import tomllib

                values.update(tomllib.loads(path.read_text(encoding="utf-8")))
            elif path.suffix == ".json":
                values.update(json.loads(path.read_text(encoding="utf-8")))
            else:
                raise ValueError(f"config file {path}: use .toml or .json")
        values.update({k: v for k, v in overrides.items() if v is not None})
        turn = values.pop("turn", {})
        if isinstance(turn, TurnConfig):
            turn = {f.name: getattr(turn, f.name) for f in fields(TurnConfig)}
        if not isinstance(turn, Mapping):
            raise ValueError("turn must be a table of turn settings, e.g. [turn] k = 5")
        turn = {**turn, **{k: values.pop(k) for k in TURN_KEYS & set(values)}}
        unknown_turn = sorted(set(turn) - TURN_KEYS)
        if unknown_turn:
            raise ValueError(f"unknown turn keys {unknown_turn}; known: {sorted(TURN_KEYS)}")
        values["turn"] = TurnConfig(**turn)
        known = {f.name for f in fields(cls)} | TURN_KEYS
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known keys: {sorted(known)}")
        if "kbs" in values:
            values["kbs"] = tuple(values["kbs"])
        if isinstance(values.get("lm"), list | tuple):
            values["lm"] = ",".join(str(u) for u in values["lm"])
        if "fusion_weights" in values:
            values["fusion_weights"] = {k: tuple(v) for k, v in values["fusion_weights"].items()}
        return cls(**values)
