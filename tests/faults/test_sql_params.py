"""Inputs: no value is formatted into SQL text, quotes round-trip, the simulator stays on loopback.

A static scan of every `.execute(` / `.executemany(` / `.sql(` / `.query(` call in pipelines/ and
warehouse/: the SQL argument is a literal or a name bound to SQL loaded from a file, never an
f-string, `%` or `.format` with values, nor a concatenation. One documented exception:
warehouse/database.py `Warehouse.rebuild_model` formats the model's *table name* (an identifier
checked against the files in warehouse/models/, not a value) and the model's SQL file text. And
one exception the scan cannot see: the target of ATTACH (a file path, a DuckLake URL), where
DuckDB 1.5's grammar takes no parameter; `warehouse.sql_files.attach` writes it as a quoted
literal (quotes doubled), and a path holding quotes round-trips (below).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipelines.jambonz import simulator as simmod
from pipelines.jambonz.simulator import Simulator
from pipelines.settings import REPO_ROOT
from tests.conftest import NOW
from tests.faults.conftest import MakePipeline, assert_window_exact
from warehouse.database import Warehouse
from warehouse.sql_files import string_literal

SQL_METHODS = {"execute", "executemany", "sql", "query"}
# (file, enclosing function): formats identifiers validated against a closed list, not values.
ALLOWED = {
    ("warehouse/database.py", "rebuild_model"),
    ("warehouse/migrate.py", "_rows"),
    ("warehouse/migrate.py", "migrate"),
}
DAY = NOW.date() - timedelta(days=2)


def _formatted(node: ast.expr) -> bool:
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return not (isinstance(node.left, ast.Constant) and isinstance(node.right, ast.Constant))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr in {"format", "format_map", "join", "replace"}
    return False


def _offenders(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(REPO_ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in SQL_METHODS
                    and node.args
                    and _formatted(node.args[0])
                    and (rel, func.name) not in ALLOWED
                ):
                    found.append(f"{rel}:{node.lineno} in {func.name}()")
    return found


def test_no_value_is_formatted_into_sql_text() -> None:
    offenders = _offenders(REPO_ROOT / "pipelines") + _offenders(REPO_ROOT / "warehouse")
    assert offenders == [], "SQL built from values (bind them as $parameters):\n" + "\n".join(
        offenders
    )


def test_a_warehouse_path_with_quotes_opens_and_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "o'brien'); DROP TABLE calls; --" / "w.duckdb"
    with Warehouse(path) as wh:
        wh.con.execute("CREATE TABLE probe (a INTEGER)")
        ((attached,),) = wh.con.execute(
            "SELECT path FROM duckdb_databases() WHERE database_name = 'warehouse'"
        ).fetchall()
    assert attached == str(path)
    with Warehouse(path, read_only=True) as wh:
        assert wh.count_calls(NOW - timedelta(days=1), NOW) == 0


def test_an_attach_target_with_a_newline_is_refused() -> None:
    with pytest.raises(ValueError, match="no NUL or newline"):
        string_literal("a\nb")
    assert string_literal("it's") == "'it''s'"


def test_the_scan_catches_what_it_is_for(tmp_path: Path) -> None:
    bad = (
        "def f(con, sid, day):\n"
        "    con.execute(f\"SELECT * FROM calls WHERE account_sid = '{sid}'\")\n"
        "    con.execute(\"DELETE FROM calls WHERE day = '%s'\" % day)\n"
        "    con.sql('SELECT {}'.format(sid))\n"
        "    con.execute('SELECT * FROM calls WHERE account_sid = ' + sid)\n"
        "    con.execute('SELECT 1 WHERE $a = 1', {'a': sid})\n"
    )
    folder = REPO_ROOT / "warehouse"
    probe = folder / "_probe_sql_scan.py"
    try:
        probe.write_text(bad)
        assert len([o for o in _offenders(folder) if "_probe_sql_scan" in o]) == 4
    finally:
        probe.unlink()


def test_the_one_exception_formats_only_a_validated_identifier() -> None:
    from warehouse.database import Warehouse

    source = ast.get_source_segment(
        (REPO_ROOT / "warehouse/database.py").read_text(),
        next(
            n
            for n in ast.walk(ast.parse((REPO_ROOT / "warehouse/database.py").read_text()))
            if isinstance(n, ast.FunctionDef) and n.name == "rebuild_model"
        ),
    )
    assert source is not None
    assert "if name not in model_names():" in source
    with pytest.raises(KeyError):
        Warehouse.rebuild_model(
            None,  # type: ignore[arg-type]
            'calls"; DROP TABLE calls; --',
            day=DAY,
            tz="UTC",
            window_start=datetime.now(UTC),
            window_end=datetime.now(UTC),
        )


def test_sql_files_hold_no_python_placeholders() -> None:
    import re

    placeholder = re.compile(r"\{[a-z_]*\}|%s|%\([a-z_]+\)s")
    for path in sorted((REPO_ROOT / "warehouse").rglob("*.sql")):
        assert not placeholder.search(path.read_text()), path


QUOTED = {
    "account_sid": "o'brien'; DROP TABLE calls; --",
    "trunk": "O'Reilly's \"trunk\" $1 ?",
    "termination_reason": "it's '); DELETE FROM calls; --",
    "from": "+1508'555",
}


def test_quotes_and_sql_in_values_round_trip(
    simulator: Simulator, make_pipeline: MakePipeline
) -> None:
    at = datetime(DAY.year, DAY.month, DAY.day, 9, 30, tzinfo=UTC)
    record: dict[str, Any] = {
        "attempted_at": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "account_sid": QUOTED["account_sid"],
        "answered": False,
        "answered_at": simmod.UNANSWERED_SENTINEL,
        "application_sid": None,
        "call_sid": "quote-'-sid",
        "direction": "inbound",
        "duration": 0,
        "from": QUOTED["from"],
        "host": "10.0.0.11",
        "recording_url": None,
        "remote_host": "3.3.3.3",
        "service_provider_sid": simmod.SERVICE_PROVIDER_SID,
        "sip_callid": "q@10.0.0.1",
        "sip_parent_callid": None,
        "sip_status": 486,
        "terminated_at": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "termination_reason": QUOTED["termination_reason"],
        "to": "15085550199",
        "trace_id": None,
        "trunk": QUOTED["trunk"],
        "_account_sid": simmod.ACCOUNT_SID,
    }
    simulator.add_records([record])
    pipeline = make_pipeline(simulator)
    assert pipeline.run_day(DAY).success
    assert assert_window_exact(pipeline, DAY) > 1
    with pipeline.connect(read_only=True) as con:
        row = con.execute(
            "SELECT account_sid, trunk, termination_reason, from_number FROM calls "
            "WHERE call_key = $k",
            {"k": "quote-'-sid"},
        ).fetchone()
        trunks = {r[0] for r in con.execute("SELECT trunk FROM answer_rates_daily").fetchall()}
    assert row == tuple(QUOTED.values())
    assert QUOTED["trunk"] in trunks


def test_the_simulator_binds_to_loopback_unless_told_otherwise() -> None:
    with Simulator(seed=1, calls_per_day=10, now=NOW) as sim:
        assert sim.host == "127.0.0.1"
        assert sim.base_url.startswith("http://127.0.0.1:")
    with subprocess.Popen(
        [sys.executable, "-m", "pipelines.jambonz.simulator", "--port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        try:
            banner = proc.stdout.readline()
        finally:
            proc.terminate()  # the simulator handles SIGTERM as Ctrl-C
            proc.communicate(timeout=30)
    assert "127.0.0.1" in banner, banner
    assert "0.0.0.0" not in banner
