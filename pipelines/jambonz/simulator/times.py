"""Time as the simulator holds it (integer nanoseconds UTC) and the texts it reads and writes.

InfluxDB compares at nanosecond precision with inclusive bounds, so every time inside the package
is an int of ns since the epoch; text appears only at the edges: `format_influx` (attempted_at as
InfluxDB prints `time`), `format_ms` (answered_at/terminated_at as jambonz writes them) and
`parse_time_param` (a start/end query value, refused where InfluxDB would refuse it). Pure
functions: this module never reads a clock.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from typing import Any

NS = 1_000_000_000
MS = 1_000_000
DAY_NS = 86_400 * NS
_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:(?P<sep>[ T])(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?P<tz>Z|[+-]\d{2}:\d{2})?)?$"
)


def to_ns(dt: datetime) -> int:
    """A timezone-aware datetime as integer nanoseconds since the epoch (naive = UTC)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS + delta.microseconds * 1_000


def from_ns(ns: int) -> datetime:
    """Nanoseconds since the epoch as an aware UTC datetime (truncated to microseconds)."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1_000)


def _base(ns: int) -> str:
    sec = ns // NS
    days, rem = divmod(sec, 86_400)
    d = datetime(1970, 1, 1) + timedelta(days=days)
    hms = f"{rem // 3600:02d}:{rem // 60 % 60:02d}:{rem % 60:02d}"
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{hms}"


def format_influx(ns: int) -> str:
    """RFC 3339 with trailing fraction zeros trimmed, as InfluxDB prints `time`."""
    frac = ns % NS
    if frac == 0:
        return _base(ns) + "Z"
    return _base(ns) + "." + f"{frac:09d}".rstrip("0") + "Z"


def format_ms(ns: int) -> str:
    """RFC 3339 with exactly 3 fraction digits, as jambonz writes answered_at/terminated_at."""
    return f"{_base(ns)}.{ns % NS // MS:03d}Z"


def parse_time_param(text: str) -> int | None:
    """A start/end query value as ns, or None when InfluxDB would not parse it.

    Accepts YYYY-MM-DD, `YYYY-MM-DD HH:MM:SS[.f]` and RFC 3339 with Z or an offset (up to 9
    fraction digits). A `+hh:mm` offset sent unencoded arrives as ` hh:mm` and is unparseable,
    as on the real server; so is an epoch number.
    """
    m = _TIME_RE.match(text)
    if m is None:
        return None
    g = m.groups()
    y, mo, d = int(g[0]), int(g[1]), int(g[2])
    hh = int(g[4]) if g[4] else 0
    mi = int(g[5]) if g[5] else 0
    ss = int(g[6]) if g[6] else 0
    if m.group("sep") == "T" and m.group("tz") is None:
        return None  # RFC 3339 needs a zone; InfluxQL refuses the bare T form
    try:
        datetime(y, mo, d, hh, mi, ss)
    except ValueError:
        return None
    ns = calendar.timegm((y, mo, d, hh, mi, ss, 0, 0, 0)) * NS
    if g[7]:
        ns += int(g[7].ljust(9, "0"))
    tz = m.group("tz")
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        ns -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60) * NS
    return ns


def _parse_rfc3339_loose(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    return parse_time_param(value)
