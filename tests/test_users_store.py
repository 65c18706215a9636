"""The accounts store behaves alike on users.db and on a real PostgreSQL server (ui/users.py):
accounts, hashed passwords, tokens, reader lists, cascading removal; on PostgreSQL, what one
machine adds another sees, and a dropped connection is opened again."""

from __future__ import annotations

from pathlib import Path

import pytest
from pg_server import drop_connections

from ui.users import UserError, UserStore


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    if request.param == "sqlite":
        return tmp_path / "users.db"
    return str(request.getfixturevalue("pg_database"))


def test_accounts_tokens_and_readers(location: Path | str) -> None:
    store = UserStore(location)
    try:
        assert not store.has_users() or isinstance(location, str)
        store.add("ada", "correct horse", admin=True)
        store.add("bob", "battery staple")
        with pytest.raises(UserError, match="exists already"):
            store.add("bob", "another one")
        assert store.has_users()
        assert store.verify("ada", "correct horse").admin
        assert store.verify("bob", "wrong password") is None
        assert store.verify("nobody", "correct horse") is None
        token_id, token = store.add_token("bob", "laptop")
        assert store.user_for_token(token).name == "bob"
        assert [t.id for t in store.tokens()] == [token_id]
        assert [t.id for t in store.tokens("bob")] == [token_id] and store.tokens("ada") == []
        assert [(u.name, u.tokens) for u in store.users()] == [("ada", 0), ("bob", 1)]
        store.set_readers("medical", ["bob"])
        assert store.readers() == {"medical": {"bob"}}
        bob = store.principal("bob")
        assert store.can_read(bob, "medical") and store.can_read(bob, "legal")
        with pytest.raises(UserError, match="no user"):
            store.set_readers("legal", ["carol"])
        assert store.remove("bob")
        assert store.user_for_token(token) is None and store.readers() == {}
    finally:
        store.close()


def test_an_account_added_on_one_machine_logs_in_on_another(pg_database: str) -> None:
    one, other = UserStore(pg_database), UserStore(pg_database)
    try:
        one.add("ada", "correct horse")
        assert other.verify("ada", "correct horse").name == "ada"
        assert drop_connections(pg_database) >= 1
        assert other.principal("ada").name == "ada"  # the dropped connection opened again
    finally:
        one.close()
        other.close()
