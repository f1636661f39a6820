"""A real PostgreSQL for the tests and the lake benchmark: a cluster of its own in a temp folder,
on a free loopback port.

initdb refuses to run as root, so as root the server runs as the `postgres` system user (Debian's
postgresql package creates it); as anyone else, as that user. Host connections need the password
(scram-sha-256), which the tests hand to libpq the way an operator would: PGPASSWORD.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SERVER_USER = "postgres"  # the system user the server runs as when the tests run as root


def _bin(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None
    )
    if not found:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed: the DuckLake tests need a PostgreSQL server "
            "(Debian: apt-get install postgresql)"
        )
    return found


@dataclass
class Postgres:
    """A running cluster; `conninfo(db)` is what WAREHOUSE_URL carries after ducklake:postgres:."""

    folder: Path
    port: int
    password: str
    user: str = "jw"

    def conninfo(self, database: str) -> str:
        return f"dbname={database} host=127.0.0.1 port={self.port} user={self.user}"

    def env(self) -> dict[str, str]:
        """libpq's own variables: how the password reaches the catalog connection."""
        return {"PGPASSWORD": self.password}

    def psql(self, *sql: str) -> str:
        args = [_bin("psql"), "-v", "ON_ERROR_STOP=1", "-X", "-q", "-At"]
        args += ["-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", "postgres"]
        for statement in sql:
            args += ["-c", statement]
        done = subprocess.run(
            args,
            env={**os.environ, **self.env()},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout

    def dump(self, database: str) -> str:
        """pg_dump's text of a database's rows: what a backup of it would hold."""
        args = [_bin("pg_dump"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user]
        done = subprocess.run(
            [*args, "--data-only", database],
            env={**os.environ, **self.env()},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout

    def new_database(self, name: str) -> str:
        """A fresh, empty database (dropped first if a test left one of that name)."""
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
        return name

    def stop(self) -> None:
        try:
            _as_server(
                [_bin("pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop"]
            )
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def _as_server(args: list[str]) -> None:
    """Run a PostgreSQL server program, as the server's user when we are root."""
    if os.geteuid() == 0:
        args = ["runuser", "-u", SERVER_USER, "--", *args]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stdout}{done.stderr}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start() -> Postgres:
    """initdb and start a cluster in a new temp folder (in /tmp, which any user can reach)."""
    folder = Path(tempfile.mkdtemp(prefix="jw-postgres-"))
    password = secrets.token_urlsafe(18)
    pwfile = folder / "pwfile"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(folder, SERVER_USER)
        shutil.chown(pwfile, SERVER_USER)
    data = folder / "data"
    auth = ("--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8")
    _as_server([_bin("initdb"), "-D", str(data), "-U", "jw", f"--pwfile={pwfile}", *auth])
    pwfile.unlink()
    port = _free_port()
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    _as_server(
        [_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"]
    )
    return Postgres(folder, port, password)
