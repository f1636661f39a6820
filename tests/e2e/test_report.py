"""The HTML report: written by its CLI from days materialized through Dagster, opened in a real
headless Chromium (Debian's chromium and chromedriver, which .ci/install-browser installs).

The browser counts what it drew, not what the HTML says: a chart series that Chromium could not
lay out has no bounding box. The page must fetch nothing and log no console error.
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
from collections.abc import Iterator
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
from pipelines.report import Period, default_period, render
from pipelines.settings import load_settings
from tests.conftest import NOW
from tests.e2e.conftest import Pipeline, pipeline_env
from warehouse.load import Warehouse

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


def write_report(pipeline: Pipeline, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m pipelines.report` (what `make report` runs) with the pipeline's environment."""
    return subprocess.run(
        [sys.executable, "-m", "pipelines.report", *args, "--out", str(out)],
        env={**os.environ, **pipeline.env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.process
def test_the_report_renders_every_trunk_and_both_charts_in_chromium(
    pipeline: Pipeline, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    """`python -m pipelines.report` writes the page and a real headless Chromium renders it: what a
    person sees (the browser is the point), not the HTML text."""
    for day in DAYS:
        assert pipeline.run_day(day).success
    truth = [r for day in DAYS for r in pipeline.truth(day)]
    trunks = sorted({r.get("trunk") or "(no trunk)" for r in truth})
    assert len(trunks) >= 3

    done = write_report(pipeline, tmp_path / "report", "--from", str(DAYS[0]), "--to", str(LAST))
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
    header = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#overview th")]
    column = header.index("attempts") + 1
    cells = browser.find_elements(By.CSS_SELECTOR, f"#overview td:nth-child({column})")
    assert sum(int(c.text.replace(",", "")) for c in cells) == len(truth)
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    # REPORT_SCREENSHOTS: a folder where the screenshot stays for a person to look at
    shot = Path(os.environ.get("REPORT_SCREENSHOTS", tmp_path)) / "report.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one


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


def test_days_with_calls_but_no_models_are_named_not_left_blank(pipeline: Pipeline) -> None:
    for day in DAYS[:2]:
        assert pipeline.run_day(day).success
    with duckdb.connect(str(pipeline.warehouse)) as con:  # as if the models never ran that day
        con.execute("DELETE FROM trunk_kpis_daily WHERE day = $d", {"d": DAYS[1]})
    calls = len(pipeline.truth(DAYS[1]))
    with Warehouse(pipeline.warehouse, read_only=True) as wh:
        html = render(wh, Period(DAYS[0], DAYS[1], "UTC"), source="w", generated=NOW)
    assert f"{DAYS[1]} ({calls:,} calls)" in html
    assert f"{DAYS[0]} (" not in html  # modeled: not named


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
    done = write_report(pipeline, tmp_path, "--from", "2026-11-20", "--to", "2026-11-10")
    assert done.returncode == 2
    assert "--from 2026-11-20 is after --to 2026-11-10" in done.stderr
    missing = tmp_path / "nowhere.duckdb"
    done = write_report(pipeline, tmp_path, "--warehouse", str(missing))
    assert done.returncode == 2
    assert f"no warehouse at {missing}" in done.stderr
    assert not list(tmp_path.glob("*.html"))
