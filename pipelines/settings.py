"""Settings read from the environment when the definitions load.

Only non-secret settings live here. The API key is never read here: it enters through Dagster's
`EnvVar` where the resources are wired (pipelines/definitions.py). Every setting has a default so
the definitions load, and the UI opens, on a fresh checkout with nothing set.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipelines.jambonz.pacing import DEFAULT_RESERVE
from pipelines.numbers import check_region
from pipelines.sync import CHUNK_RECORDS
from warehouse.database import DEFAULT_LOCK_TIMEOUT_S, DEFAULT_MEMORY_LIMIT
from warehouse.lake import Lake, LakeUrlError
from warehouse.lake import parse as parse_lake

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BASE_URL = "https://api.jambonz.cloud"
DEFAULT_WAREHOUSE_PATH = REPO_ROOT / "var" / "warehouse.duckdb"
# The fraud checks' thresholds (pipelines/fraud.py), FRAUD_<CHECK>_<NAME>: default (an int where
# the threshold counts things)
THRESHOLDS: dict[str, float] = {
    "FRAUD_WANGIRI_INBOUND_MIN_ATTEMPTS": 20,
    "FRAUD_WANGIRI_INBOUND_MIN_CALLED": 10,
    "FRAUD_WANGIRI_INBOUND_MIN_UNANSWERED_SHARE": 0.90,
    "FRAUD_WANGIRI_INBOUND_MAX_RING_S": 8.0,
    "FRAUD_WANGIRI_INBOUND_MIN_SHORT_RING_SHARE": 0.80,
    "FRAUD_WANGIRI_INBOUND_MIN_BURST": 10,
    "FRAUD_IRSF_DESTINATION_HIGH_RISK_MIN_ATTEMPTS": 5,
    "FRAUD_IRSF_DESTINATION_MIN_ACTIVE_DAYS": 7,
    "FRAUD_IRSF_DESTINATION_MIN_ATTEMPTS": 10,
    "FRAUD_IRSF_DESTINATION_MIN_ANSWERED_S": 600,
    "FRAUD_IRSF_DESTINATION_MIN_CALLED": 3,
    "FRAUD_SHORT_CALL_DIALER_MIN_ANSWERED": 100,
    "FRAUD_SHORT_CALL_DIALER_MIN_SHORT_SHARE": 0.15,
    "FRAUD_SHORT_CALL_DIALER_MAX_ACD_S": 60.0,
    "FRAUD_SHORT_CALL_DIALER_MIN_CALLED": 50,
    "FRAUD_ACD_COLLAPSE_MIN_ANSWERED": 50,
    "FRAUD_ACD_COLLAPSE_MIN_BASELINE_DAYS": 5,
    "FRAUD_ACD_COLLAPSE_MAX_ACD_RATIO": 0.5,
    "FRAUD_ACD_COLLAPSE_MIN_SHORT_SHARE": 0.15,
    "FRAUD_ACD_COLLAPSE_SHORT_SHARE_FACTOR": 2.0,
}

# jambonz keeps at most about 30 days: older partitions would only ever read `total: 0`.
DEFAULT_HISTORY_DAYS = 30


class SettingsError(ValueError):
    """A setting has a value that cannot work; the message names the variable, `variable`."""

    def __init__(self, message: str, variable: str) -> None:
        super().__init__(message)
        self.variable = variable


_N = TypeVar("_N", int, float)
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MEMORY = re.compile(r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


@dataclass(frozen=True)
class Settings:
    base_url: str
    account_sid: str | None
    service_provider_sid: str | None
    warehouse_path: str
    partitions_start_date: str
    partitions_timezone: str
    settle_minutes: int
    lookback_days: int
    rate_limit_reserve: float
    warehouse_lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
    warehouse_memory_limit: str = DEFAULT_MEMORY_LIMIT
    chunk_records: int = CHUNK_RECORDS  # SYNC_CHUNK_RECORDS: records normalized and loaded at once
    sync_retries: int = 4
    sync_retry_delay_s: float = 60.0
    freshness_margin_minutes: int = 120
    warehouse_url: str | None = None  # a DuckLake (warehouse/lake.py); None: the file
    warehouse_data_path: str | None = None
    backfill_max_days: int = 31  # partitions one run may hold (pipelines/days.py)
    intraday_minutes: int = 15  # today re-synced this often (pipelines/intraday.py); 0: never
    # NUMBERS_DEFAULT_REGION: the ISO region whose national numbers (digits without `+`) the
    # far ends are read as first (pipelines/numbers.py); None: digits are read as E.164
    numbers_default_region: str | None = None
    # NUMBERS_HOME_COUNTRIES (default: the default region; neither: no country is home) and
    # NUMBERS_HIGH_RISK (default 001): ISO codes, for the fraud checks (pipelines/fraud.py)
    numbers_home_countries: frozenset[str] = frozenset()
    numbers_high_risk: frozenset[str] = frozenset({"001"})
    # FRAUD_<CHECK>_<NAME>: the fraud checks' thresholds (THRESHOLDS above)
    fraud_thresholds: tuple[tuple[str, float], ...] = tuple(THRESHOLDS.items())

    @property
    def warehouse_target(self) -> Path | Lake:
        """What Warehouse opens: the DuckLake of WAREHOUSE_URL, else the file."""
        if self.warehouse_url:
            return parse_lake(self.warehouse_url, self.warehouse_data_path)
        return Path(self.warehouse_path)


def _number(
    env: dict[str, str], name: str, default: _N, lo: _N, hi: _N, *, hi_open: bool = False
) -> _N:
    """`name` parsed as `default`'s type, in lo..hi (or [lo, hi) when hi_open); unset: default."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = type(default)(raw)
    except ValueError:
        kind = "a whole number" if isinstance(default, int) else "a number"
        raise SettingsError(f"{name}={raw!r} is not {kind}", name) from None
    if not (lo <= value < hi if hi_open else lo <= value <= hi):
        span = f"[{lo:g}, {hi:g})" if hi_open else f"{lo:g}..{hi:g}"
        raise SettingsError(f"{name}={value} is outside {span}", name)
    return value


def load_settings(env: dict[str, str] | None = None, *, today: date | None = None) -> Settings:
    """Read the settings from `env` (default: os.environ), validating each one."""
    env = dict(os.environ if env is None else env)
    tz = env.get("PARTITIONS_TIMEZONE", "").strip() or "UTC"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"PARTITIONS_TIMEZONE={tz!r} is not an IANA time zone", "PARTITIONS_TIMEZONE"
        ) from None
    start = env.get("PARTITIONS_START_DATE", "").strip()
    if start:
        try:
            date.fromisoformat(start)
        except ValueError as exc:
            # the shape is right and the day impossible (2026-13-01): say what is wrong with it
            why = f"not a date ({exc})" if _ISO_DAY.match(start) else "not YYYY-MM-DD"
            raise SettingsError(
                f"PARTITIONS_START_DATE={start!r} is {why}", "PARTITIONS_START_DATE"
            ) from None
    else:
        today = today or datetime.now(UTC).date()
        start = (today - timedelta(days=DEFAULT_HISTORY_DAYS)).isoformat()
    reserve = _number(env, "JAMBONZ_RATE_LIMIT_RESERVE", DEFAULT_RESERVE, 0.0, 1.0, hi_open=True)
    lock_timeout = _number(env, "WAREHOUSE_LOCK_TIMEOUT_S", DEFAULT_LOCK_TIMEOUT_S, 0.0, 3600.0)
    retry_delay = _number(env, "SYNC_RETRY_DELAY_S", 60.0, 0.0, 3600.0)
    memory_limit = env.get("WAREHOUSE_MEMORY_LIMIT", "").strip() or DEFAULT_MEMORY_LIMIT
    if not _MEMORY.match(memory_limit):
        raise SettingsError(
            f"WAREHOUSE_MEMORY_LIMIT={memory_limit!r} is not a size like 512MB or 2GB",
            "WAREHOUSE_MEMORY_LIMIT",
        )
    url = env.get("WAREHOUSE_URL", "").strip() or None
    data_path = env.get("WAREHOUSE_DATA_PATH", "").strip() or None
    if url:
        try:
            parse_lake(url, data_path)
        except LakeUrlError as exc:
            raise SettingsError(str(exc), "WAREHOUSE_URL") from None
    elif data_path:
        raise SettingsError(
            "WAREHOUSE_DATA_PATH is set but WAREHOUSE_URL is not: the data path belongs to a "
            "DuckLake (WAREHOUSE_URL=ducklake:postgres:...); unset it to use WAREHOUSE_PATH",
            "WAREHOUSE_DATA_PATH",
        )
    region = env.get("NUMBERS_DEFAULT_REGION", "").strip() or None
    if region is not None:
        try:
            region = check_region(region)
        except ValueError as exc:
            raise SettingsError(
                f"NUMBERS_DEFAULT_REGION={region!r}: {exc}", "NUMBERS_DEFAULT_REGION"
            ) from None
    home = _countries(env, "NUMBERS_HOME_COUNTRIES", frozenset({region} if region else ()))
    high_risk = _countries(env, "NUMBERS_HIGH_RISK", frozenset({"001"}))
    thresholds = tuple(
        (name, _number(env, name, default, 0.0 if isinstance(default, float) else 0, _top(name)))
        for name, default in THRESHOLDS.items()
    )
    return Settings(
        base_url=(env.get("JAMBONZ_BASE_URL", "").strip() or DEFAULT_BASE_URL).rstrip("/"),
        account_sid=env.get("JAMBONZ_ACCOUNT_SID", "").strip() or None,
        service_provider_sid=env.get("JAMBONZ_SERVICE_PROVIDER_SID", "").strip() or None,
        warehouse_path=env.get("WAREHOUSE_PATH", "").strip() or str(DEFAULT_WAREHOUSE_PATH),
        partitions_start_date=start,
        partitions_timezone=tz,
        settle_minutes=_number(env, "SYNC_SETTLE_MINUTES", 60, 0, 23 * 60 + 59),
        lookback_days=_number(env, "SYNC_LOOKBACK_DAYS", 2, 0, 30),
        rate_limit_reserve=reserve,
        warehouse_lock_timeout_s=lock_timeout,
        warehouse_memory_limit=memory_limit,
        sync_retries=_number(env, "SYNC_RETRIES", 4, 0, 20),
        sync_retry_delay_s=retry_delay,
        freshness_margin_minutes=_number(env, "SYNC_FRESHNESS_MARGIN_MINUTES", 120, 0, 23 * 60),
        warehouse_url=url,
        warehouse_data_path=data_path,
        backfill_max_days=_number(env, "SYNC_BACKFILL_MAX_DAYS", 31, 1, 366),
        intraday_minutes=_number(env, "SYNC_INTRADAY_MINUTES", 15, 0, 12 * 60),
        chunk_records=_number(env, "SYNC_CHUNK_RECORDS", CHUNK_RECORDS, 500, 1_000_000),
        numbers_default_region=region,
        numbers_home_countries=home,
        numbers_high_risk=high_risk,
        fraud_thresholds=thresholds,
    )


def _top(name: str) -> float:
    """The largest value a fraud threshold takes: 1 for a share or a ratio, else a million."""
    return 1.0 if name.endswith(("_SHARE", "_RATIO")) else 1_000_000


def _countries(env: dict[str, str], name: str, default: frozenset[str]) -> frozenset[str]:
    """`name` as comma- or space-separated ISO 3166-1 alpha-2 codes (or 001); unset: default."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    codes = set()
    for code in re.split(r"[,\s]+", raw):
        if not code:
            continue
        if code == "001":
            codes.add(code)
            continue
        try:
            codes.add(check_region(code))
        except ValueError as exc:
            raise SettingsError(
                f"{name}={raw!r}: {exc} (or 001, the non-geographic codes)", name
            ) from None
    return frozenset(codes)


def settings_and_problems(env: dict[str, str] | None = None) -> tuple[Settings, list[str]]:
    """The settings, with every unusable variable left at its default and said in the problems.

    For the definitions: a mistyped setting must not break the code location (the UI, the
    schedule, `dg launch` all load it); every run fails at its first step instead, naming the
    variable, the value and what is wrong with it, before any request or write.
    """
    env = dict(os.environ if env is None else env)
    problems: list[str] = []
    while True:
        try:
            return load_settings(env), problems
        except SettingsError as exc:
            if exc.variable not in env:
                raise  # not a variable's value: nothing to fall back from
            problems.append(str(exc))
            del env[exc.variable]
            if exc.variable == "WAREHOUSE_URL":
                env.pop("WAREHOUSE_DATA_PATH", None)  # it belongs to that lake
