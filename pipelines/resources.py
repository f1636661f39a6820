"""Dagster resources: one per external system, the jambonz API and the DuckDB warehouse.

The API key enters through `EnvVar("JAMBONZ_API_KEY")` where these are wired
(pipelines/definitions.py); it is never logged, never part of run config, and the resource's
repr leaves it out. Configuration mistakes fail a run at its first step with a message naming the
variable to fix, before any request is sent or any file is opened for writing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from pydantic import Field, PrivateAttr

from pipelines.jambonz.pacing import DEFAULT_RESERVE, Pacer
from pipelines.jambonz.pager import JambonzClient
from pipelines.jambonz.streams import RECENT_CALLS, Scope, Stream
from pipelines.retries import TransientFailure
from warehouse import locks
from warehouse.database import (
    DEFAULT_LOCK_TIMEOUT_S,
    DEFAULT_MEMORY_LIMIT,
    DataPathUnwritableError,
    SchemaTooNewError,
    Warehouse,
    WarehouseLockedError,
    WarehouseUnopenableError,
)
from warehouse.lake import Lake, LakeLockError, LakeUrlError
from warehouse.lake import parse as parse_lake
from warehouse.load import WarehouseConflictError

_SID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


def refuse_bad_settings(problem: str | None) -> None:
    """A Failure naming the settings that could not be used, before any request or write."""
    if problem:
        raise dg.Failure(
            f"{problem}. Fix the setting (.env or the environment) and reload the definitions; "
            "nothing was requested or written."
        )


class JambonzResource(dg.ConfigurableResource):
    """The jambonz RecentCalls API of one account, or of every account of a service provider."""

    base_url: str = Field(description="JAMBONZ_BASE_URL, e.g. https://api.jambonz.cloud")
    api_key: str = Field(default="", repr=False, description="JAMBONZ_API_KEY (via EnvVar)")
    account_sid: str | None = Field(default=None, description="JAMBONZ_ACCOUNT_SID")
    service_provider_sid: str | None = Field(
        default=None,
        description="JAMBONZ_SERVICE_PROVIDER_SID: when set, the service-provider route syncs "
        "every account of it",
    )
    reserve: float = Field(
        default=DEFAULT_RESERVE, description="share of the rate limit left to others"
    )
    concurrency: int = Field(default=1, description="pages in flight at once, inside the pacing")
    timeout_s: float = Field(default=30.0, description="per-request timeout")
    max_attempts: int = Field(default=6, description="attempts per request before giving up")
    max_retry_s: float = Field(default=300.0, description="seconds one request may spend retrying")
    backoff_base_s: float = Field(default=0.5, description="first backoff ceiling (full jitter)")
    backoff_cap_s: float = Field(default=30.0, description="largest backoff between attempts")
    pace_without_headers: bool = Field(
        default=True,
        description="pace to 600 requests / 5 minutes when the server sends no RateLimit headers",
    )
    settings_problem: str | None = Field(
        default=None, description="settings that could not be used: every run fails naming them"
    )
    _pacer: Pacer | None = PrivateAttr(default=None)

    def __repr__(self) -> str:
        return (
            f"JambonzResource(base_url={self.base_url!r}, account_sid={self.account_sid!r}, "
            f"service_provider_sid={self.service_provider_sid!r})"
        )

    def scope(self) -> Scope:
        """The scope to sync, or a Failure naming the variable that is missing or malformed."""
        refuse_bad_settings(self.settings_problem)
        if not self.api_key.strip():
            raise dg.Failure(
                "JAMBONZ_API_KEY is not set: export the API key of the account (or service "
                "provider) to sync; see README 'Pointing it at jambonz'."
            )
        if self.service_provider_sid:
            if not _SID.match(self.service_provider_sid):
                raise dg.Failure(
                    f"JAMBONZ_SERVICE_PROVIDER_SID={self.service_provider_sid!r} is not a "
                    "jambonz sid (a UUID such as 43a6715f-583b-41e0-a086-b4f8cc677771)."
                )
            return Scope.service_provider(self.service_provider_sid)
        if not self.account_sid:
            raise dg.Failure(
                "JAMBONZ_ACCOUNT_SID is not set (nor JAMBONZ_SERVICE_PROVIDER_SID): "
                "set the account whose calls to sync."
            )
        if not _SID.match(self.account_sid):
            raise dg.Failure(
                f"JAMBONZ_ACCOUNT_SID={self.account_sid!r} is not a jambonz sid (a UUID such as "
                "173c3dbf-acbb-4e31-9668-a4f3445cb971)."
            )
        return Scope.account(self.account_sid)

    def client(self, stream: Stream = RECENT_CALLS) -> JambonzClient:
        """A client of `stream`. The clients of one run (one resource: the run's, with the
        in-process executor) take turns in one Pacer: jambonz has one bucket for every route,
        so what `calls` learnt of it (and spent) holds for `alerts` in the same run."""
        if self._pacer is None:
            self._pacer = Pacer(
                reserve=self.reserve,
                fallback_rate=(600, 300.0) if self.pace_without_headers else None,
            )
        return JambonzClient(
            self.base_url,
            self.api_key,
            stream=stream,
            pacer=self._pacer,
            concurrency=self.concurrency,
            timeout_s=self.timeout_s,
            max_attempts=self.max_attempts,
            max_retry_s=self.max_retry_s,
            backoff_base_s=self.backoff_base_s,
            backoff_cap_s=self.backoff_cap_s,
        )


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB file (WAREHOUSE_PATH; one writing process at a time: see README), or the
    DuckLake of WAREHOUSE_URL with its Parquet files at WAREHOUSE_DATA_PATH.

    One connection per run: the steps of a run share one Warehouse (`shared`, `using`), opened
    (and migrated) at its first use and closed when the run ends (`teardown_after_execution`).
    Dagster initializes a resource once per run with the in-process executor (the definitions'),
    once per step with a multiprocess one: the connection then lives for the step. A step that
    fails drops it (the next use opens another). The DuckDB file is held as little as before: the
    connection is opened once the first chunk of a day is ready, and let go before each fetch
    (`release_file`), so only the run's loads, checks and model rebuilds hold the file; a lake
    holds no lock, and its connection is kept for the whole run.
    """

    path: str = Field(description="WAREHOUSE_PATH")
    url: str | None = Field(
        default=None, description="WAREHOUSE_URL: ducklake:postgres:<conninfo>, no password"
    )
    data_path: str | None = Field(default=None, description="WAREHOUSE_DATA_PATH")
    lock_timeout_s: float = Field(
        default=DEFAULT_LOCK_TIMEOUT_S,
        description="how long a run waits for another process to release the file",
    )
    memory_limit: str = Field(
        default=DEFAULT_MEMORY_LIMIT, description="DuckDB memory_limit (WAREHOUSE_MEMORY_LIMIT)"
    )
    settings_problem: str | None = Field(
        default=None, description="settings that could not be used: every run fails naming them"
    )
    _shared: Warehouse | None = PrivateAttr(default=None)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """The run (or step) is over: its connection is closed, the DuckDB file let go."""
        self.release()

    def shared(self, *, partition: str | None = None) -> Warehouse:
        """The run's connection, opened (and migrated) at the first call, as `open` opens one
        (the same failures); the caller does not close it. partition: named in those failures."""
        if self._shared is None:
            self._shared = self.open(partition=partition)
        return self._shared

    @contextmanager
    def using(self, *, partition: str | None = None) -> Iterator[Warehouse]:
        """The run's connection (`shared`) for a block; an error inside drops it (the work was
        rolled back; the next use opens another) and is raised."""
        wh = self.shared(partition=partition)
        try:
            yield wh
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Close the run's connection, if open: the next use opens another."""
        wh, self._shared = self._shared, None
        if wh is not None:
            wh.close()

    def release_file(self) -> None:
        """Let go of the DuckDB file before a fetch, which may wait minutes on jambonz's rate
        limit: another process (a DuckDB CLI, another run) can take the file meanwhile. A lake's
        connection holds no lock: it is kept."""
        if not self.url:
            self.release()

    @property
    def target(self) -> Path | Lake:
        return parse_lake(self.url, self.data_path) if self.url else Path(self.path)

    def check_writable(self) -> None:
        """Fail with the cause, naming WAREHOUSE_PATH (or WAREHOUSE_URL, WAREHOUSE_DATA_PATH),
        when the warehouse could not be written.

        Called before any request is sent, so a wrong path costs no API requests.
        """
        refuse_bad_settings(self.settings_problem)
        if self.url:
            self._check_lake()
            return
        path = Path(self.path)
        parent = path.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if path.is_dir():
            problem = "is a directory"
        elif not parent.is_dir():
            problem = f"cannot be created: {parent} is not a directory"
        elif path.exists() and not os.access(path, os.R_OK | os.W_OK):
            problem = "is not readable and writable by this user"
        elif not path.exists() and not os.access(parent, os.W_OK | os.X_OK):
            problem = f"cannot be created: {parent} is not writable by this user"
        else:
            problem = ""
        if problem:
            raise dg.Failure(
                f"WAREHOUSE_PATH={self.path!r} {problem}; point WAREHOUSE_PATH at a DuckDB file "
                "in a writable folder (README 'Pointing it at jambonz')."
            )
        # a schema a newer release wrote: refused before any request, unless a writer holds the
        # file now (then the load refuses it when it opens the file). A run that holds it (the
        # day before, in a range) checked it when it opened it, and no other process can have
        # written it since; nor may it probe it: closing the probe's descriptor would drop this
        # process's own lock (POSIX record locks are per process)
        if self._shared is not None:
            return
        if path.exists() and not locks.file_busy(path, write=False):
            with self.open(read_only=True) as wh:
                try:
                    wh.check_schema()
                except SchemaTooNewError as exc:
                    raise dg.Failure(str(exc)) from None

    def _check_lake(self) -> None:
        """The catalog answers (and takes the schema), and the data path takes a file."""
        try:
            lake = parse_lake(self.url or "", self.data_path)
        except LakeUrlError as exc:
            raise dg.Failure(str(exc)) from None
        if "://" not in lake.data_path:  # a folder every worker mounts; object stores: by DuckDB
            folder = Path(lake.data_path)
            try:
                folder.mkdir(parents=True, exist_ok=True)
                probe = folder / f".write-probe-{os.getpid()}"
                probe.write_bytes(b"")
                probe.unlink()
            except OSError as exc:
                raise dg.Failure(
                    f"WAREHOUSE_DATA_PATH={lake.data_path!r} cannot be written: "
                    f"{exc.strerror or exc}; point it at a folder every worker can write"
                ) from None
        # the run's connection, opened here (an s3:// data path is probed by the Warehouse: one
        # small object); a schema a newer release wrote refused before any request
        wh = self.shared()
        if not wh.schema_checked:  # this process had found the lake up to date
            try:
                wh.check_schema()
            except SchemaTooNewError as exc:
                raise dg.Failure(str(exc)) from None

    def open(self, *, read_only: bool = False, partition: str | None = None) -> Warehouse:
        """The warehouse; a lock held too long or an unopenable file fails with the cause.

        A held lock is a TransientFailure (the holder may let go: the step is tried again).
        partition: named in those failures (the run's window).
        """
        refuse_bad_settings(self.settings_problem)
        where = f"partition {partition}: " if partition else ""
        try:
            return Warehouse(
                self.target,
                lock_timeout_s=self.lock_timeout_s,
                read_only=read_only,
                memory_limit=self.memory_limit,
            )
        except WarehouseLockedError as exc:
            raise TransientFailure(
                f"{where}{exc} (WAREHOUSE_LOCK_TIMEOUT_S to wait longer)"
            ) from None
        except (LakeLockError, WarehouseConflictError) as exc:
            # another run migrating the lake for longer than the bound, or a commit race it won
            raise TransientFailure(f"{where}{exc}") from None
        except SchemaTooNewError as exc:
            raise dg.Failure(f"{where}{exc}") from None
        except DataPathUnwritableError as exc:
            raise dg.Failure(
                f"{where}WAREHOUSE_DATA_PATH={self.data_path!r} cannot be written: {exc}; check "
                "the bucket and the AWS_* credentials (docs/lake.md 'The DuckLake lane')"
            ) from None
        except (OSError, WarehouseUnopenableError) as exc:
            setting = f"WAREHOUSE_URL={self.url!r}" if self.url else f"WAREHOUSE_PATH={self.path!r}"
            raise dg.Failure(
                f"{where}{setting} cannot be opened{'' if read_only else ' for writing'}: {exc}"
            ) from None
