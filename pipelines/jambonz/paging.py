"""RecentCalls paging without I/O: time bounds, envelopes, identities and the repair plan's pieces.

Everything here is pure so it can be tested against the real captures without a network. Times
are compared as integer nanoseconds since the epoch: the server keeps up to 9 fraction digits and a
window's inclusive end is sent at nanosecond precision, which a `datetime` cannot hold.
It must never do I/O, sleep, or see the API key.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pyarrow as pa

NS_PER_S = 1_000_000_000
# attempted_at as the deployed server writes it: UTC with `Z`, 0-9 fraction digits
STRICT_UTC = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(Z|z|[+-]\d{2}:?\d{2})?$"
)


@dataclass(frozen=True)
class Scope:
    """Whose calls: one account, or every account of a service provider."""

    kind: Literal["account", "service_provider"]
    sid: str

    @classmethod
    def account(cls, sid: str) -> Scope:
        return cls("account", sid)

    @classmethod
    def service_provider(cls, sid: str) -> Scope:
        return cls("service_provider", sid)

    @property
    def path(self) -> str:
        if self.kind == "account":
            return f"/v1/Accounts/{self.sid}/RecentCalls"
        return f"/v1/ServiceProviders/{self.sid}/RecentCalls"


@dataclass(frozen=True)
class Window:
    """A half-open UTC window [start, end); both datetimes are timezone-aware."""

    start: datetime
    end: datetime


def describe(scope: Scope, window: Window) -> str:
    """`account <sid> [start, end)` for messages: what a person needs to find the sync."""
    kind = "account" if scope.kind == "account" else "service provider"
    return f"{kind} {scope.sid} window [{window.start.isoformat()}, {window.end.isoformat()})"


class BadBodyError(ValueError):
    """A 200 answer whose body is not a RecentCalls envelope (truncated, HTML, wrong shape)."""


def to_ns(dt: datetime) -> int:
    """An aware datetime as integer nanoseconds since the epoch (exact, no float rounding)."""
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt!r}: windows must be timezone-aware")
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1_000


def format_ns(ns: int) -> str:
    """RFC 3339 UTC with `Z` and 9 fraction digits: never a `+` (a raw `+` decodes to a space)."""
    secs, frac = divmod(ns, NS_PER_S)
    base = _EPOCH + timedelta(seconds=secs)
    return base.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def parse_instant(value: Any) -> int:
    """A time (RFC 3339 with 0-9 fraction digits, Z or offset; or epoch seconds) -> ns.

    The one reading of a record's times (records.parse_times applies it to columns). Epoch
    seconds as a float are read to the microsecond, the precision a float holds at today's
    epoch. Raises ValueError on anything else.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value * NS_PER_S
    if isinstance(value, float) and math.isfinite(value):
        whole = math.floor(value)
        return whole * NS_PER_S + round((value - whole) * 1_000_000) * 1_000
    # No zone, epoch digits as text, padding: not a time (never guessed into another day).
    m = _RFC3339.match(value) if isinstance(value, str) else None
    if m is None or m.group(8) is None:
        raise ValueError(f"not a time: {value!r}")
    year, month, day, hour, minute, second, frac, tz = m.groups()
    base = datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC
    )
    ns = to_ns(base) + (int(frac.ljust(9, "0")) if frac else 0)
    if tz and tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        offset_s = int(digits[:2]) * 3600 + int(digits[2:]) * 60
        ns -= sign * offset_s * NS_PER_S
    return ns


def _as_int(value: Any, name: str) -> int:
    """Envelope numbers: ints, floats with no fraction (752.0) or numeric strings ("500")."""
    if isinstance(value, bool):
        raise BadBodyError(f"{name} is a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            f = float(value.strip())
        except ValueError:
            raise BadBodyError(f"{name} is not a number: {value[:40]!r}") from None
        if f.is_integer():
            return int(f)
    raise BadBodyError(f"{name} is not a whole number: {str(value)[:40]!r}")


@dataclass(frozen=True)
class Page:
    """One RecentCalls envelope in either dialect (docs: `batch`; server: `page_size`).

    Its records are either `table` (read as Arrow by columnar.read_page, which also read each
    record's identity and attempted_at: `keys`, `instants`) or `data` (dicts, by json.loads).
    """

    total: int
    page: int | None
    page_size: int | None
    data: list[dict[str, Any]]  # empty when `table` holds the records
    table: pa.Table | None = None
    keys: list[str] | None = None  # with `table`: records.record_identity of each record
    instants: list[int | None] | None = None  # with `table`: attempted_at, ns (parse_times)

    @property
    def size(self) -> int:
        return self.table.num_rows if self.table is not None else len(self.data)


def parse_envelope(body: bytes) -> Page:
    """Parse a 200 body. Raises BadBodyError for truncated, non-JSON or wrong-shape bodies."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        snippet = body[:60].decode("utf-8", "replace")
        raise BadBodyError(f"not JSON ({len(body)} bytes, starts {snippet!r})") from None
    if not isinstance(doc, dict):
        raise BadBodyError(f"JSON {type(doc).__name__}, not an object")
    if "total" not in doc or "data" not in doc:
        raise BadBodyError(f"envelope without total/data (keys: {sorted(doc)[:8]})")
    data = doc["data"]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise BadBodyError("data is not a list of objects")
    total = _as_int(doc["total"], "total")
    if total < 0:
        raise BadBodyError(f"negative total {total}")
    page = _as_int(doc["page"], "page") if doc.get("page") is not None else None
    size_raw = doc.get("page_size", doc.get("batch"))
    size = _as_int(size_raw, "page_size") if size_raw is not None else None
    return Page(total=total, page=page, page_size=size, data=data)


def error_message(body: bytes) -> str:
    """The server's message from any of its error shapes: {"msg"}, {"status","message"}, text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return text[:300]
    if isinstance(doc, dict):
        for key in ("message", "msg", "error"):
            if isinstance(doc.get(key), str):
                return str(doc[key]).strip()[:300]
    return text[:300]


def is_query_parse_error(body: bytes) -> bool:
    """A 500 that is the database refusing our query (capture 43): deterministic, not transient."""
    return "error parsing" in error_message(body).lower()


def pages_for(total: int, page_size: int) -> int:
    return max(1, math.ceil(total / page_size))


def split_points(lo: int, hi: int, known_ns: list[int], parts: int) -> list[int]:
    """Cut [lo, hi) into up to `parts` pieces: at quantiles of the known attempt times inside,
    so each piece holds about the same number of calls; evenly by time when none are known.

    Returns the cuts, strictly increasing and strictly inside (lo, hi); empty if hi - lo < 2.
    """
    if hi - lo < 2 or parts < 2:
        return []
    inside = sorted(t for t in known_ns if lo <= t < hi)
    if len(inside) >= parts:
        candidates = [inside[len(inside) * i // parts] for i in range(1, parts)]
    else:
        candidates = [lo + (hi - lo) * i // parts for i in range(1, parts)]
    cuts = sorted({c for c in candidates if lo < c < hi})
    return cuts or [lo + (hi - lo) // 2]
