"""User accounts, API tokens and who may read which knowledge base: `<data_dir>/users.db`, or the
`database_url` PostgreSQL server that several citewise machines share.

Managed from the command line (`citewise users ...`, ui/cli/users.py). Passwords are hashed with
argon2id (argon2-cffi), never stored or logged in clear. API tokens are random 256-bit strings
shown once when created; only their SHA-256 is stored (a token is not guessable, so a fast hash
is enough, and a request is matched by one indexed lookup).

A knowledge base with no readers listed is readable by every user; one with readers is readable
by them and by administrators only. Administrators manage knowledge bases (upload, delete,
create); every user reads and writes only their own conversations and feedback.

With no accounts (the file missing or empty) the server behaves as before accounts existed: one
user, who sees every conversation and manages every knowledge base.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from retrieval.postgres import is_database_url
from retrieval.sqlite import utc_now
from ui.users_db import AccountsDb, UserError

USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
MIN_PASSWORD = 8
TOKEN_PREFIX = "cw_"
_TABLES = ("users", "tokens", "kb_readers")


@dataclass(frozen=True)
class Principal:
    """Who a request acts for. `name` None: the single user of a server without accounts (sees
    every conversation, manages everything)."""

    name: str | None
    admin: bool

    @property
    def owner(self) -> str | None:
        """The owner to filter conversations by (None: all of them)."""
        return self.name


SINGLE_USER = Principal(None, True)


@dataclass(frozen=True)
class UserInfo:
    name: str
    admin: bool
    created_at: str
    tokens: int


@dataclass(frozen=True)
class TokenInfo:
    id: str
    user: str
    label: str
    created_at: str


def _hasher():  # -> argon2.PasswordHasher
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id, the library's current recommended parameters


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class UserStore:
    """Accounts in one SQLite file, or on the PostgreSQL server of `database_url` (shared by
    every citewise machine); safe to share across threads (ui/users_db.py)."""

    def __init__(self, location: Path | str) -> None:
        self._db = AccountsDb(location)
        self._conn = self._db.transaction
        self._dummy_hash: str | None = None

    @classmethod
    def for_data_dir(cls, data_dir: Path, database_url: str = "") -> UserStore:
        """The accounts of a data directory's users.db, or of `database_url` when it is set."""
        return cls(database_url) if is_database_url(database_url) else cls(data_dir / "users.db")

    def close(self) -> None:
        self._db.close()

    # --- accounts -----------------------------------------------------------------------------

    def has_users(self) -> bool:
        if not self._db.exists():
            return False
        with self._conn() as db:
            return db.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None

    def users(self) -> list[UserInfo]:
        with self._conn() as db:
            rows = db.execute(
                "SELECT u.name, u.admin, u.created_at, COUNT(t.id) FROM users u "
                'LEFT JOIN tokens t ON t."user" = u.name GROUP BY u.name ORDER BY u.name'
            ).fetchall()
        return [UserInfo(name, bool(admin), created, n) for name, admin, created, n in rows]

    def add(self, name: str, password: str, *, admin: bool = False) -> None:
        check_user_name(name)
        hashed = _hasher().hash(check_password(password))
        with self._conn(write=True) as db:
            if db.execute("SELECT 1 FROM users WHERE name = ?", [name]).fetchone():
                raise UserError(f"user {name!r} exists already (change the password: passwd)")
            db.execute(
                "INSERT INTO users (name, password_hash, admin, created_at) VALUES (?, ?, ?, ?)",
                [name, hashed, int(admin), utc_now()],
            )

    def remove(self, name: str) -> bool:
        """Remove the account with its tokens and knowledge-base grants (its conversations stay
        in dialogue.db, readable by no one but the command line)."""
        with self._conn(write=True) as db:
            return db.execute("DELETE FROM users WHERE name = ?", [name]).rowcount > 0

    def passwd(self, name: str, password: str) -> None:
        hashed = _hasher().hash(check_password(password))
        with self._conn(write=True) as db:
            cur = db.execute("UPDATE users SET password_hash = ? WHERE name = ?", [hashed, name])
            if cur.rowcount == 0:
                raise UserError(f"no user {name!r} (add one with `citewise users add`)")

    def set_admin(self, name: str, admin: bool) -> None:
        with self._conn(write=True) as db:
            cur = db.execute("UPDATE users SET admin = ? WHERE name = ?", [int(admin), name])
            if cur.rowcount == 0:
                raise UserError(f"no user {name!r}")

    def verify(self, name: str, password: str) -> Principal | None:
        """The user when `password` is theirs; None otherwise (unknown users cost the same)."""
        from argon2.exceptions import InvalidHashError, VerificationError

        if not isinstance(name, str) or not isinstance(password, str):
            return None
        row = None
        if USER_NAME.fullmatch(name):
            with self._conn() as db:
                row = db.execute(
                    "SELECT password_hash, admin FROM users WHERE name = ?", [name]
                ).fetchone()
        hasher = _hasher()
        if self._dummy_hash is None:
            self._dummy_hash = hasher.hash(secrets.token_hex(16))
        stored = row[0] if row else self._dummy_hash
        try:
            hasher.verify(stored, password.encode("utf-8", "surrogatepass"))
        except (VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if hasher.check_needs_rehash(stored):
            self.passwd(name, password)
        return Principal(name, bool(row[1]))

    def principal(self, name: str | None) -> Principal | None:
        """The account called `name`, as a Principal; None if there is none."""
        if not name:
            return None
        with self._conn() as db:
            row = db.execute("SELECT admin FROM users WHERE name = ?", [name]).fetchone()
        return Principal(name, bool(row[0])) if row else None

    # --- API tokens -----------------------------------------------------------------------------

    def add_token(self, name: str, label: str = "") -> tuple[str, str]:
        """A new API token for `name`: (token id, the token). The token is shown only now."""
        token_id = secrets.token_hex(4)
        token = f"{TOKEN_PREFIX}{secrets.token_urlsafe(32)}"
        with self._conn(write=True) as db:
            if not db.execute("SELECT 1 FROM users WHERE name = ?", [name]).fetchone():
                raise UserError(f"no user {name!r} (add one with `citewise users add`)")
            db.execute(
                'INSERT INTO tokens (id, "user", sha256, label, created_at) VALUES (?, ?, ?, ?, ?)',
                [token_id, name, _sha256(token), label, utc_now()],
            )
        return token_id, token

    def revoke_token(self, token_id: str) -> bool:
        with self._conn(write=True) as db:
            return db.execute("DELETE FROM tokens WHERE id = ?", [token_id]).rowcount > 0

    def tokens(self, name: str | None = None) -> list[TokenInfo]:
        with self._conn() as db:
            rows = db.execute(
                'SELECT id, "user", label, created_at FROM tokens '
                # A typed NULL test: PostgreSQL cannot guess the type of a bare parameter.
                'WHERE CAST(? AS TEXT) IS NULL OR "user" = ? ORDER BY created_at',
                [name, name],
            ).fetchall()
        return [TokenInfo(*row) for row in rows]

    def user_for_token(self, token: str) -> Principal | None:
        if not token.startswith(TOKEN_PREFIX):
            return None
        with self._conn() as db:
            row = db.execute(
                'SELECT u.name, u.admin FROM tokens t JOIN users u ON u.name = t."user" '
                "WHERE t.sha256 = ?",
                [_sha256(token)],
            ).fetchone()
        return Principal(row[0], bool(row[1])) if row else None

    def copy_from(self, source: UserStore) -> int:
        """Copy every account, token hash and reader list of `source` here (`citewise migrate`),
        in one transaction; the number of users. UserError if this store has accounts already."""
        with source._conn() as db:
            rows = {t: db.execute(f"SELECT * FROM {t}").fetchall() for t in _TABLES}
        with self._conn(write=True) as db:
            if db.execute("SELECT 1 FROM users LIMIT 1").fetchone():
                raise UserError("the target already holds accounts; nothing was copied")
            for table in _TABLES:  # users first: the others refer to them
                if rows[table]:
                    marks = ", ".join("?" * len(rows[table][0]))
                    db.executemany(f"INSERT INTO {table} VALUES ({marks})", rows[table])
        return len(rows["users"])

    # --- who reads which knowledge base ---------------------------------------------------------

    def set_readers(self, kb: str, names: Iterable[str]) -> None:
        """Only `names` (and administrators) may read `kb`; no names: every user may."""
        names = sorted(set(names))
        with self._conn(write=True) as db:
            known = {r[0] for r in db.execute("SELECT name FROM users")}
            unknown = [n for n in names if n not in known]
            if unknown:
                raise UserError(f"no user(s) {', '.join(map(repr, unknown))}")
            db.execute("DELETE FROM kb_readers WHERE kb = ?", [kb])
            db.executemany(
                'INSERT INTO kb_readers (kb, "user") VALUES (?, ?)', [(kb, n) for n in names]
            )

    def readers(self) -> dict[str, set[str]]:
        """Knowledge bases with a reader list, and their readers."""
        out: dict[str, set[str]] = {}
        with self._conn() as db:
            for kb, user in db.execute('SELECT kb, "user" FROM kb_readers'):
                out.setdefault(kb, set()).add(user)
        return out

    def can_read(self, principal: Principal, kb: str) -> bool:
        if principal.admin:
            return True
        readers = self.readers().get(kb)
        return readers is None or principal.name in readers


def check_user_name(name: str) -> str:
    if not isinstance(name, str) or not USER_NAME.fullmatch(name):
        raise UserError(
            f"user name {name!r} is not allowed: letters, digits and . _ @ -, starting with a "
            "letter or digit, at most 64 characters"
        )
    return name


def check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError("the password is not valid Unicode text") from None
    return password
