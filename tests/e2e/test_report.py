"""The HTML report: written by its CLI from days materialized through Dagster, opened in a real
headless Chromium (Debian's chromium and chromedriver, which .ci/install-browser installs).

The browser counts what it drew, not what the HTML says: a chart series that Chromium could not
lay out has no bounding box. The page must fetch nothing and log no console error. Every figure
a test expects is counted here, from the simulator's calls of the days (`loaded`) or, for the
alerts and destinations, by brute force from the warehouse's own `alerts` and `calls` rows, never
read from the code under test.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from time import monotonic

import dagster as dg
import duckdb
import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from pipelines.definitions import build_definitions
from pipelines.jambonz.simulator import ACCOUNT_SID, Simulator
from pipelines.numbers import country
from pipelines.report import Period, default_period, render
from pipelines.settings import load_settings
from tests.conftest import NOW
from tests.e2e.conftest import ENV_VARS, Pipeline, pipeline_env
from warehouse.database import Warehouse

LAST = NOW.date() - timedelta(days=2)
DAYS = [LAST - timedelta(days=2), LAST - timedelta(days=1), LAST]
WEBSERVER_ARGS = ("-m", "pipelines.definitions", "-h", "127.0.0.1", "-p")
BROWSER_MISSING = (
    "Debian's chromium and chromium-driver are needed for the browser tests: "
    "`bash .ci/install-browser` (as root) installs them, as CI does"
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.fail(BROWSER_MISSING)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1500,1400",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with webdriver.Chrome(options=options, service=Service(executable_path=driver)) as chrome:
        yield chrome


def write_report(env: dict[str, str], out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m pipelines.report` (what `make report` runs) with a pipeline's environment."""
    return subprocess.run(
        [sys.executable, "-m", "pipelines.report", *args, "--out", str(out)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@dataclass
class Loaded:
    """DAYS synced and modeled through the daily job, their calls as the simulator served them,
    each model's metadata of each day (model -> day -> metadata, plain values), and the reports
    written of them (one CLI run per period, on first use)."""

    env: dict[str, str]
    truth: dict[date, list[dict[str, object]]]
    out: Path
    metadata: dict[str, dict[date, dict[str, object]]]
    written: dict[tuple[date, date], Path] = field(default_factory=dict)

    def rows(self, query: str) -> list[tuple[object, ...]]:
        """A query's rows on the warehouse the days were loaded into (read-only)."""
        with duckdb.connect(self.env["WAREHOUSE_PATH"], read_only=True) as con:
            return con.execute(query).fetchall()

    def calls(self, first: date, last: date) -> list[dict[str, object]]:
        return [r for day, rows in self.truth.items() if first <= day <= last for r in rows]

    def report(self, first: date, last: date) -> Path:
        if (first, last) not in self.written:
            done = write_report(self.env, self.out, "--from", str(first), "--to", str(last))
            assert done.returncode == 0, done.stderr
            self.written[first, last] = self.out / f"calls-{first}_{last}.html"
        return self.written[first, last]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    """Built once for the module's browser tests: the Dagster runs are what costs."""
    tmp = tmp_path_factory.mktemp("loaded")
    warehouse = tmp / "warehouse.duckdb"
    # the simulator of tests/conftest.py's `simulator` fixture (which lives for one test only)
    with Simulator(seed=7, calls_per_day=400, now=NOW) as sim, pytest.MonkeyPatch.context() as mp:
        env = pipeline_env(sim, warehouse)
        for name in ENV_VARS:
            mp.delenv(name, raising=False)
        for key, value in env.items():
            mp.setenv(key, value)
        settings = load_settings()
        with dg.DagsterInstance.ephemeral() as instance:
            pipeline = Pipeline(
                sim, env, warehouse, settings, build_definitions(settings), instance
            )
            metadata: dict[str, dict[date, dict[str, object]]] = {}
            for day in DAYS:
                result = pipeline.run_day(day)
                assert result.success
                for model in ("alerts_daily", "destinations_daily"):
                    (mat,) = result.asset_materializations_for_node(model)
                    metadata.setdefault(model, {})[day] = {
                        k: getattr(v, "value", v) for k, v in mat.metadata.items()
                    }
            truth = {day: pipeline.truth(day) for day in DAYS}
    return Loaded(env, truth, tmp / "report", metadata)


def table(browser: webdriver.Chrome, css: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the table under `css` as the browser shows their text."""
    rows: list[list[str]] = browser.execute_script(
        "return [...document.querySelector(arguments[0]).querySelectorAll('tr')]"
        ".map(tr => [...tr.cells].map(c => c.innerText.trim()))",
        f"{css} table",
    )
    return rows[0], rows[1:]


def number(text: str) -> float:
    """A figure as the report prints it: 1,234 / 66.6% / +1.2 pp / -3.4%."""
    return float(text.replace(",", "").replace("%", "").replace(" pp", ""))


def answered(call: dict[str, object]) -> bool:
    return bool(call.get("answered"))


def seconds(call: dict[str, object]) -> float:
    """Its duration (a few arrive as floats: 64.0)."""
    return float(str(call["duration"]))


@pytest.mark.process
def test_the_report_renders_every_trunk_and_both_charts_in_chromium(
    loaded: Loaded, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    """`python -m pipelines.report` writes the page and a real headless Chromium renders it: what a
    person sees (the browser is the point), not the HTML text."""
    truth = loaded.calls(DAYS[0], LAST)
    trunks = sorted({r.get("trunk") or "(no trunk)" for r in truth})
    assert len(trunks) >= 3

    done = write_report(loaded.env, tmp_path / "report", "--from", str(DAYS[0]), "--to", str(LAST))
    assert done.returncode == 0, done.stderr
    path = tmp_path / "report" / f"calls-{DAYS[0]}_{LAST}.html"
    assert done.stdout.strip() == f"report: {path}"
    html = path.read_text()
    assert "<script" not in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html

    browser.get(path.as_uri())
    assert browser.title == f"jambonz calls, {DAYS[0]} to {LAST}"
    asr = browser.find_elements(By.CSS_SELECTOR, "#asr-per-trunk g.series")
    assert [g.get_attribute("data-name") for g in asr] == trunks
    hourly = browser.find_elements(By.CSS_SELECTOR, "#calls-per-hour g.series")
    assert [g.get_attribute("data-name") for g in hourly] == ["attempts", "peak concurrent"]
    for group in asr + hourly:  # laid out and painted: a line with a size, not only in the DOM
        box = browser.execute_script("return arguments[0].getBBox();", group)
        assert box["width"] > 100, group.get_attribute("data-name")
    sections = browser.find_elements(By.CSS_SELECTOR, "h2.trunk")
    assert [s.text for s in sections] == [f"Trunk {t}" for t in trunks]
    # the overview's attempts add up to every call of the days, each counted once
    header, rows = table(browser, "#overview")
    column = header.index("attempts")
    assert sum(int(number(r[column])) for r in rows if r[0] != "all trunks") == len(truth)
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    # REPORT_SCREENSHOTS: a folder where the screenshot stays for a person to look at
    shot = Path(os.environ.get("REPORT_SCREENSHOTS", tmp_path)) / "report.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one


@pytest.mark.process
def test_the_overview_ends_with_a_totals_row_of_all_trunks_and_directions(
    loaded: Loaded, browser: webdriver.Chrome
) -> None:
    """The row a person reads first, as Chromium lays out the table."""
    truth = loaded.calls(DAYS[0], LAST)
    browser.get(loaded.report(DAYS[0], LAST).as_uri())
    header, rows = table(browser, "#overview")
    *groups, total = rows
    assert total[:2] == ["all trunks", "all"]
    assert "all trunks" not in [r[0] for r in groups]
    cell = dict(zip(header, total, strict=True))
    unanswered = [r for r in truth if not answered(r)]
    assert int(number(cell["days"])) == len(DAYS)
    assert int(number(cell["attempts"])) == len(truth)
    assert int(number(cell["answered"])) == len(truth) - len(unanswered)
    assert number(cell["asr"]) == pytest.approx(
        100 * (len(truth) - len(unanswered)) / len(truth), abs=0.051
    )
    assert int(number(cell["busy"])) == sum(r["sip_status"] in (486, 600) for r in unanswered)
    talk = sum(seconds(r) for r in truth if answered(r))
    assert int(number(cell["talk_seconds"])) == talk
    for name in ("busy", "no_answer", "rejected", "abandoned", "network_failures"):
        assert int(number(cell[name])) == sum(int(number(r[header.index(name)])) for r in groups)
    # the groups' peaks neither add up nor bound the peak of all calls: none is claimed
    assert (cell["peak_concurrent"], cell["peak_cps"]) == ("\u2013", "\u2013")


@pytest.mark.process
def test_the_change_against_the_previous_period_of_the_same_length(
    loaded: Loaded, browser: webdriver.Chrome
) -> None:
    """LAST against the day before it (both loaded), and DAYS against the three days before
    them (none loaded: "no data", not zeros), in the table the browser shows."""
    browser.get(loaded.report(LAST, LAST).as_uri())
    header, rows = table(browser, "#change")
    assert header == ["", f"{LAST} to {LAST}", f"{DAYS[1]} to {DAYS[1]}", "change"]
    shown = {r[0]: r[1:] for r in rows}

    def figures(calls: list[dict[str, object]]) -> dict[str, float]:
        talk = sum(seconds(r) for r in calls if answered(r))
        ok = sum(answered(r) for r in calls)
        return {
            "days with data": 1,
            "attempts": len(calls),
            "answered": ok,
            "ASR": 100 * ok / len(calls),
            "ACD (s)": talk / ok,
            "talk minutes": talk / 60,
        }

    this, before = figures(loaded.truth[LAST]), figures(loaded.truth[DAYS[1]])
    assert set(shown) == set(this)
    for name, value in this.items():
        now, then, change = shown[name]
        assert number(now) == pytest.approx(value, abs=0.51), name
        assert number(then) == pytest.approx(before[name], abs=0.51), name
        if name == "ASR":  # percentage points
            assert number(change) == pytest.approx(value - before[name], abs=0.051)
        elif name == "days with data":
            assert number(change) == 0
        else:  # relative, in percent
            assert number(change) == pytest.approx(100 * (value / before[name] - 1), abs=0.051)
    assert this["attempts"] != before["attempts"]  # a change to see, not a 0 = 0

    browser.get(loaded.report(DAYS[0], LAST).as_uri())
    header, rows = table(browser, "#change")
    before_first = DAYS[0] - timedelta(days=len(DAYS))
    assert header[2] == f"{before_first} to {DAYS[0] - timedelta(days=1)}"
    assert {r[2] for r in rows} == {"no data"}
    assert {r[3] for r in rows} == {"\u2013"}
    assert dict((r[0], r[1]) for r in rows)["attempts"] == f"{len(loaded.calls(DAYS[0], LAST)):,}"


@pytest.mark.process
def test_days_of_the_period_without_data_are_named_and_keep_their_place(
    loaded: Loaded, browser: webdriver.Chrome
) -> None:
    """Two days before DAYS were never synced: the page says so, and the hourly chart keeps
    their place (its date ticks run over every day of the period), as Chromium draws it."""
    first = DAYS[0] - timedelta(days=2)
    browser.get(loaded.report(first, LAST).as_uri())
    text = browser.find_element(By.ID, "missing-days").text
    assert f"2 of the {len(DAYS) + 2} days have no calls in the warehouse" in text
    assert (
        f"Never synced (a backfill loads them): {first} to {DAYS[0] - timedelta(days=1)}." in text
    )
    for day in DAYS:
        assert str(day) not in text
    ticks = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#calls-per-hour text.x")]
    days = [first + timedelta(days=k) for k in range(len(DAYS) + 2)]
    assert [t for t in ticks if "-" in t] == [f"{d:%m-%d}" for d in days] * 2  # both panels


@pytest.mark.process
def test_failures_by_sip_status_class_and_termination_reason(
    loaded: Loaded, browser: webdriver.Chrome
) -> None:
    """The unanswered calls of the days counted by class, status and reason, as shown."""
    unanswered = [r for r in loaded.calls(DAYS[0], LAST) if not answered(r)]
    browser.get(loaded.report(DAYS[0], LAST).as_uri())

    header, rows = table(browser, "#by-status-class")
    assert header == ["status_class", "unanswered", "share", "top_statuses"]
    classes = Counter(f"{r['sip_status']}"[0] + "xx" for r in unanswered)
    assert {r[0]: int(number(r[1])) for r in rows} == classes
    assert len(classes) >= 3  # 4xx, 5xx and 6xx in the simulator's mix
    statuses = Counter(r["sip_status"] for r in unanswered)
    for cls, _, share, top in rows:
        assert number(share) == pytest.approx(100 * classes[cls] / len(unanswered), abs=0.051)
        mine = sorted((s for s in statuses if f"{s}"[0] == cls[0]), key=lambda s: (-statuses[s], s))
        assert top == ", ".join(f"{s}: {statuses[s]:,}" for s in mine[:5])

    header, rows = table(browser, "#by-termination-reason")
    assert header == ["termination_reason", "unanswered", "share"]
    reasons = Counter(r.get("termination_reason") or "(none)" for r in unanswered)
    assert {r[0]: int(number(r[1])) for r in rows} == reasons
    assert [int(number(r[1])) for r in rows] == sorted(reasons.values(), reverse=True)


REFUSED = ("account-call-limit", "service-provider-call-limit")  # calls refused at the limit


def alerts_per_day(loaded: Loaded) -> dict[date, Counter[str]]:
    """Each of DAYS: its alerts per type, counted from the `alerts` table (the days are UTC)."""
    per_day: dict[date, Counter[str]] = {day: Counter() for day in DAYS}
    for at, kind in loaded.rows("SELECT alerted_at, alert_type FROM alerts"):
        per_day.setdefault(at.astimezone(UTC).date(), Counter())[kind] += 1
    return per_day


def calls_per_day(loaded: Loaded) -> dict[date, list[tuple[object, ...]]]:
    """Each of DAYS: its rows of `calls` as (answered, direction, from_number, to_number)."""
    per_day: dict[date, list[tuple[object, ...]]] = {day: [] for day in DAYS}
    query = "SELECT attempted_at, answered, direction, from_number, to_number FROM calls"
    for at, *row in loaded.rows(query):
        per_day.setdefault(at.astimezone(UTC).date(), []).append(tuple(row))
    return per_day


def busiest(calls: list[tuple[object, ...]]) -> list[tuple[str, int, int]]:
    """The ten countries with most attempts, busiest first (no country last among equals), as
    (country, attempts, answered): the far end `to` of outbound calls, `from` of inbound ones."""
    counts: dict[str | None, list[int]] = {}
    for answered, direction, from_number, to_number in calls:
        far = {"outbound": to_number, "inbound": from_number}.get(str(direction))
        tally = counts.setdefault(country(str(far) if far is not None else None), [0, 0])
        tally[0] += 1
        tally[1] += bool(answered)
    top = sorted(counts, key=lambda c: (-counts[c][0], c is None, c or ""))[:10]
    return [(c or "(no country)", counts[c][0], counts[c][1]) for c in top]


def markdown_rows(text: object) -> list[list[str]]:
    """The cells of a markdown table's rows (Dagster metadata), its header left out."""
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in str(text).splitlines()[2:]
        if line.strip()
    ]


@pytest.mark.process
def test_calls_refused_at_the_call_limit_beside_each_days_attempts_and_alerts_per_type(
    loaded: Loaded, browser: webdriver.Chrome
) -> None:
    """Per day: the attempts (the day's rows of `calls`) and the calls refused at the call limit
    (its alerts of those types); per type and day, every alert; as Chromium shows them."""
    alerts, calls = alerts_per_day(loaded), calls_per_day(loaded)
    browser.get(loaded.report(DAYS[0], LAST).as_uri())
    header, rows = table(browser, "#refused-per-day")
    assert header == [
        "day",
        "attempts",
        "answered",
        "answer_rate",
        "refused_at_call_limit",
        "refused_share",
        "alerts",
    ]
    assert [r[0] for r in rows] == [str(d) for d in DAYS]
    for day, row in zip(DAYS, rows, strict=True):
        cell = dict(zip(header, row, strict=True))
        attempts, answered = len(calls[day]), sum(bool(c[0]) for c in calls[day])
        refused = sum(alerts[day][t] for t in REFUSED)
        assert int(number(cell["attempts"])) == attempts
        assert int(number(cell["answered"])) == answered
        assert number(cell["answer_rate"]) == pytest.approx(100 * answered / attempts, abs=0.051)
        assert int(number(cell["refused_at_call_limit"])) == refused
        share = 100 * refused / (attempts + refused)
        assert number(cell["refused_share"]) == pytest.approx(share, abs=0.0051)
        assert int(number(cell["alerts"])) == sum(alerts[day].values())
    assert sum(alerts[d][t] for d in DAYS for t in REFUSED) > 0  # the simulator refuses some

    header, rows = table(browser, "#alerts-by-type")
    assert header == ["alert_type", "alerts", *(f"{d:%m-%d}" for d in DAYS)]  # one account
    total = sum(alerts.values(), Counter())
    assert [r[0] for r in rows] == sorted(total, key=lambda t: (-total[t], t))
    for kind, all_days, *each_day in rows:
        assert int(number(all_days)) == total[kind]
        assert [int(number(n or "0")) for n in each_day] == [alerts[d][kind] for d in DAYS]


@pytest.mark.process
def test_the_ten_busiest_countries_as_bars_and_a_table(
    loaded: Loaded, browser: webdriver.Chrome
) -> None:
    """The countries of the days' far ends (libphonenumber's reading, pipelines.numbers), counted
    from `calls`: the table's figures, and a bar drawn for each with its attempts and ASR."""
    calls = calls_per_day(loaded)
    found = busiest([c for day in DAYS for c in calls[day]])
    assert len(found) >= 2  # the simulator's US numbers, and some that are no valid number
    browser.get(loaded.report(DAYS[0], LAST).as_uri())
    header, rows = table(browser, "#destinations")
    assert header == ["country", "attempts", "answered", "asr", "talk_minutes", "acd_s", "cost"]
    assert [(r[0], int(number(r[1])), int(number(r[2]))) for r in rows] == found
    for (_, attempts, answered), row in zip(found, rows, strict=True):
        assert number(row[3]) == pytest.approx(100 * answered / attempts, abs=0.051)
    bars = browser.find_elements(By.CSS_SELECTOR, "#busiest-countries g.bar")
    assert [g.get_attribute("data-name") for g in bars] == [c for c, _, _ in found]
    widths = [browser.execute_script("return arguments[0].getBBox().width;", g) for g in bars]
    assert all(w > 50 for w in widths), widths  # laid out and painted, the label and note too
    notes = [g.find_element(By.CSS_SELECTOR, "text.note").text for g in bars]
    assert notes == [f"{a:,} attempts, ASR {ok / a:.1%}" for _, a, ok in found]


@pytest.mark.process
def test_the_models_metadata_carries_the_report_sections_numbers(loaded: Loaded) -> None:
    """alerts_daily's and destinations_daily's metadata of each day (a person's view of the day
    in Dagster's UI) holds the figures the report shows: the refused calls beside the day's
    attempts (counted from the day's calls, whatever order the steps ran in), the alerts per
    type, the busiest countries as a table and as the report's chart."""
    alerts, calls = alerts_per_day(loaded), calls_per_day(loaded)
    for day in DAYS:
        meta = loaded.metadata["alerts_daily"][day]
        refused = sum(alerts[day][t] for t in REFUSED)
        figures = (meta["refused_at_call_limit"], meta["call_attempts"], meta["total_alerts"])
        assert figures == (refused, len(calls[day]), sum(alerts[day].values())), day
        per_type = [r[:2] for r in markdown_rows(meta["alerts_by_type"])]
        order = sorted(alerts[day], key=lambda t: (-alerts[day][t], t))
        assert per_type == [[t, str(alerts[day][t])] for t in order], day
        meta = loaded.metadata["destinations_daily"][day]
        found = busiest(calls[day])
        table_rows = markdown_rows(meta["destinations_busiest"])
        assert [(r[0], int(r[1]), int(r[2])) for r in table_rows] == found, day
        svg = base64.b64decode(str(meta["chart"]).split(",", 1)[1].rstrip(")")).decode()
        drawn = re.findall(r'<g class="bar" data-name="([^"]*)">', svg)
        assert drawn == [c for c, _, _ in found], day


@pytest.mark.process
def test_every_table_fits_a_1400_px_window(loaded: Loaded, browser: webdriver.Chrome) -> None:
    """Layout is the browser's. Each table's last column (peak_cps on the per-trunk tables) can
    be brought into the window and is then painted on top, in a frame with a border that fits the
    window (a table too wide scrolls inside it); nothing widens the page. With one account (no
    account_sid column) every table fits without scrolling."""
    browser.set_window_size(1400, 900)
    browser.get(loaded.report(DAYS[0], LAST).as_uri())
    width = browser.execute_script("return window.innerWidth")
    assert 1300 < width <= 1400
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width
    tables = browser.find_elements(By.CSS_SELECTOR, "table")
    assert len(tables) >= 4 + len({r.get("trunk") for r in loaded.calls(DAYS[0], LAST)})
    for element in tables:
        seen = browser.execute_script(
            """const t = arguments[0], frame = t.parentElement, cells = t.rows[0].cells;
            const last = cells[cells.length - 1];
            const fits = frame.scrollWidth <= frame.clientWidth;
            last.scrollIntoView({block: 'center'});
            const r = last.getBoundingClientRect(), f = frame.getBoundingClientRect();
            const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
            return {right: r.right, frame: f.right, left: f.left, hit: last.contains(hit),
                    fits: fits, border: getComputedStyle(frame).borderRightStyle};""",
            element,
        )
        assert seen["left"] >= 0, seen
        assert seen["frame"] <= width, seen
        assert seen["right"] <= seen["frame"], seen
        assert seen["hit"], seen  # painted on top: not clipped, not covered
        assert seen["border"] == "solid", seen
        assert seen["fits"], seen
    headers = [
        th.text.replace("\n", "")
        for th in browser.find_elements(By.CSS_SELECTOR, "h2.trunk + div th:last-child")
    ]
    assert set(headers) == {"peak_cps"}


@pytest.mark.process
def test_peak_concurrency_has_its_own_axis_and_hours_tick_on_round_hours(
    loaded: Loaded, browser: webdriver.Chrome
) -> None:
    """In Chromium's layout: the peaks are drawn on a panel whose axis ends near their largest
    value (a trunk and direction's most calls in progress at once, counted here by a sweep over
    the calls), so their line spans height; the x labels are midnights and round hours."""
    browser.get(loaded.report(DAYS[0], LAST).as_uri())
    peak = browser.find_element(
        By.CSS_SELECTOR, "#calls-per-hour g.series[data-name='peak concurrent']"
    )
    attempts = browser.find_element(
        By.CSS_SELECTOR, "#calls-per-hour g.series[data-name='attempts']"
    )
    panel = "return arguments[0].closest('g.panel')"
    assert browser.execute_script(panel, peak) != browser.execute_script(panel, attempts)
    axis = browser.execute_script(
        "return [...arguments[0].closest('g.panel').querySelectorAll('text.y')]"
        ".map(t => Number(t.textContent))",
        peak,
    )
    most = max(_most_at_once(calls) for calls in _groups(loaded.calls(DAYS[0], LAST)))
    assert most <= max(axis) < 3 * most
    box = browser.execute_script("return arguments[0].getBBox();", peak)
    assert box["height"] > 40  # on the attempts axis (~200) it would be a few pixels
    ticks = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#calls-per-hour text.x")]
    dates = {f"{d:%m-%d}" for d in DAYS}
    hours = [t for t in ticks if t not in dates]
    assert all(re.fullmatch(r"\d\d:00", t) for t in hours), ticks
    every = sorted({int(t[:2]) for t in hours})  # midnight shows the date instead
    assert every in [list(range(step, 24, step)) for step in (1, 2, 3, 6, 12)], ticks
    assert [t for t in ticks if t in dates] == [f"{d:%m-%d}" for d in DAYS] * 2


def _groups(calls: list[dict[str, object]]) -> list[list[dict[str, object]]]:
    by: dict[tuple[object, object], list[dict[str, object]]] = {}
    for call in calls:
        by.setdefault((call.get("direction"), call.get("trunk")), []).append(call)
    return list(by.values())


def _most_at_once(calls: list[dict[str, object]]) -> int:
    """Calls in progress at once, at most: over [attempted_at, terminated_at), an end before a
    start at the same instant."""
    edges = []
    for call in calls:
        start, end = (
            datetime.fromisoformat(str(call[k])) for k in ("attempted_at", "terminated_at")
        )
        if end > start:
            edges += [(start, 1), (end, -1)]
    level = most = 0
    for _, step in sorted(edges):
        level += step
        most = max(most, level)
    return most


@pytest.mark.process
def test_the_dagster_ui_shows_the_asr_chart_of_a_materialization(
    simulator: Simulator,
    tmp_path: Path,
    browser: webdriver.Chrome,
    monkeypatch: pytest.MonkeyPatch,
    clean_env: None,
) -> None:
    """The chart in trunk_kpis_daily's metadata, as dagster-webserver shows it to a person."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**pipeline_env(simulator, tmp_path / "warehouse.duckdb"), "DAGSTER_HOME": str(home)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    job = build_definitions(load_settings()).resolve_job_def("daily_sync")
    with dg.DagsterInstance.get() as instance:
        assert job.execute_in_process(partition_key=str(LAST), instance=instance).success
    trunks = sorted(
        {r.get("trunk") or "(no trunk)" for r in simulator.calls(ACCOUNT_SID, *_utc(LAST))}
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    web = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), *WEBSERVER_ARGS, str(port)],
        env={**os.environ, **env},
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/assets/trunk_kpis_daily?view=partitions&partition={LAST}"
        _wait_for_server(web, f"http://127.0.0.1:{port}/server_info")
        browser.get(url)
        wait = WebDriverWait(browser, 120)
        show = wait.until(lambda b: b.find_elements(By.XPATH, "//*[text()='[Show Markdown]']"))
        assert len(show) == 1  # the chart; by_trunk is short enough to show in place
        for skip in browser.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
            skip.click()  # the webserver's first-visit newsletter prompt, when it is up already
        browser.execute_script("arguments[0].click();", show[0])  # even under that prompt
        img = wait.until(lambda b: b.find_element(By.CSS_SELECTOR, "img[src^='data:image/svg']"))
        wait.until(lambda b: b.execute_script("return arguments[0].complete", img))
        size = browser.execute_script(
            "return [arguments[0].naturalWidth, arguments[0].naturalHeight]", img
        )
        assert size == [720, 320]  # decoded and laid out by Chromium
        svg = base64.b64decode(img.get_attribute("src").split(",", 1)[1]).decode()
        assert re.findall(r'<g class="series" data-name="([^"]*)">', svg) == trunks
        assert f"ASR per trunk, 14 days to {LAST}" in svg
        shot = Path(os.environ.get("REPORT_SCREENSHOTS", tmp_path)) / "dagster-ui-asr.png"
        assert browser.save_screenshot(str(shot))
    finally:
        web.terminate()
        web.wait(timeout=60)


def _utc(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def _wait_for_server(proc: subprocess.Popen[bytes], url: str) -> None:
    """Until dagster-webserver answers (it loads the code location first), or it exits."""
    deadline = monotonic() + 180
    while monotonic() < deadline:
        assert proc.poll() is None, "dagster-webserver exited"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        proc_wait = 0.5  # the server is not up yet: ask again shortly
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=proc_wait)
    pytest.fail(f"dagster-webserver did not answer {url} in 180 s")


def test_days_without_models_or_calls_are_named_with_the_reason(pipeline: Pipeline) -> None:
    """One day of each kind: never synced, synced without calls, calls without models."""
    for day in DAYS[:2]:
        assert pipeline.run_day(day).success
    start, end = _utc(DAYS[0])
    with duckdb.connect(str(pipeline.warehouse)) as con:  # as if the models never ran that day
        con.execute("DELETE FROM trunk_kpis_daily WHERE day = $d", {"d": DAYS[1]})
        con.execute("DELETE FROM trunk_kpis_daily WHERE day = $d", {"d": DAYS[0]})
        con.execute(  # and as if DAYS[0] had been synced and held no call
            "DELETE FROM calls WHERE attempted_at >= $a AND attempted_at < $b",
            {"a": start, "b": end},
        )
        # and as a warehouse synced and modeled before alerts and destinations existed
        con.execute("DELETE FROM alerts_daily")
        con.execute("DELETE FROM destinations_daily")
    calls = len(pipeline.truth(DAYS[1]))
    before = DAYS[0] - timedelta(days=1)
    with Warehouse(pipeline.warehouse, read_only=True) as wh:
        html = render(wh, Period(before, DAYS[1], "UTC"), source="w", generated=NOW)
    assert f"{DAYS[1]} ({calls:,} calls)" in html
    assert "2 of the 3 days have no calls in the warehouse" in html
    assert f"Never synced (a backfill loads them): {before}." in html
    assert f"Synced, without calls: {DAYS[0]}." in html
    assert '<p class="note" id="no-alerts">No alerts synced for these days' in html
    assert 'id="refused-per-day"' not in html
    assert '<p class="note" id="no-destinations">No destinations_daily rows' in html
    assert 'id="busiest-countries"' not in html


def test_the_default_period_is_the_14_local_days_ending_yesterday() -> None:
    late = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)  # still the 26th in New York
    assert default_period("UTC", late) == Period(
        datetime(2026, 11, 13).date(), datetime(2026, 11, 26).date(), "UTC"
    )
    ny = default_period("America/New_York", late)
    assert (ny.first.isoformat(), ny.last.isoformat()) == ("2026-11-12", "2026-11-25")
    assert len(ny.days) == 14


def test_bad_arguments_and_a_missing_warehouse_are_named(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    done = write_report(pipeline.env, tmp_path, "--from", "2026-11-20", "--to", "2026-11-10")
    assert done.returncode == 2
    assert "--from 2026-11-20 is after --to 2026-11-10" in done.stderr
    missing = tmp_path / "nowhere.duckdb"
    done = write_report(pipeline.env, tmp_path, "--warehouse", str(missing))
    assert done.returncode == 2
    assert f"no warehouse at {missing}" in done.stderr
    assert not list(tmp_path.glob("*.html"))
