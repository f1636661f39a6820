"""The rows `calls` must hold for records the simulator served, computed without the pipeline.

An oracle that shares the code it judges passes that code's bugs, so nothing here imports
pipelines.normalize, pipelines.jambonz.streams or the warehouse: each rule of docs/models.md's
"The calls table" is written again, plainly, one record at a time, from the records as the
simulator generated them (`Simulator.calls`: its ground truth, in the API's own shape).

- A column holds a value of its kind (text, a boolean, a whole number in 32 bits, a time:
  RFC 3339 with a zone and 0-9 fraction digits, or epoch seconds), else the record is refused.
- A call's key is its call_sid; without one, `nosid:` and the first 32 hex digits of the SHA-256
  of `sip_callid|direction|attempted_at in whole epoch seconds`; with neither, it is refused.
- Times are kept to the microsecond (truncated); the 1970 answered_at of an unanswered call is
  NULL, and so is the answer time of any call whose `answered` is false.
- Keys the API does not define go to `extra` (sorted, null values left out).
- Two records of one call: the later terminated_at wins.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

TEXT, FLAG, WHOLE, TIME = "text", "flag", "whole", "time"
NUMBER, WHOLE64 = "number", "whole64"  # any JSON number; a whole one in 64 bits
# column -> (kind, the API's keys for it, the server's first)
COLUMNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "call_sid": (TEXT, ("call_sid",)),
    "account_sid": (TEXT, ("account_sid",)),
    "service_provider_sid": (TEXT, ("service_provider_sid",)),
    "application_sid": (TEXT, ("application_sid",)),
    "direction": (TEXT, ("direction",)),
    "from_number": (TEXT, ("from",)),
    "to_number": (TEXT, ("to",)),
    "answered": (FLAG, ("answered",)),
    "sip_status": (WHOLE, ("sip_status",)),
    "duration": (WHOLE, ("duration",)),
    "attempted_at": (TIME, ("attempted_at",)),
    "answered_at": (TIME, ("answered_at",)),
    "terminated_at": (TIME, ("terminated_at",)),
    "termination_reason": (TEXT, ("termination_reason",)),
    "host": (TEXT, ("host",)),
    "remote_host": (TEXT, ("remote_host",)),
    "trunk": (TEXT, ("trunk",)),
    "sip_callid": (TEXT, ("sip_callid", "sip_call_id")),
    "sip_parent_callid": (TEXT, ("sip_parent_callid",)),
    "trace_id": (TEXT, ("trace_id",)),
    "recording_url": (TEXT, ("recording_url",)),
    "cost": (NUMBER, ("cost",)),
    "rate": (NUMBER, ("rate",)),
    "billed_seconds": (WHOLE64, ("billed_seconds",)),
}
API_KEYS = {key for _, keys in COLUMNS.values() for key in keys}
_TIME = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|z|[+-]\d\d:?\d\d)$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(2262, 4, 11, tzinfo=UTC)


class Refused(ValueError):
    """The record cannot be a row of `calls`."""


def _time(value: Any) -> tuple[datetime, int]:
    """(the instant, truncated to the microsecond; the epoch nanoseconds as sent)."""
    if type(value) is int:
        ns = value * 10**9
    elif type(value) is float:
        micros = round(value * 1_000_000)
        ns = micros * 1000
    elif type(value) is str and (m := _TIME.match(value)):
        y, mo, d, h, mi, s, frac, zone = m.groups()
        try:
            base = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=UTC)
        except ValueError as e:
            raise Refused(str(e)) from None
        ns = (base - _EPOCH) // timedelta(microseconds=1) * 1000 + int((frac or "").ljust(9, "0"))
        if zone not in ("Z", "z"):
            minutes = int(zone[1:3]) * 60 + int(zone[-2:])
            ns -= (1 if zone[0] == "+" else -1) * minutes * 60 * 10**9
    else:
        raise Refused(f"not a time: {value!r}")
    instant = _EPOCH + timedelta(microseconds=ns // 1000)
    if not _EPOCH <= instant < _LATEST:
        raise Refused(f"out of range: {value!r}")
    return instant, ns


def _value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == TEXT and type(value) is str:
        return value
    if kind == FLAG and type(value) is bool:
        return value
    whole = kind in (WHOLE, WHOLE64) and type(value) in (int, float) and float(value).is_integer()
    bits = 31 if kind == WHOLE else 63
    if whole and -(2**bits) <= value < 2**bits:
        return int(value)
    if kind == NUMBER and type(value) in (int, float):
        return float(value)
    if kind == TIME:
        return _time(value)[0]
    raise Refused(f"{value!r} is not {kind}")


def call_row(record: dict[str, Any]) -> dict[str, Any]:
    """The row of `calls` (less synced_at) a record must become; Refused if it cannot."""
    row: dict[str, Any] = {}
    for column, (kind, keys) in COLUMNS.items():
        present = [record[k] for k in keys if record.get(k) is not None]
        row[column] = _value(kind, present[0] if present else None)
    if row["attempted_at"] is None:
        raise Refused("no attempted_at")
    if row["call_sid"]:
        row["call_key"] = row["call_sid"]
    elif row["sip_callid"]:
        seconds = _time(record["attempted_at"])[1] // 10**9
        text = f"{row['sip_callid']}|{record.get('direction')}|{seconds}"
        row["call_key"] = "nosid:" + hashlib.sha256(text.encode()).hexdigest()[:32]
    else:
        raise Refused("no identity")
    if row["answered"] is False or row["answered_at"] == _EPOCH:
        row["answered_at"] = None
    extra = {k: record[k] for k in sorted(record) if k not in API_KEYS and record[k] is not None}
    row["extra"] = extra or None
    return row


@dataclass
class Expected:
    """What a window must hold: its rows by call_key, and how many records are refused."""

    rows: dict[str, dict[str, Any]]
    refused: int


def expected(records: list[dict[str, Any]]) -> Expected:
    rows: dict[str, dict[str, Any]] = {}
    refused: set[str] = set()
    for record in records:
        try:
            row = call_row(record)
        except Refused:
            refused.add(json.dumps(record, sort_keys=True, default=str))
            continue
        held = rows.get(row["call_key"])
        if held is None or _rank(row) > _rank(held):
            rows[row["call_key"]] = row
    return Expected(rows, len(refused))


def _rank(row: dict[str, Any]) -> tuple[bool, datetime]:
    return row["terminated_at"] is not None, row["terminated_at"] or _EPOCH


# --- alerts (docs/models.md "The alerts table") ----------------------------------------------

ALERT_COLUMNS: dict[str, tuple[str, str]] = {
    "alerted_at": (TIME, "time"),
    "account_sid": (TEXT, "account_sid"),
    "service_provider_sid": (TEXT, "service_provider_sid"),
    "alert_type": (TEXT, "alert_type"),
    "vendor": (TEXT, "vendor"),
    "message": (TEXT, "message"),
    "detail": (TEXT, "detail"),
}
ALERT_TAGS = ("account_sid", "alert_type", "service_provider_sid", "vendor")


def alert_row(record: dict[str, Any]) -> dict[str, Any]:
    """The row of `alerts` (less synced_at) an alert must become; Refused if it cannot.

    Its key: the first 32 hex digits of the SHA-256 of the JSON list [time in epoch nanoseconds
    as sent, then the tags as sent]; "undefined" (no account, no service provider) is NULL in
    the row but part of the key, as the server sent it."""
    row = {column: _value(kind, record.get(key)) for column, (kind, key) in ALERT_COLUMNS.items()}
    if row["alerted_at"] is None:
        raise Refused("no time")
    ns = _time(record["time"])[1]
    tags = [record.get(t) for t in ALERT_TAGS]
    text = json.dumps([ns, *tags], separators=(",", ":"), ensure_ascii=False)
    row["alert_key"] = hashlib.sha256(text.encode()).hexdigest()[:32]
    for column in ("account_sid", "service_provider_sid"):
        if row[column] == "undefined":
            row[column] = None
    known = {key for _, key in ALERT_COLUMNS.values()}
    extra = {k: record[k] for k in sorted(record) if k not in known and record[k] is not None}
    row["extra"] = extra or None
    return row


def expected_alerts(records: list[dict[str, Any]]) -> Expected:
    rows: dict[str, dict[str, Any]] = {}
    refused: set[str] = set()
    for record in records:
        try:
            row = alert_row(record)
        except Refused:
            refused.add(json.dumps(record, sort_keys=True, default=str))
            continue
        rows[row["alert_key"]] = row  # the same alert twice is the same record
    return Expected(rows, len(refused))
