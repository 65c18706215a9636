"""The dialogue store on a real PostgreSQL server: what only a server has (migrations several
processes race to apply, connections the server drops, settings that point nowhere).

What both backends must do alike runs in tests/test_state.py over both."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest
from cli_run import run_cli
from pg_server import drop_connections

from agent.config import AgentConfig
from agent.state import DialogueStore, DialogueStoreError, EvidenceRecord, TurnRecord
from agent.state_pg import MIGRATIONS
from retrieval.postgres import migrate


def _turn(text: str) -> TurnRecord:
    return TurnRecord(user_text=text, evidence=(EvidenceRecord("kb", "d", 1, 0.5, "p"),))


def _applied(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY name")]


def test_stores_opened_at_once_on_an_empty_database_migrate_it_once(pg_database: str) -> None:
    stores: list[DialogueStore] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_store() -> None:
        try:
            barrier.wait()
            stores.append(DialogueStore(pg_database))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(stores) == 4
    assert _applied(pg_database) == [name for name, _ in MIGRATIONS]
    session_id = stores[0].create_session("shared")
    assert stores[3].session(session_id).title == "shared"
    for s in stores:
        s.close()


def test_a_failing_migration_is_rolled_back_and_stays_pending(pg_database: str) -> None:
    DialogueStore(pg_database).close()
    broken = [*MIGRATIONS, ("m999_broken", ("CREATE TABLE later (x INT)", "SELECT no_such_fn()"))]
    with psycopg.connect(pg_database, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UndefinedFunction):
            migrate(conn, broken)
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables")}
    assert "later" not in tables  # DDL is transactional on PostgreSQL
    assert _applied(pg_database) == [name for name, _ in MIGRATIONS]


def test_a_connection_the_server_dropped_is_opened_again(pg_database: str) -> None:
    with DialogueStore(pg_database) as store:
        session_id = store.create_session("before the restart")
        assert drop_connections(pg_database) >= 1
        assert store.session(session_id).title == "before the restart"
        store.append_turn(session_id, _turn("after"))
        assert [t.user_text for t in store.history(session_id)] == ["after"]


def test_reads_are_one_read_only_snapshot(pg_database: str) -> None:
    with DialogueStore(pg_database) as store, store._sql.read() as tx:
        assert tx.one("SHOW transaction_isolation") == ("repeatable read",)
        assert tx.one("SHOW transaction_read_only") == ("on",)
    with DialogueStore(pg_database) as store, store._sql.write() as tx:
        assert tx.one("SHOW transaction_read_only") == ("off",)


def _port_nobody_listens_on() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"postgresql://citewise:s3cret@127.0.0.1:{_port_nobody_listens_on()}/x", "cannot connect"),
        ("postgresql://nosuchrole:s3cret@{server}/citewise_test", 'role "nosuchrole"'),
        ("postgresql://citewise:s3cret@{server}/no_such_db", 'database "no_such_db"'),
        ("postgres ql://citewise@{server}/citewise_test", "not a PostgreSQL URL"),
    ],
)
def test_a_database_url_that_does_not_work_fails_at_once_with_one_line(
    pg_server: str, url: str, expected: str
) -> None:
    server = pg_server.split("@", 1)[1].rsplit("/", 1)[0]
    url = url.replace("{server}", server)
    with pytest.raises(DialogueStoreError) as err:
        DialogueStore(url)
    message = str(err.value)
    assert expected in message and "\n" not in message and "s3cret" not in message
    assert message.startswith("database_url") or "database_url" in message


def test_a_misspelt_scheme_is_a_config_error_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="database_url must be a postgresql:// URL"):
        AgentConfig(database_url="postgressql://db/x")
    with pytest.raises(DialogueStoreError, match="not a PostgreSQL URL"):
        DialogueStore("mysql://db/x")
    assert not list(tmp_path.iterdir())  # nothing was created for it


def test_the_cli_names_an_unreachable_database_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    port = _port_nobody_listens_on()
    config.write_text(f'database_url = "postgresql://citewise:pw@127.0.0.1:{port}/db"\n')
    result = run_cli(
        "--data-dir",
        str(tmp_path / "data"),
        "feedback",
        "export",
        "--config",
        str(config),
        timeout=120,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "database_url" in line and "cannot connect" in line and ":pw@" not in line


def test_feedback_export_reads_the_server(pg_database: str, tmp_path: Path) -> None:
    with DialogueStore(pg_database) as store:
        turn_id = store.append_turn(store.create_session(), _turn("rated on the server"))
        store.add_feedback(turn_id, -1, "wrong")
    config = tmp_path / "agent.toml"
    config.write_text(f'database_url = "{pg_database}"\n')
    out = tmp_path / "cases.jsonl"
    result = run_cli("feedback", "export", "--config", str(config), "--out", str(out), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "rated on the server" in out.read_text()
