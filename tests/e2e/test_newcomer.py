"""A newcomer's first hour, typed as the README gives it: `make help`, `make demo`, the commands
the demo prints and the README's shell lines for querying, then the three commonest mistakes
(a wrong JAMBONZ_BASE_URL, no JAMBONZ_API_KEY, an impossible PARTITIONS_START_DATE) through
`dg launch`, each failing fast with its cause at the bottom of the terminal.

`make dev` is tests/e2e/test_dg.py's (a server).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path

import duckdb
import pytest

from pipelines.jambonz.simulator import TRUNKS, Simulator
from pipelines.settings import REPO_ROOT
from tests.conftest import NOW
from tests.e2e.conftest import ENV_VARS, cli_env
from tests.helpers import readme_sql

pytestmark = pytest.mark.process

README = (REPO_ROOT / "README.md").read_text()


def sh_block(after: str) -> list[str]:
    """The command lines of the first ```sh block after the heading `after`, comments dropped."""
    block = README.split(after, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def paste(line: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`line` as a shell runs it when pasted in `cwd`."""
    return subprocess.run(
        ["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


def test_make_help_lists_targets_that_each_do_something() -> None:
    """`make help` is the default goal, and every target it lists has a recipe (make -n prints
    what it would run: a listed target without a rule would print nothing, as `make unit` did).
    A process: make itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    shown = subprocess.run(
        ["make", "--no-print-directory"],
        cwd=REPO_ROOT,
        env=env,
        text=True,
        capture_output=True,
        check=True,
    ).stdout
    targets = re.findall(r"^  make (\S+) +\S", shown, flags=re.MULTILINE)
    assert {"demo", "dev", "report", "test", "check"} <= set(targets), shown
    for target in targets:
        dry = subprocess.run(
            ["make", "--no-print-directory", "-n", target],
            cwd=REPO_ROOT,
            env=env,
            text=True,
            capture_output=True,
            check=True,
        )
        assert dry.stdout.strip(), f"make {target} would run nothing"


def test_a_newcomer_follows_the_readme_and_every_printed_command_works(tmp_path: Path) -> None:
    """`make demo` as typed, in a process of its own (the Makefile, the venv, the demo's own
    DAGSTER_HOME): its tables add up to the calls and the refused calls (alerts) it wrote, the
    README's SQL recipes run on them;
    every command it prints, pasted into a shell in the repository's folder; the README's lines
    for querying a warehouse, pasted in a folder laid out as the repository is
    (var/warehouse.duckdb a copy of the demo's). A process: the shell a person pastes into."""
    assert sh_block("## Quickstart")[:2] == ["make demo", "make dev"]
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS and not k.startswith("MAKE")}
    env["DAGSTER_HOME"] = str(tmp_path / "dagster_home")  # not the repository's var/dagster
    demo = paste("make --no-print-directory demo", REPO_ROOT, env)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    out = demo.stdout
    assert out.count(": ok ") == 8, out  # the seven days (one run), and today so far
    (today,) = [line for line in out.splitlines() if " so far: ok " in line]
    assert today.endswith("provisional=True")
    table = out.split("per trunk")[1]
    for trunk in TRUNKS:
        assert trunk in table
    hints = [
        h.strip()
        for h in demo.stdout.split("next, from the repository's folder:\n")[1].splitlines()
        if h.strip()
    ]
    assert [h.split()[0] for h in hints] == [".venv/bin/duckdb", "make", "make"], hints
    warehouse = REPO_ROOT / "var" / "demo.duckdb"
    assert "var/demo.duckdb" in hints[0]
    midnight = datetime.combine(datetime.now(UTC).date(), clock(0), tzinfo=UTC)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        days = {"first": midnight - timedelta(days=7), "midnight": midnight}
        ((attempts,),) = con.execute(  # the demo's seven days, not today's calls so far
            "SELECT count(*) FROM calls WHERE attempted_at >= $first AND attempted_at < $midnight",
            days,
        ).fetchall()
        refused = con.execute(  # the calls refused at the call limit, per day of the seven
            "SELECT CAST(timezone('UTC', alerted_at) AS DATE) AS day, count(*) FROM alerts "
            "WHERE alerted_at >= $first AND alerted_at < $midnight AND alert_type IN "
            "('account-call-limit', 'service-provider-call-limit') GROUP BY day",
            days,
        ).fetchall()
        # every SQL recipe of the README runs, unchanged; those on the models find rows (the
        # demo's days end yesterday)
        con.execute("SET TimeZone = 'UTC'")  # the demo's days are UTC days
        statements = readme_sql()
        assert len(statements) >= 10
        models = ("calls_hourly", "trunk_kpis_daily", "alerts_daily", "destinations_daily")
        for statement in statements:
            rows = con.execute(statement).fetchall()
            # today's may be empty: right after midnight no call of the day has ended yet; so
            # may this month's on its first day
            today_only = "day = current_date " in statement or (
                "date_trunc('month', current_date)" in statement and midnight.day == 1
            )
            if any(model in statement for model in models) and not today_only:
                assert rows, statement
    # the table's rows: between its header and the blank line; attempts 4th field from the right
    rows = table.split("\n\n")[0].splitlines()[2:]
    assert sum(int(row.split()[-4]) for row in rows) == attempts
    # per day: the day's attempts beside the calls refused at the call limit
    per_day = out.split("calls refused at the call limit")[1].split("\n\n")[0].splitlines()
    assert per_day[1].split() == [
        "day",
        "attempts",
        "answered",
        "answer_rate",
        "refused_at_call_limit",
        "refused_share",
        "alerts",
    ]
    shown = {row.split()[0]: row.split() for row in per_day[2:]}
    assert len(shown) == 7
    assert sum(int(row[1]) for row in shown.values()) == attempts
    assert {day: int(row[4]) for day, row in shown.items() if int(row[4])} == {
        str(day): n for day, n in refused
    }
    assert sum(n for _, n in refused) > 0
    # the DuckDB CLI's hint: each trunk and its calls
    query = paste(hints[0], REPO_ROOT, env)
    assert query.returncode == 0, query.stderr
    for trunk in TRUNKS:
        assert trunk in query.stdout, query.stdout
    # the report's hint writes a report of the demo's days
    report = paste(hints[1], REPO_ROOT, env)
    assert report.returncode == 0, report.stdout + report.stderr
    (line,) = [x for x in report.stdout.splitlines() if x.startswith("report: ")]
    assert "<h2>Calls per hour</h2>" in Path(line.removeprefix("report: ")).read_text()
    assert hints[2].startswith("make dev")

    # "Querying the warehouse": the README's shell lines on var/warehouse.duckdb, as pasted
    home = tmp_path / "repo"
    (home / "var").mkdir(parents=True)
    (home / ".venv").symlink_to(REPO_ROOT / ".venv")
    shutil.copy(warehouse, home / "var" / "warehouse.duckdb")
    lines = sh_block("## Querying the warehouse")
    assert len(lines) == 3, lines
    for line in lines:
        done = paste(line + " < /dev/null", home, env)  # the CLI without a query reads stdin
        assert done.returncode == 0, f"{line}: {done.stderr}"
    assert "5 rows" in paste(lines[1], home, env).stdout  # the recipe's LIMIT 5, printed
    snapshot = Path(lines[2].split()[-1])  # the copy the README makes, where it says
    with duckdb.connect(str(snapshot), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM calls").fetchone() != (0,)
    snapshot.unlink()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens


@pytest.mark.parametrize(
    ("mistake", "said"),
    [
        ("JAMBONZ_BASE_URL", ["JAMBONZ_BASE_URL='http://127.0.0.1:", "did not answer", "attempts"]),
        ("JAMBONZ_API_KEY", ["JAMBONZ_API_KEY is not set"]),
        ("PARTITIONS_START_DATE", ["PARTITIONS_START_DATE='2026-13-01'", "month must be in 1..12"]),
    ],
)
def test_a_mistake_fails_the_cli_fast_with_its_cause_at_the_bottom(
    simulator: Simulator, tmp_path: Path, mistake: str, said: list[str]
) -> None:
    """`dg launch` of a day, as the README's backfill section gives it, with one setting wrong:
    it exits non-zero without a retry, the cause (the variable, its value, what is wrong) is among
    the last five lines a person sees, and no warehouse file is written. A process: the CLI's
    own output, Dagster's stack traces and all, is what a person reads."""
    env, _ = cli_env(simulator, tmp_path)
    del env["SYNC_RETRIES"]  # the default: a transient failure would wait 60 s and try again
    if mistake == "JAMBONZ_BASE_URL":
        env[mistake] = f"http://127.0.0.1:{_closed_port()}"
    elif mistake == "JAMBONZ_API_KEY":
        del env[mistake]
    else:
        env[mistake] = "2026-13-01"
    day = (NOW.date() - timedelta(days=2)).isoformat()
    started = time.monotonic()
    done = subprocess.run(
        [".venv/bin/dg", "launch", "--assets", "calls*", "--partition", day],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    seen = (done.stdout + done.stderr).rstrip("\n").splitlines()
    last = "\n".join(seen[-5:])
    assert done.returncode != 0
    # failed at once: not taken for a passing outage (jambonz down, the file held) and retried
    # after SYNC_RETRY_DELAY_S (60 s), as a wrong URL was for 15 minutes
    assert "trying again" not in done.stdout + done.stderr, f"after {elapsed:.0f} s"
    for words in said:
        assert words in last, last
    assert not (tmp_path / "warehouse.duckdb").exists()
    if "JAMBONZ_API_KEY" in env:
        assert env["JAMBONZ_API_KEY"] not in done.stdout + done.stderr
