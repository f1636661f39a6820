"""The demo: a simulated jambonz, the last 7 days materialized through Dagster, a report.

`python -m pipelines.demo` starts the built-in simulator on loopback, points the pipeline at it
through the same environment variables a real deployment uses, materializes the last 7 complete
days' calls, alerts and models in one run of the `daily_sync` job over the range (as a backfill
runs it; each day keeps its own window, transaction, checks and metadata), then prints answer rate
and median duration per trunk from the DuckDB file, and per day the answer rate beside the calls
refused at the call limit, and writes the HTML report of those days beside the file (var/report/).

`python -m pipelines.demo --ui` starts the simulator and `dg dev` against it instead, its partitions
starting at the demo's first day, so the UI can be explored with data that behaves like jambonz.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pipelines.settings import REPO_ROOT

# The demo prints its own summary; Dagster's event log stays in the UI (make dev).
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# In a run of a range, Dagster's step planner warns (on its module's Python logger, not the run's)
# of every blocking check that "emitted no result" in its step: each day's checks are attached to
# that day's partition instead (pipelines/days.py), which it does not see. Not for the demo's
# reader.
PLANNER_LOGGER = "dagster._core.execution.plan.active"

DEMO_ENV_VARS = (
    "JAMBONZ_BASE_URL",
    "JAMBONZ_API_KEY",
    "JAMBONZ_ACCOUNT_SID",
    "WAREHOUSE_PATH",
    "PARTITIONS_START_DATE",
    "PARTITIONS_TIMEZONE",
)


def _environment(base_url: str, warehouse: Path, start: str) -> dict[str, str]:
    from pipelines.jambonz import simulator

    values = (base_url, simulator.ACCOUNT_KEY, simulator.ACCOUNT_SID, str(warehouse), start, "UTC")
    return dict(zip(DEMO_ENV_VARS, values, strict=True))


def dagster_home() -> Path:
    """DAGSTER_HOME when set, else var/dagster/ (git-ignored); either holds the project's
    dagster.yaml, linked there when it has none (Dagster warns of an instance without one)."""
    home = Path(os.environ.get("DAGSTER_HOME") or REPO_ROOT / "var" / "dagster")
    home.mkdir(parents=True, exist_ok=True)
    link = home / "dagster.yaml"
    if not link.exists() and not (home / "dagster.yml").exists():
        link.symlink_to(REPO_ROOT / "dagster.yaml")
    return home


def _print_table(columns: list[str], rows: list[tuple[object, ...]]) -> None:
    cells = [columns, *[["" if v is None else str(v) for v in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        first, *rest = zip(row, widths, strict=True)
        print("  ".join([first[0].ljust(first[1]), *(c.rjust(w) for c, w in rest)]))


def run_demo(days: int, calls_per_day: int, warehouse: Path) -> int:
    import dagster as dg

    from pipelines.jambonz.simulator import Simulator
    from warehouse.database import Warehouse

    today = datetime.now(UTC).date()
    first = today - timedelta(days=days)
    with Simulator(seed=42, calls_per_day=calls_per_day) as sim:
        print(f"simulator: {sim.base_url} ({calls_per_day} calls/day per account, seed 42)")
        os.environ.update(_environment(sim.base_url, warehouse, first.isoformat()))
        from pipelines.definitions import build_definitions
        from pipelines.settings import load_settings

        settings = load_settings()
        defs = build_definitions(settings)
        job = defs.resolve_job_def("daily_sync")
        os.environ["DAGSTER_HOME"] = str(dagster_home())
        instance = dg.DagsterInstance.get()
        logging.getLogger(PLANNER_LOGGER).setLevel(logging.ERROR)
        # the days in one run, as a backfill of the range runs them (the assets' single-run
        # policy): one start, import and instance set-up instead of one per day. A run holds at
        # most SYNC_BACKFILL_MAX_DAYS (31) days: a longer demo takes one run per so many.
        last = today - timedelta(days=1)
        ok = True
        for offset in range(0, days, settings.backfill_max_days):
            run_first = first + timedelta(days=offset)
            run_last = min(run_first + timedelta(days=settings.backfill_max_days - 1), last)
            ok = _sync_range(job, instance, run_first, run_last) and ok
        if not ok:
            return 1
        # today so far, as the intraday_calls_sync sensor syncs it: provisional
        result = defs.resolve_job_def("intraday_sync").execute_in_process(
            instance=instance,
            run_config={**QUIET, "ops": {"calls_today": {"config": {"day": today.isoformat()}}}},
            raise_on_error=False,
        )
        (today_meta, *_) = [*_by_day(result, "calls_today").values(), {}]  # not partitioned
        print(
            f"{today} so far: {'ok' if result.success else 'FAILED'}"
            f"  rows={_v(today_meta, 'dagster/row_count')}"
            f" provisional={_v(today_meta, 'provisional')}"
        )
        if not result.success:
            return 1
    start = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
    with Warehouse(warehouse, read_only=True) as wh:
        columns, rows = wh.report("by_trunk", {"start": start, "end": start + timedelta(days)})
        refused = wh.report("alerts_daily_refused", {"first": first, "last": last})
    print(f"\nanswer rate and median duration per trunk, {first} .. {last}:")
    _print_table(columns, rows)
    print("\nanswer rate and calls refused at the call limit (never call records), per day:")
    _print_table(*refused)
    from pipelines.report import Period, write_report

    # beside the warehouse: var/report/ for the default var/demo.duckdb
    period = Period(first, last, "UTC")
    report = write_report(warehouse, period, warehouse.parent / "report")
    where = _pasteable(warehouse)
    print(f"\nwarehouse: {where}")
    print(
        f"report:    {_pasteable(report)}  (the trunk KPIs, alerts and destinations of these days)"
    )
    print("\nnext, from the repository's folder:")
    for hint in hints(warehouse):
        print(f"  {hint}")
    return 0


def _pasteable(path: Path) -> str:
    """`path` as typed from the repository's folder (where every hint is pasted)."""
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def hints(warehouse: Path) -> list[str]:
    """The commands the demo prints, each working as pasted in the repository's folder."""
    where = _pasteable(warehouse)
    query = "SELECT trunk, count(*) AS calls FROM calls GROUP BY trunk ORDER BY calls DESC"
    return [
        f'.venv/bin/duckdb -readonly {where} "{query}"',
        f"make report WAREHOUSE_PATH={where}",
        "make dev    # the Dagster UI on these days, against the simulator",
    ]


def _sync_range(job: Any, instance: Any, first: date, last: date) -> bool:
    """One run of daily_sync over the days first to last, a line per day from its own metadata;
    whether the run succeeded."""
    tags = {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }
    result = job.execute_in_process(
        instance=instance, run_config=QUIET, tags=tags, raise_on_error=False
    )
    calls, alerts = (_by_day(result, node) for node in ("calls", "alerts"))
    for n in range((last - first).days + 1):
        key = (first + timedelta(days=n)).isoformat()
        meta, alert = calls.get(key, {}), alerts.get(key, {})
        print(
            f"{key}: {'ok' if key in calls and key in alerts else 'FAILED'}"
            f"  rows={_v(meta, 'dagster/row_count')} inserted={_v(meta, 'inserted')}"
            f" updated={_v(meta, 'updated')} requests={_v(meta, 'requests')}"
            f" alerts={_v(alert, 'dagster/row_count')}"
        )
    return bool(result.success)


def _by_day(result: Any, node: str) -> dict[str, dict[str, object]]:
    """The run's materializations of `node` (an ExecuteInProcessResult's), partition -> metadata:
    each day of a range has its own."""
    return {
        str(m.partition): dict(m.metadata) for m in result.asset_materializations_for_node(node)
    }


def _v(meta: object, key: str) -> object:
    value = getattr(meta, "get", lambda _k: None)(key)
    return getattr(value, "value", value)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_ui(calls_per_day: int, warehouse: Path, days: int, port: int | None) -> int:
    """`dg dev` on the simulator, its partitions starting at the demo's first day; the URL is
    the last line printed, once the UI answers."""
    from pipelines.jambonz.simulator import Simulator

    start = (datetime.now(UTC).date() - timedelta(days=days)).isoformat()
    with Simulator(seed=42, calls_per_day=calls_per_day) as sim:
        home = dagster_home()
        env = {**os.environ, **_environment(sim.base_url, warehouse, start)}
        env["DAGSTER_HOME"] = str(home)
        port = port or _free_port(3000)
        url = f"http://127.0.0.1:{port}"
        # Started in DAGSTER_HOME and given the module (`-m`, `-d`): run on the project's folder,
        # dg dev would move there and warn that the repository's dagster.yaml is not used. Its
        # own process group, so stopping the demo stops it all.
        cmd = [str(Path(sys.executable).parent / "dg"), "dev", "-m", "pipelines.definitions"]
        cmd += ["-d", str(REPO_ROOT)]
        cmd += ["--host", "127.0.0.1", "--port", str(port)]
        # its output (the daemon's, every run's) to a file: the URL stays the last line here
        log = home / "dg-dev.log"
        print(f"simulator: {sim.base_url}; starting dg dev on port {port} (its log: {log})")
        with log.open("w") as out:
            proc = subprocess.Popen(  # noqa: S603
                cmd, cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        # A terminated demo (make interrupted, a service manager) takes dg dev down with it.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            if _answers(f"{url}/server_info", proc):
                print(f"\nDagster UI: {url}  (days from {start}; Ctrl-C stops it)", flush=True)
            else:
                print("".join(log.read_text().splitlines(keepends=True)[-20:]), file=sys.stderr)
                print(f"dg dev did not start; its log: {log}", file=sys.stderr)
            return proc.wait()
        except KeyboardInterrupt:
            return _stop_group(proc)


def _free_port(preferred: int) -> int:
    """`preferred` when nothing listens there (jambonz's own API server often holds 3000),
    else one the kernel picks."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise OSError("no free port on 127.0.0.1")


def _answers(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 300.0) -> bool:
    """Whether `url` answers before `proc` exits (polled with a deadline)."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code == 200:
                return True
        time.sleep(0.5)  # polling the server's start, with a deadline
    return False


def _stop_group(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM dg dev's process group, then SIGKILL what is left after 10 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ui", action="store_true", help="start dg dev (the UI) instead")
    parser.add_argument("--port", type=int, default=None, help="the UI's port (default 3000)")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--calls-per-day", type=int, default=2000)
    parser.add_argument("--warehouse", type=Path, default=REPO_ROOT / "var" / "demo.duckdb")
    args = parser.parse_args(argv)
    if args.ui:
        return run_ui(args.calls_per_day, args.warehouse, args.days, args.port)
    return run_demo(args.days, args.calls_per_day, args.warehouse)


if __name__ == "__main__":
    sys.exit(main())
