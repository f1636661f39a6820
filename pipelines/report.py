"""The HTML report: the trunk KPIs of a date range in one self-contained file.

`python -m pipelines.report --from 2026-11-20 --to 2026-11-26` (or `make report FROM=... TO=...`)
reads the models of the warehouse at WAREHOUSE_PATH, read-only, and writes one HTML file to
var/report/: an overview per trunk and direction, the ASR per trunk per day and the calls per hour
as charts (inline SVG, from pipelines.charts, the same as in Dagster's metadata), and a table of
every model row per trunk. The file has no script, stylesheet, font or image to fetch: it opens
offline, mailed or archived. Without --from/--to it covers the 14 local days
(PARTITIONS_TIMEZONE) ending yesterday, the last day the daily schedule has synced.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html import escape
from itertools import groupby
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.charts import asr_per_trunk, calls_per_hour
from pipelines.settings import REPO_ROOT, SettingsError, load_settings
from warehouse.load import Warehouse, WarehouseLockedError, WarehouseUnopenableError

DEFAULT_DAYS = 14
DEFAULT_FOLDER = REPO_ROOT / "var" / "report"
RATIOS = {"asr", "ser", "seer", "isa", "short_call_ratio"}  # shown as percentages
SECONDS = {"acd_s", "answer_delay_p50_s", "answer_delay_p90_s"}

STYLE = """
body { font: 13px/1.4 system-ui, sans-serif; margin: 24px auto; max-width: 1480px;
       padding: 0 16px; color: #111; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px; }
.meta, .note { color: #555; } .warn { color: #9a3412; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 6px; border-bottom: 1px solid #e5e7eb; }
td { white-space: nowrap; }
th { text-align: left; background: #f3f4f6; position: sticky; top: 0; }
td.n { text-align: right; } tr:nth-child(even) td { background: #fafafa; }
.charts { display: flex; flex-wrap: wrap; gap: 8px; }
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


def default_period(tz: str, now: datetime | None = None) -> Period:
    """The DEFAULT_DAYS local days ending yesterday in `tz`."""
    today = (now or datetime.now(UTC)).astimezone(ZoneInfo(tz)).date()
    last = today - timedelta(days=1)
    return Period(last - timedelta(days=DEFAULT_DAYS - 1), last, tz)


def render(wh: Warehouse, period: Period, *, source: str, generated: datetime) -> str:
    """The report of `period` as one HTML document."""
    span = {"first": period.first, "last": period.last}
    totals = wh.report("trunk_kpis_daily_totals", span)
    columns, rows = wh.report("trunk_kpis_daily_days", span)
    _, missing = wh.report("trunk_kpis_daily_missing_days", {**span, "tz": period.tz})
    asr = asr_per_trunk(
        f"ASR per trunk, {period.first} to {period.last}",
        period.days,
        wh.query("trunk_kpis_daily_asr", span),
    )
    hourly = calls_per_hour(
        f"Calls per hour, {period.first} to {period.last} ({period.tz})",
        wh.query("calls_hourly_by_hour", {**span, "tz": period.tz}),
        with_day=period.first != period.last,
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
    ]
    if missing:
        days = ", ".join(f"{d} ({n:,} calls)" for d, n in missing)
        out.append(
            f'<p class="warn">Days with calls but no trunk_kpis_daily rows (materialize the '
            f"models for them): {escape(days)}.</p>"
        )
    if not rows:
        out.append('<p class="note">No trunk_kpis_daily rows in these days.</p>')
    out += [
        "<h2>Per trunk and direction</h2>",
        f'<div id="overview">{_table(*totals)}</div>',
        '<p class="note">Counts summed over the days, ratios from the sums, peaks the largest '
        "day's. SER, SEER, ISA and answer delays are per day, in the tables below.</p>",
        "<h2>Charts</h2>",
        f'<div class="charts"><figure id="asr-per-trunk">{asr}</figure>',
        f'<figure id="calls-per-hour">{hourly}</figure></div>',
    ]
    for trunk, group in groupby(rows, key=lambda r: r[0]):
        out.append(f'<h2 class="trunk">Trunk {escape(str(trunk))}</h2>')
        out.append(_table(columns[1:], [r[1:] for r in group]))
    out.append("</body></html>")
    return "\n".join(out)


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    # long names may break after an underscore, so wide tables fit
    head = "".join(
        f"<th>{escape(c).replace('_', '_<wbr>') if len(c) > 9 else escape(c)}</th>" for c in columns
    )
    body = "".join(
        "<tr>" + "".join(_cell(c, v) for c, v in zip(columns, row, strict=True)) + "</tr>"
        for row in rows
    )
    return f'<div class="scroll"><table><tr>{head}</tr>{body}</table></div>'


def _cell(column: str, value: Any) -> str:
    if value is None:
        return '<td class="n">&ndash;</td>'
    if column in RATIOS:
        return f'<td class="n">{value:.1%}</td>'
    if column in SECONDS:
        return f'<td class="n">{value:,.1f}</td>'
    if isinstance(value, int):
        return f'<td class="n">{value:,}</td>'
    return f"<td>{escape(str(value))}</td>"


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
