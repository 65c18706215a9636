"""A throwaway PostgreSQL server for the tests: a fresh cluster on a free loopback port, then gone.

The machine image has PostgreSQL installed but not running, and PostgreSQL refuses to run as root:
as root the cluster belongs to the `postgres` system user (runuser), otherwise to whoever runs the
tests. CITEWISE_TEST_DATABASE_URL points the tests at a server of your own instead.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def pg_bin() -> Path | None:
    """The directory holding initdb and pg_ctl (the newest installed major version), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _major(path: str) -> int:
    version = Path(path).parent.parent.name
    return int(version) if version.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield the URL of an empty database on a server started now; stop and remove it after."""
    given = os.environ.get("CITEWISE_TEST_DATABASE_URL")
    if given:
        yield given
        return
    bin_dir = pg_bin()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL is not installed (no initdb found)")
    as_root = os.geteuid() == 0
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"  # root's PATH may lack /usr/sbin
    prefix = [runuser, "-u", "postgres", "--"] if as_root else []
    root = Path(tempfile.mkdtemp(prefix="citewise-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if as_root:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    port = _free_port()

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    try:
        run(
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "citewise",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-w",
            "-l",
            str(root / "server.log"),
            "start",
        )
        try:
            run(
                str(bin_dir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "citewise",
                "citewise_test",
            )
            yield f"postgresql://citewise@127.0.0.1:{port}/citewise_test"
        finally:
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def drop_connections(url: str) -> int:
    """What a server restart does to its clients: end every other connection to `url`'s
    database (pg_terminate_backend). How many were ended; AssertionError if one was not."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    assert all(ok for (ok,) in killed), killed
    return len(killed)
