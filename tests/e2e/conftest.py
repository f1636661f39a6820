"""Fixtures for driving the Dagster definitions against the simulator and a real DuckDB file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from pipelines.definitions import build_definitions
from pipelines.jambonz import simulator as simmod
from pipelines.jambonz.simulator import Simulator
from pipelines.partitions import day_window
from pipelines.settings import Settings, load_settings
from tests.conftest import NOW

ENV_VARS = (
    "JAMBONZ_BASE_URL",
    "JAMBONZ_API_KEY",
    "JAMBONZ_ACCOUNT_SID",
    "JAMBONZ_SERVICE_PROVIDER_SID",
    "WAREHOUSE_PATH",
    "PARTITIONS_START_DATE",
    "PARTITIONS_TIMEZONE",
    "SYNC_SETTLE_MINUTES",
    "SYNC_LOOKBACK_DAYS",
    "JAMBONZ_RATE_LIMIT_RESERVE",
    "WAREHOUSE_LOCK_TIMEOUT_S",
    "DAGSTER_HOME",
)


@dataclass
class Pipeline:
    """The definitions wired to a simulator and a warehouse file, as a user would configure them."""

    sim: Simulator
    env: dict[str, str]
    warehouse: Path
    settings: Settings
    defs: dg.Definitions
    instance: dg.DagsterInstance

    def run_day(self, day: date, *, raise_on_error: bool = False) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_job_def("daily_sync")
        return job.execute_in_process(
            partition_key=day.isoformat(), instance=self.instance, raise_on_error=raise_on_error
        )

    def truth(self, day: date) -> list[dict[str, object]]:
        w = day_window(day, self.settings.partitions_timezone)
        return self.sim.calls(simmod.ACCOUNT_SID, w.start, w.end)


def pipeline_env(sim: Simulator, warehouse: Path, **extra: str) -> dict[str, str]:
    return {
        "JAMBONZ_BASE_URL": sim.base_url,
        "JAMBONZ_API_KEY": simmod.ACCOUNT_KEY,
        "JAMBONZ_ACCOUNT_SID": simmod.ACCOUNT_SID,
        "WAREHOUSE_PATH": str(warehouse),
        "PARTITIONS_START_DATE": (NOW.date() - timedelta(days=20)).isoformat(),
        "PARTITIONS_TIMEZONE": "UTC",
        **extra,
    }


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def pipeline(
    simulator: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> Iterator[Pipeline]:
    warehouse = tmp_path / "warehouse.duckdb"
    env = pipeline_env(simulator, warehouse)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    with dg.DagsterInstance.ephemeral() as instance:
        yield Pipeline(simulator, env, warehouse, settings, build_definitions(settings), instance)
