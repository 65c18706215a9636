"""Dialogue state: sessions, their turns with the evidence each answer saw, and user feedback.

One SQLite file (`<data_dir>/dialogue.db`), schema in agent/migrations.py, browsable with
sqlite-utils or Datasette. A turn and its evidence rows commit in one transaction, so a crash
keeps a turn whole or not at all. WAL with synchronous=FULL: a chat turn takes seconds, so one
fsync per turn costs nothing noticeable and a turn reported as saved survives a power cut, where
NORMAL would only survive a crash of the process.

Thread safety: one connection guarded by a lock. SQLite runs one writer at a time anyway, reads
take milliseconds, and a single connection has nothing per thread to leak or close. Other
processes (the CLI beside the UI) are handled by WAL, `BEGIN IMMEDIATE` and the busy timeout.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from sqlite_utils import Database

from agent.migrations import connect
from agent.types import Citation, Notice, Route
from retrieval.sqlite import immediate, utc_now
from retrieval.types import Hit

BUSY_TIMEOUT_S = 10.0
MAX_TOMBSTONES = 10_000  # deleted session ids a store remembers (see append_turn)


class DialogueStoreError(Exception):
    """The dialogue store cannot be opened or used as asked."""


class SessionNotFoundError(DialogueStoreError, LookupError):
    """A session id that is not in the store."""


class TurnNotFoundError(DialogueStoreError, LookupError):
    """A turn id that is not in the store (its session may have been deleted)."""


@dataclass(frozen=True)
class EvidenceRecord:
    """A passage the model was shown for a turn; its place in `TurnRecord.evidence` is its rank."""

    kb: str
    doc_id: str
    chunk_id: int
    score: float
    text: str
    title: str = ""

    @classmethod
    def from_hit(cls, hit: Hit) -> EvidenceRecord:
        return cls(hit.kb, hit.doc_id, int(hit.chunk_id), float(hit.score), hit.text, hit.title)


@dataclass(frozen=True)
class TurnRecord:
    """Everything a completed or interrupted turn stores.

    `id`, `session_id`, `idx` (0-based turn number within the session) and `created_at` are set
    by the store when it reads a turn back; `append_turn` ignores them.
    """

    user_text: str
    answer: str = ""  # partial when interrupted
    rewritten_query: str = ""
    intent: str = ""
    domain: str = ""
    route: Route | None = None  # None for turns seeded from history (no routing ran)
    citations: tuple[Citation, ...] = ()
    refused: bool = False
    interrupted: bool = False
    notices: tuple[Notice, ...] = ()
    latencies: Mapping[str, float] = field(default_factory=dict)  # e.g. {"ttft_ms": 412.0}
    model: str = ""
    evidence: tuple[EvidenceRecord, ...] = ()
    id: int | None = None
    session_id: str = ""
    idx: int = -1
    created_at: str = ""


@dataclass(frozen=True)
class SessionInfo:
    """A session as listed in the UI; `turns` is how many turns it holds."""

    id: str
    title: str
    created_at: str
    updated_at: str  # when the last turn was appended (or the session created)
    turns: int
    owner: str = ""  # the user it belongs to; "" when no accounts are used


@dataclass(frozen=True)
class FeedbackRecord:
    """A rating of one turn: +1 or -1, with an optional comment."""

    id: int
    turn_id: int
    rating: int
    comment: str
    created_at: str


class DialogueStore:
    """Sessions, turns, evidence and feedback in one SQLite file; safe to share across threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        # Ids this store deleted, oldest first: append_turn never brings one back (see there).
        self._deleted: dict[str, None] = {}
        try:
            self._db = connect(self.path, BUSY_TIMEOUT_S)
        except sqlite3.DatabaseError as e:
            raise DialogueStoreError(_open_error(self.path, e)) from e

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> DialogueStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # Ownership: every method that takes a session or turn id also takes `owner`. None (the
    # command line, a single-user server) sees every session; a user name sees only that user's,
    # and another user's id is answered exactly as an unknown one, so ids do not leak.
    # A session stored with owner "" (without accounts: the command line, a single-user server,
    # sessions from before accounts existed) belongs to no account: user names are never empty
    # (ui/users.py), so with accounts only `owner=None`, the command line, lists or opens it.

    def create_session(self, title: str = "", owner: str = "") -> str:
        """Start an empty session belonging to `owner` and return its id (uuid4 hex)."""
        session_id = uuid.uuid4().hex
        now = utc_now()
        title, owner = _text(str(title), "the session title"), _text(str(owner), "the owner")
        with self._write() as db:
            db.execute(
                "INSERT INTO sessions (id, title, created_at, updated_at, owner) "
                "VALUES (?, ?, ?, ?, ?)",
                [session_id, title, now, now, owner],
            )
        return session_id

    def sessions(self, owner: str | None = None) -> list[SessionInfo]:
        """Every session (of `owner`, when given), most recently active first."""
        if owner is not None and not _storable(owner):
            return []
        where, params = ("", []) if owner is None else ("WHERE s.owner = ?", [owner])
        with self._read() as db:
            rows = list(db.query(_SESSIONS_SQL.format(where=where) + _NEWEST_FIRST, params))
        return [SessionInfo(**row) for row in rows]

    def session(self, session_id: str, owner: str | None = None) -> SessionInfo:
        """The session, or SessionNotFoundError (also for another owner's session)."""
        rows = []
        if _storable(session_id) and (owner is None or _storable(owner)):
            with self._read() as db:
                rows = list(db.query(_SESSIONS_SQL.format(where="WHERE s.id = ?"), [session_id]))
        if not rows or (owner is not None and rows[0]["owner"] != owner):
            raise SessionNotFoundError(_no_session(session_id))
        return SessionInfo(**rows[0])

    def rename_session(self, session_id: str, title: str, owner: str | None = None) -> None:
        self.session(session_id, owner)
        title = _text(str(title), "the session title")
        with self._write() as db:
            cur = db.execute("UPDATE sessions SET title = ? WHERE id = ?", [title, session_id])
            if cur.rowcount == 0:
                raise SessionNotFoundError(_no_session(session_id))

    def delete_session(self, session_id: str, owner: str | None = None) -> bool:
        """Remove the session with its turns, evidence and feedback; False if it did not exist
        (or is not `owner`'s)."""
        try:
            self.session(session_id, owner)
        except SessionNotFoundError:
            return False
        with self._write() as db:
            # Turns, evidence and feedback go by ON DELETE CASCADE (foreign_keys is on).
            deleted = db.execute("DELETE FROM sessions WHERE id = ?", [session_id]).rowcount > 0
            if deleted:
                self._deleted[session_id] = None
                while len(self._deleted) > MAX_TOMBSTONES:
                    del self._deleted[next(iter(self._deleted))]
            return deleted

    def history(
        self, session_id: str, limit: int | None = None, owner: str | None = None
    ) -> list[TurnRecord]:
        """The session's last `limit` turns (all when None), oldest first; [] for an unknown id
        (or another owner's)."""
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise ValueError(f"limit must be None or an int >= 0, got {limit!r}")
        if not _storable(session_id):
            return []
        if owner is not None:
            try:
                self.session(session_id, owner)
            except SessionNotFoundError:
                return []
        ids_sql = "SELECT id FROM turns WHERE session_id = ? ORDER BY idx DESC LIMIT ?"
        with self._read() as db:
            turns = _load_turns(db, ids_sql, [session_id, -1 if limit is None else limit])
        return sorted(turns.values(), key=lambda t: t.idx)

    def append_turn(self, session_id: str, turn: TurnRecord) -> int:
        """Store `turn` and its evidence in one transaction, creating the session if missing.

        Returns the new turn's id. The turn number is the session's next one (0 for the first).

        A session this store deleted is not created again: a turn whose conversation was deleted
        while it was being answered raises SessionNotFoundError and is not stored. Created here,
        it would come back without its owner (this method is not told it): with accounts, a
        conversation its user deleted, kept on disk and belonging to no account.
        """
        if not isinstance(session_id, str) or not session_id.strip():
            raise ValueError(f"session_id must be a non-empty string, got {session_id!r}")
        _text(session_id, "session_id")
        row = _turn_row(turn)
        evidence = [_evidence_row(rank, ev) for rank, ev in enumerate(turn.evidence)]
        now = utc_now()
        with self._write() as db:
            if session_id in self._deleted and not _exists(db, session_id):
                raise SessionNotFoundError(
                    f"dialogue session {_shown(session_id)} was deleted (while this turn was "
                    "being answered?), so the turn is not stored; start a new conversation"
                )
            db.execute(
                "INSERT INTO sessions (id, title, created_at, updated_at) VALUES (?, '', ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at",
                [session_id, now, now],
            )
            (idx,) = db.execute(
                "SELECT COALESCE(MAX(idx) + 1, 0) FROM turns WHERE session_id = ?", [session_id]
            ).fetchone()
            row.update(session_id=session_id, idx=idx, evidence_count=len(evidence), created_at=now)
            turn_id = cast(int, db.table("turns").insert(row).last_pk)
            db.table("evidence").insert_all({"turn_id": turn_id, **ev} for ev in evidence)
        return turn_id

    def add_feedback(
        self, turn_id: int, rating: int, comment: str = "", owner: str | None = None
    ) -> int:
        """Record a +1 / -1 rating of a turn (of `owner`'s sessions, when given); return the
        feedback id. Ratings accumulate."""
        if isinstance(rating, bool) or rating not in (1, -1):
            raise ValueError(f"rating must be 1 (helpful) or -1 (not helpful), got {rating!r}")
        if isinstance(turn_id, bool) or not isinstance(turn_id, int):
            raise TurnNotFoundError(f"no turn with id {turn_id!r}")
        comment = _text(str(comment), "the comment")
        with self._write() as db:
            found = db.execute(
                "SELECT s.owner FROM turns t JOIN sessions s ON s.id = t.session_id WHERE t.id = ?",
                [turn_id],
            ).fetchone()
            if not found or (owner is not None and found[0] != owner):
                raise TurnNotFoundError(
                    f"no turn with id {turn_id!r}; its session may have been deleted, "
                    "so reload the session before rating"
                )
            row = {"turn_id": turn_id, "rating": rating, "comment": comment}
            return cast(int, db.table("feedback").insert({**row, "created_at": utc_now()}).last_pk)

    def feedback(self, owner: str | None = None) -> list[tuple[FeedbackRecord, TurnRecord]]:
        """Every rating (of `owner`'s sessions, when given) with the turn it rates (evidence
        included), oldest first, for export."""
        ids_sql = (
            "SELECT f.turn_id FROM feedback f JOIN turns t ON t.id = f.turn_id "
            "JOIN sessions s ON s.id = t.session_id WHERE ? IS NULL OR s.owner = ?"
        )
        with self._read() as db:
            turns = _load_turns(db, ids_sql, [owner, owner])
            rows = [
                row
                for row in db.query("SELECT * FROM feedback ORDER BY id")
                if row["turn_id"] in turns
            ]
        return [(FeedbackRecord(**row), turns[row["turn_id"]]) for row in rows]

    @contextmanager
    def _write(self) -> Iterator[Database]:
        with self._lock, immediate(self._db) as db:
            yield db

    @contextmanager
    def _read(self) -> Iterator[Database]:
        # One read transaction, so the turns and their evidence come from the same snapshot even
        # while another process appends.
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                self._db.rollback()


_SESSIONS_SQL = """
SELECT s.id, s.title, s.created_at, s.updated_at, COUNT(t.id) AS turns, s.owner
FROM sessions s LEFT JOIN turns t ON t.session_id = s.id {where}
GROUP BY s.id
"""
_NEWEST_FIRST = "ORDER BY s.updated_at DESC, s.rowid DESC"


def _exists(db: Database, session_id: str) -> bool:
    return db.execute("SELECT 1 FROM sessions WHERE id = ?", [session_id]).fetchone() is not None


def _shown(session_id: object) -> str:
    shown = ascii(session_id)  # escaped: the id may hold anything a client sent
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _no_session(session_id: object) -> str:
    return (
        f"no dialogue session with id {_shown(session_id)}; it may have been deleted. "
        "List sessions with DialogueStore.sessions() or start one with create_session()"
    )


def _storable(value: object) -> bool:
    """A string SQLite can bind (UTF-8 encodable: no lone surrogates)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(value: str, what: str) -> str:
    """`value` if it can be stored; else ValueError naming `what`, never a UnicodeEncodeError."""
    if not _storable(value):
        raise ValueError(
            f"{what} is not valid Unicode text (it holds a lone surrogate); send UTF-8 text"
        )
    return value


def _open_error(path: Path, e: sqlite3.DatabaseError) -> str:
    if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
        return (
            f"dialogue store {path} is locked by another process (waited {BUSY_TIMEOUT_S:.0f} s); "
            "close other citewise processes using this data directory and try again"
        )
    return (
        f"dialogue store {path} cannot be opened ({e}); if the file is damaged, move it aside "
        "and citewise will start a new, empty one"
    )


def _json(value: Any, name: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"turn.{name} must hold only JSON values (str, numbers, bools, None, lists, dicts): {e}"
        ) from e


def _turn_row(turn: TurnRecord) -> dict[str, Any]:
    """The turns-table columns for `turn`, validated before any transaction starts."""
    if not isinstance(turn, TurnRecord):
        raise TypeError(f"append_turn takes a TurnRecord, got {type(turn).__name__}")
    if not isinstance(turn.user_text, str):
        raise ValueError(f"turn.user_text must be a string, got {type(turn.user_text).__name__}")
    for name in ("user_text", "answer", "rewritten_query", "intent", "domain", "model"):
        value = getattr(turn, name)
        if isinstance(value, str):
            _text(value, f"turn.{name}")
    return {
        "user_text": turn.user_text,
        "rewritten_query": turn.rewritten_query,
        "intent": turn.intent,
        "domain": turn.domain,
        "route_json": _json(_typed(turn.route, Route, "route") or {}, "route"),
        "answer": turn.answer,
        "citations_json": _json(
            [_typed(c, Citation, "citations") for c in turn.citations], "citations"
        ),
        "refused": int(bool(turn.refused)),
        "interrupted": int(bool(turn.interrupted)),
        "notices_json": _json([_notice(n) for n in turn.notices], "notices"),
        # float() also turns numpy scalars from timers into plain JSON numbers.
        "latencies_json": _json({str(k): float(v) for k, v in turn.latencies.items()}, "latencies"),
        "model": turn.model,
    }


def _typed(value: Any, kind: type, name: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, kind):
        raise TypeError(f"turn.{name} must hold {kind.__name__} items, got {type(value).__name__}")
    return asdict(cast(Any, value))


def _route(data: Mapping[str, Any]) -> Route | None:
    """The stored route, or None for a turn stored without one (or in an older shape)."""
    if not data or not {"intent", "domain"} <= set(data):
        return None
    given = {k: v for k, v in data.items() if k in Route.__dataclass_fields__}
    return Route(**{**given, "kbs": tuple(data.get("kbs", ()))})


def _citation(data: Mapping[str, Any]) -> Citation:
    return Citation(**{k: v for k, v in data.items() if k in Citation.__dataclass_fields__})


def _notice(notice: Notice) -> dict[str, str]:
    if not isinstance(notice, Notice):
        raise TypeError(f"turn.notices must hold Notice items, got {type(notice).__name__}")
    return {"kind": notice.kind, "text": notice.text}


def _evidence_row(rank: int, ev: EvidenceRecord) -> dict[str, Any]:
    if not isinstance(ev, EvidenceRecord):
        raise TypeError(f"turn.evidence must hold EvidenceRecord items, got {type(ev).__name__}")
    # int()/float() because hits carry numpy scalars, which sqlite3 cannot bind.
    return {**asdict(ev), "rank": rank, "chunk_id": int(ev.chunk_id), "score": float(ev.score)}


def _load_turns(db: Database, ids_sql: str, params: Sequence[Any]) -> dict[int, TurnRecord]:
    """The turns whose ids `ids_sql` selects, with their evidence, keyed by turn id."""
    evidence: dict[int, list[EvidenceRecord]] = {}
    for ev in db.query(
        f"SELECT * FROM evidence WHERE turn_id IN ({ids_sql}) ORDER BY turn_id, rank", params
    ):
        turn_id = ev.pop("turn_id")
        del ev["rank"]  # the position in the list, ordered by the query
        evidence.setdefault(turn_id, []).append(EvidenceRecord(**ev))
    turns = {}
    for r in db.query(f"SELECT * FROM turns WHERE id IN ({ids_sql})", params):
        del r["evidence_count"]  # for crash checks; len(evidence) says the same
        r.update(
            route=_route(json.loads(r.pop("route_json"))),
            citations=tuple(_citation(c) for c in json.loads(r.pop("citations_json"))),
            notices=tuple(Notice(**n) for n in json.loads(r.pop("notices_json"))),
            latencies=json.loads(r.pop("latencies_json")),
            refused=bool(r["refused"]),
            interrupted=bool(r["interrupted"]),
            evidence=tuple(evidence.get(r["id"], ())),
        )
        turns[r["id"]] = TurnRecord(**r)
    return turns
