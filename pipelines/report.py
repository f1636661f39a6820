"""The HTML report: the trunk KPIs of a date range in one self-contained file.

`python -m pipelines.report --from 2026-11-20 --to 2026-11-26` (or `make report FROM=... TO=...`)
reads the warehouse at WAREHOUSE_PATH, read-only, and writes one HTML file to var/report/: the
days without data named (never synced, synced without calls, or not modeled), the change against
the previous period of the same length, an overview per trunk and direction with a totals row,
attempts and peak concurrency per hour (each on its own axis) and the ASR per trunk per day as
charts (inline SVG, from pipelines.charts, the same as in Dagster's metadata), the unanswered calls
by SIP status class and by termination reason, the calls refused at the call limit beside each
day's attempts and jambonz's alerts per type and day, the ten busiest far-end countries (attempts
and ASR, as a chart and a table), and a table of every model row per trunk. Its SQL is
warehouse/reports/*.sql; the alerts and destinations tables are those of alerts_daily's and
destinations_daily's Dagster metadata, over the report's days. The file has no script,
stylesheet, font or image to fetch: it opens offline, mailed or archived. Without --from/--to it
covers the 14 local days (PARTITIONS_TIMEZONE) ending yesterday, the last day the daily schedule
has synced.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html import escape
from itertools import groupby
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.charts import asr_per_trunk, busiest_countries, calls_per_hour
from pipelines.settings import REPO_ROOT, SettingsError, load_settings
from warehouse.database import Warehouse, WarehouseLockedError, WarehouseUnopenableError

DEFAULT_DAYS = 14
DEFAULT_FOLDER = REPO_ROOT / "var" / "report"
WIDE_CHART = 1360  # px: the hourly chart spans the page (it scales down in a narrower one)
RATIOS = {"asr", "answer_rate", "ser", "seer", "isa", "short_call_ratio", "share"}  # percentages
SMALL_RATIOS = {"refused_share"}  # percentages to two decimals
SECONDS = {"acd_s", "answer_delay_p50_s", "answer_delay_p90_s", "talk_minutes"}  # 1 decimal
MONEY = {"cost"}  # 2 decimals, in the carrier's currency

STYLE = """
body { font: 13px/1.4 system-ui, sans-serif; margin: 24px auto; max-width: 1480px;
       padding: 0 16px; color: #111; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px; }
.meta, .note { color: #555; } .warn { color: #9a3412; }
h3 { font-size: 14px; margin: 4px 0; }
.scroll { display: inline-block; max-width: 100%; overflow-x: auto; margin: 8px 0;
          border: 1px solid #d1d5db; vertical-align: top; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 5px; border-bottom: 1px solid #e5e7eb; }
td { white-space: nowrap; }
th { text-align: left; vertical-align: bottom; background: #f3f4f6; }
td.n { text-align: right; } tr:nth-child(even) td { background: #fafafa; }
tr.total td { font-weight: 600; border-top: 2px solid #9ca3af; background: #f3f4f6; }
.pair { display: flex; flex-wrap: wrap; gap: 8px 32px; }
figure { margin: 0; } svg { max-width: 100%; height: auto; }
"""


@dataclass(frozen=True)
class Period:
    """The report's days, first to last inclusive, as local dates of `tz`."""

    first: date
    last: date
    tz: str

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=k) for k in range((self.last - self.first).days + 1)]

    @property
    def previous(self) -> Period:
        """The period of the same length that ends the day before this one starts."""
        return Period(
            self.first - timedelta(days=len(self.days)), self.first - timedelta(1), self.tz
        )


def default_period(tz: str, now: datetime | None = None) -> Period:
    """The DEFAULT_DAYS local days ending yesterday in `tz`."""
    today = (now or datetime.now(UTC)).astimezone(ZoneInfo(tz)).date()
    last = today - timedelta(days=1)
    return Period(last - timedelta(days=DEFAULT_DAYS - 1), last, tz)


def render(wh: Warehouse, period: Period, *, source: str, generated: datetime) -> str:
    """The report of `period` as one HTML document."""
    span = {"first": period.first, "last": period.last}
    local = {**span, "tz": period.tz}
    before = period.previous
    totals = wh.report("trunk_kpis_daily_totals", span)
    columns, rows = wh.report("trunk_kpis_daily_days", span)
    _, missing = wh.report("trunk_kpis_daily_missing_days", local)
    _, periods = wh.report(
        "trunk_kpis_daily_periods",
        {**span, "previous_first": before.first, "previous_last": before.last},
    )
    asr = asr_per_trunk(
        f"ASR per trunk, {period.first} to {period.last}",
        period.days,
        wh.query("trunk_kpis_daily_asr", span),
    )
    hourly = calls_per_hour(
        f"Attempts per hour, {period.first} to {period.last} ({period.tz})",
        wh.query("calls_hourly_by_hour", local),
        period.days,
        period.tz,
        width=WIDE_CHART,
    )
    accounts = {r[columns.index("account_sid")] for r in rows}
    if len(accounts) == 1:  # one account (the usual case): named once, not on every row
        keep = [i for i, c in enumerate(columns) if c != "account_sid"]
        columns, rows = [columns[i] for i in keep], [tuple(r[i] for i in keep) for r in rows]
    title = f"jambonz calls, {period.first} to {period.last}"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">Local days in {escape(period.tz)}; warehouse {escape(source)}; '
        + (f"account {escape(str(next(iter(accounts))))}; " if len(accounts) == 1 else "")
        + f"generated {generated:%Y-%m-%d %H:%M} UTC. Definitions: docs/models.md, 'Models' "
        "(ITU-T E.411/E.425, RFC 6076).</p>",
        *_missing_days(period, missing),
        f"<h2>Against the previous {len(period.days)} days</h2>",
        f'<div id="change">{_change(period, before, periods)}</div>',
        "<h2>Per trunk and direction</h2>",
        f'<div id="overview">{_overview(*totals)}</div>',
        '<p class="note">Counts summed over the days, ratios from the sums, peaks the largest '
        "day's (none for all trunks: the groups' peaks do not add up). SER, SEER, ISA and answer "
        "delays are per day, in the tables below.</p>",
        "<h2>Calls per hour</h2>",
        f'<figure id="calls-per-hour">{hourly}</figure>',
        "<h2>Answer rate and unanswered calls</h2>",
        f'<div class="pair"><figure id="asr-per-trunk">{asr}</figure><div>',
        f'<div id="by-status-class"><h3>Unanswered calls by SIP status class</h3>'
        f"{_table(*wh.report('calls_failures_by_status', local))}</div>",
        f'<div id="by-termination-reason"><h3>Unanswered calls by termination reason</h3>'
        f"{_table(*wh.report('calls_failures_by_reason', local))}</div>",
        '<p class="note">Every call of the days that was not answered, from the calls table; '
        "share: of all of them.</p>",
        "</div></div>",
        "<h2>Alerts and calls refused at the call limit</h2>",
        *_alerts(wh, period, one_account=len(accounts) == 1),
        "<h2>Destinations</h2>",
        *_destinations(wh, period),
    ]
    for trunk, group in groupby(rows, key=lambda r: r[0]):
        out.append(f'<h2 class="trunk">Trunk {escape(str(trunk))}</h2>')
        out.append(_table(columns[1:], [r[1:] for r in group]))
    out.append("</body></html>")
    return "\n".join(out)


def _missing_days(period: Period, missing: Sequence[tuple[Any, ...]]) -> list[str]:
    """Warnings naming the days without trunk_kpis_daily rows, by why: calls not modeled, never
    synced, or synced without calls (rows of trunk_kpis_daily_missing_days: day, calls, synced)."""
    out = []
    unmodeled = ", ".join(f"{d} ({n:,} calls)" for d, n, _ in missing if n)
    if unmodeled:
        out.append(
            f'<p class="warn">Days with calls but no trunk_kpis_daily rows (materialize the '
            f"models for them): {escape(unmodeled)}.</p>"
        )
    unsynced = [d for d, n, synced in missing if not n and not synced]
    empty = [d for d, n, synced in missing if not n and synced]
    if unsynced or empty:
        out.append(
            f'<p class="warn" id="missing-days">{len(unsynced) + len(empty)} of the '
            f"{len(period.days)} days have no calls in the warehouse, so the charts and tables "
            "are empty there."
            + (f" Never synced (a backfill loads them): {_ranges(unsynced)}." if unsynced else "")
            + (f" Synced, without calls: {_ranges(empty)}." if empty else "")
            + "</p>"
        )
    if len(missing) == len(period.days):
        out.append('<p class="note">No trunk_kpis_daily rows in these days.</p>')
    return out


def _alerts(wh: Warehouse, period: Period, *, one_account: bool) -> list[str]:
    """The calls refused at the call limit beside each day's attempts, and the alerts per type
    over the days and on each (the days with calls or alerts); a note instead when no alert was
    synced for the days."""
    span = {"first": period.first, "last": period.last}
    columns, days = wh.report("alerts_daily_refused", span)
    refused = columns.index("refused_at_call_limit")
    if all(r[refused] is None for r in days):
        return [
            '<p class="note" id="no-alerts">No alerts synced for these days (no alerts_daily '
            "rows: a warehouse synced before the alerts stream existed has none; materialize "
            "<code>alerts</code> and <code>alerts_daily</code> for these days to load them).</p>"
        ]
    # alerts_daily's table in the Dagster UI, over the days, then for each day a column of it
    heads, types = wh.report("alerts_by_type", span)
    on_day = {
        r[0]: {t: n for t, n, _ in wh.report("alerts_by_type", {"first": r[0], "last": r[0]})[1]}
        for r in days
    }
    keep = [i for i, c in enumerate(heads) if not (one_account and c == "accounts")]
    table = [
        (*(t[i] for i in keep), *(on_day[d].get(t[0], "") for d in on_day))  # "": none that day
        for t in types
    ]
    return [
        '<div class="pair">',
        '<div id="refused-per-day"><h3>Calls refused at the call limit, per day</h3>'
        f"{_table(columns, days)}"
        '<p class="note">refused: alerts of type account-call-limit or '
        "service-provider-call-limit, calls jambonz refused<br>at the account's or service "
        "provider's limit (they never became call records); refused_share:<br>refused / "
        "(attempts + refused). attempts, answered: trunk_kpis_daily's.</p></div>",
        '<div id="alerts-by-type"><h3>Alerts per type and day</h3>'
        f"{_table([heads[i] for i in keep] + [f'{d:%m-%d}' for d in on_day], table)}</div>",
        "</div>",
    ]


def _destinations(wh: Warehouse, period: Period) -> list[str]:
    """The ten busiest far-end countries of the days: attempts and ASR as bars, and the table of
    destinations_daily's metadata; a note instead when the days have no destinations_daily rows."""
    columns, rows = wh.report("destinations_busiest", {"first": period.first, "last": period.last})
    if not rows:
        return [
            '<p class="note" id="no-destinations">No destinations_daily rows for these days '
            "(days modeled before destinations_daily existed have none: materialize the models "
            "for them).</p>"
        ]
    chart = busiest_countries(f"The ten busiest countries, {period.first} to {period.last}", rows)
    return [
        f'<div class="pair"><figure id="busiest-countries">{chart}</figure>',
        f'<div id="destinations"><h3>The ten busiest countries</h3>{_table(columns, rows)}',
        '<p class="note">The far end: the number called (outbound calls) or calling (inbound); '
        "its country<br>by libphonenumber, ISO 3166-1 (001: non-geographic; no country: no valid "
        "number).<br>Every account, direction and trunk together; asr: answered / attempts.</p>",
        "</div></div>",
    ]


def _ranges(days: Sequence[date]) -> str:
    """Days as runs: '2026-11-01 to 2026-11-03, 2026-11-07'."""
    runs: list[list[date]] = []
    for d in days:
        if runs and d - runs[-1][-1] == timedelta(days=1):
            runs[-1].append(d)
        else:
            runs.append([d])
    return ", ".join(f"{r[0]} to {r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def _change(period: Period, before: Period, periods: Sequence[tuple[Any, ...]]) -> str:
    """This period against the one before it, from trunk_kpis_daily_periods' two rows (period,
    days, attempts, answered, asr, acd_s, talk_minutes): days as a difference, counts and means as
    a relative change, ASR in percentage points; "no data" where the previous period has no model
    rows."""
    this, prev = ({r[0]: r[1:] for r in periods}[k] for k in ("this", "previous"))
    formats = (
        ("days with data", "{:,}".format),
        ("attempts", "{:,}".format),
        ("answered", "{:,}".format),
        ("ASR", "{:.1%}".format),
        ("ACD (s)", "{:,.1f}".format),
        ("talk minutes", "{:,.0f}".format),
    )
    rows: list[tuple[str | None, ...]] = []
    for k, (name, fmt) in enumerate(formats):
        a, b = this[k], prev[k]
        change = None  # a dash: nothing to compare
        if not prev[0]:
            b = "no data"
        elif name == "days with data":
            change = f"{a - b:+,}"
        elif a is not None and b is not None and name == "ASR":
            change = f"{(a - b) * 100:+.1f} pp"
        elif a is not None and b:
            change = f"{a / b - 1:+.1%}"
        rows.append((name, *(fmt(v) if isinstance(v, int | float) else v for v in (a, b)), change))
    heads = ["", f"{period.first} to {period.last}", f"{before.first} to {before.last}", "change"]
    return _table(heads, rows, right=set(heads[1:]))


def _overview(columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> str:
    """The per trunk and direction table; its last row, trunk NULL, is all trunks together."""
    if rows and rows[-1][0] is None:
        rows, total = rows[:-1], ("all trunks", "all", *rows[-1][2:])
        return _table(columns, rows, total=total)
    return _table(columns, rows)


def _table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    total: Sequence[Any] | None = None,
    right: Collection[str] = (),
) -> str:
    """A table in a frame that scrolls sideways if it is wider than the page. total: a last row
    set apart; right: the columns whose text aligns right (numbers always do)."""
    # long names may break after an underscore, so wide tables fit
    head = "".join(
        f"<th>{escape(c).replace('_', '_<wbr>') if len(c) > 6 else escape(c)}</th>" for c in columns
    )
    lines = [(row, "<tr>") for row in rows] + ([(total, '<tr class="total">')] if total else [])
    body = "".join(
        tr + "".join(_cell(c, v, c in right) for c, v in zip(columns, row, strict=True)) + "</tr>"
        for row, tr in lines
    )
    return f'<div class="scroll"><table><tr>{head}</tr>{body}</table></div>'


def _cell(column: str, value: Any, right: bool = False) -> str:
    if value is None:
        return '<td class="n">&ndash;</td>'
    if column in RATIOS:
        return f'<td class="n">{value:.1%}</td>'
    if column in SMALL_RATIOS:
        return f'<td class="n">{value:.2%}</td>'
    if column in SECONDS:
        return f'<td class="n">{value:,.1f}</td>'
    if column in MONEY:
        return f'<td class="n">{value:,.2f}</td>'
    if isinstance(value, int):
        return f'<td class="n">{value:,}</td>'
    return f'<td class="n">{escape(str(value))}</td>' if right else f"<td>{escape(str(value))}</td>"


def write_report(
    warehouse: Path, period: Period, folder: Path = DEFAULT_FOLDER, *, lock_timeout_s: float = 30
) -> Path:
    """Render the report of `period` from the warehouse file into `folder`; returns its path."""
    if not warehouse.is_file():
        raise FileNotFoundError(f"no warehouse at {warehouse} (WAREHOUSE_PATH or --warehouse)")
    with Warehouse(warehouse, read_only=True, lock_timeout_s=lock_timeout_s) as wh:
        html = render(wh, period, source=str(warehouse), generated=datetime.now(UTC))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"calls-{period.first}_{period.last}.html"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a report
    return path


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except (SettingsError, FileNotFoundError, WarehouseLockedError, WarehouseUnopenableError) as e:
        print(f"report: {e}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None) -> int:
    settings = load_settings()
    tz = settings.partitions_timezone
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--from", dest="first", type=date.fromisoformat, help="first day")
    parser.add_argument("--to", dest="last", type=date.fromisoformat, help="last day")
    parser.add_argument("--warehouse", type=Path, default=Path(settings.warehouse_path))
    parser.add_argument("--out", type=Path, default=DEFAULT_FOLDER, help="folder")
    args = parser.parse_args(argv)
    default = default_period(tz)
    last = args.last or (args.first + timedelta(DEFAULT_DAYS - 1) if args.first else default.last)
    first = args.first or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        parser.error(f"--from {first} is after --to {last}")
    period = Period(first, last, tz)
    path = write_report(
        args.warehouse, period, args.out, lock_timeout_s=settings.warehouse_lock_timeout_s
    )
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
