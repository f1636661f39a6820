"""The README's main command: the demo syncs days through Dagster and prints a per-trunk table."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path

import duckdb
import pytest

from pipelines import demo
from pipelines.jambonz.simulator import TRUNKS
from pipelines.settings import REPO_ROOT


def readme_sql() -> list[str]:
    """Every statement of the README's ```sql blocks (its recipes for the people who query)."""
    text = (REPO_ROOT / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```sql\n")[1:]]
    return [s.strip() for b in blocks for s in b.split(";") if s.strip()]


def test_demo_syncs_through_dagster_and_prints_each_trunk(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    clean_env: None,
) -> None:
    for name in demo.DEMO_ENV_VARS:
        monkeypatch.delenv(name, raising=False)  # the demo sets them; monkeypatch restores them
        monkeypatch.setenv(name, "")
    # the demo's instance in a folder of the test's, not the repository's var/dagster
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    warehouse = tmp_path / "demo.duckdb"
    assert demo.main(["--days", "2", "--calls-per-day", "600", "--warehouse", str(warehouse)]) == 0
    out = capsys.readouterr().out
    assert out.count(": ok ") == 3  # the two days, and today so far
    (today,) = [line for line in out.splitlines() if " so far: ok " in line]
    assert today.endswith("provisional=True")
    table = out.split("per trunk")[1]
    for trunk in TRUNKS:
        assert trunk in table
    with duckdb.connect(str(warehouse), read_only=True) as con:
        midnight = datetime.combine(datetime.now(UTC).date(), time(0), tzinfo=UTC)
        ((attempts,),) = con.execute(  # the demo's days, not today's calls so far
            "SELECT count(*) FROM calls WHERE attempted_at < $midnight", {"midnight": midnight}
        ).fetchall()
    # rows between the header and the blank line; attempts is the 4th field from the right
    rows = table.split("\n\n")[0].splitlines()[2:]
    assert sum(int(row.split()[-4]) for row in rows) == attempts
    # and the HTML report of the same days, beside the warehouse
    (report,) = (tmp_path / "report").glob("calls-*.html")
    assert f"report:    {report}" in out
    assert "<h2>Calls per hour</h2>" in report.read_text()
    # every SQL recipe of the README runs, unchanged, on the warehouse the demo wrote; those on
    # the new models find yesterday's rows (the demo's days end yesterday)
    statements = readme_sql()
    assert len(statements) >= 7
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")  # the demo's days are UTC days
        for statement in statements:
            rows = con.execute(statement).fetchall()
            # today's may be empty: right after midnight no call of the day has ended yet
            today = "day = current_date " in statement
            if ("calls_hourly" in statement or "trunk_kpis_daily" in statement) and not today:
                assert rows, statement

    # the commands it prints next carry this warehouse's path (test_newcomer.py pastes them)
    hints = [h.strip() for h in out.split("next, from the repository's folder:\n")[1].splitlines()]
    assert [h.split()[0] for h in hints] == [".venv/bin/duckdb", "make", "make"], hints
    assert str(warehouse) in hints[0]
    assert hints[1] == f"make report WAREHOUSE_PATH={warehouse}"
