"""`glassbox ui` in a real headless Chromium (Debian's, installed by hack/browser.sh) driven by
Selenium through Debian's chromedriver: each view renders, curves have the right number of points,
a new checkpoint appears without a reload, the playground gets a real answer from the tiny scorer's
real server, bad stores show a message.

GLASSBOX_UI_SCREENSHOTS=DIR saves a screenshot of each view there (docs/ui holds the committed ones).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from glassbox_ui.app import create_app

from .conftest import ChatStub, LiveServer, add_checkpoint, pretrain_run

pytestmark = pytest.mark.browser

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SHOTS = os.environ.get("GLASSBOX_UI_SCREENSHOTS")
SCORER_DIR = Path(__file__).parents[1] / "scorer"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (CHROMIUM and DRIVER):
        pytest.fail("chromium and chromedriver are needed: bash hack/browser.sh installs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1100", "--hide-scrollbars"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait(driver: Any, cond: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = cond()
        except Exception:  # noqa: BLE001 - element not there yet
            got = None
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; page text: {driver.find_element('tag name', 'body').text[:1500]}")


def rows(driver: Any, css: str) -> int:
    return len(driver.find_elements("css selector", f"{css} tbody tr"))


def shot(driver: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        h = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1400, min(max(h + 40, 700), 2400))
        driver.save_screenshot(str(Path(SHOTS) / f"{name}.png"))
        driver.set_window_size(1400, 1100)


def points(driver: Any, chart: str) -> list[int]:
    """Non-empty points of each series of a drawn uPlot chart, read from the chart itself."""
    return driver.execute_script(
        "const u = (window.glassboxCharts || {})[arguments[0]]; if (!u) return null;"
        "return u.data.slice(1).map(s => s.filter(v => v !== null && v !== undefined).length);", chart)


def test_runs_view_lists_every_kind_and_filters(browser, live, all_runs):
    browser.get(live.url + "/")
    wait(browser, lambda: rows(browser, "#runs-table") == 4, "4 runs")
    assert {e.text for e in browser.find_elements("css selector", "#runs-table tbody td:first-child")} == {
        "PretrainRun", "KGHarvest", "MetricEval", "ScorerService"}
    shot(browser, "runs")
    browser.find_element("id", "filter").send_keys("cappy")
    wait(browser, lambda: rows(browser, "#runs-table") == 1, "the filter to leave one run")


def test_training_run_view_curves_and_checkpoints(browser, live, all_runs):
    browser.get(f"{live.url}/#/run/{all_runs['pretrain']}")
    wait(browser, lambda: points(browser, "loss") == [30, 3], "the loss chart with 30 steps and 3 checkpoints")
    assert points(browser, "lr") == [30] and points(browser, "throughput") == [30]
    assert points(browser, "evals-perplexity") == [3]
    assert rows(browser, "#checkpoints-table") == 3
    assert "used by" in browser.find_element("id", "lineage").text
    # The axis problems of the hand-drawn report: whole-step x ticks, throughput never below 0.
    xticks = browser.execute_script("return window.glassboxCharts.throughput.axes[0]._splits")
    assert xticks and all(float(x).is_integer() for x in xticks), xticks
    ymin = browser.execute_script("return window.glassboxCharts.throughput.scales.y.min")
    assert ymin >= 0
    shot(browser, "run")


def test_a_new_checkpoint_appears_without_a_reload(browser, store):
    prefix, run, m = pretrain_run(store, name="growing", checkpoints=2, state="running")
    with LiveServer(create_app(store)) as srv:
        browser.get(f"{srv.url}/#/run/{prefix}")
        wait(browser, lambda: rows(browser, "#checkpoints-table") == 2, "2 checkpoints")
        browser.execute_script("window.notReloaded = true")
        add_checkpoint(run, m, 30)
        wait(browser, lambda: rows(browser, "#checkpoints-table") == 3, "the third checkpoint", timeout=15)
        wait(browser, lambda: points(browser, "loss") == [30, 3], "the loss chart to grow")
        assert browser.execute_script("return window.notReloaded") is True


def test_harvest_view_relations_prompts_and_tuple_search(browser, live, all_runs):
    browser.get(f"{live.url}/#/run/{all_runs['harvest']}")
    wait(browser, lambda: rows(browser, "#relations-table") == 2, "2 relations")
    wait(browser, lambda: rows(browser, "[data-table=tuples]") == 10, "10 tuples")
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("id", "relation")).select_by_value("capital_of")
    wait(browser, lambda: rows(browser, "[data-table=prompts]") == 2, "2 prompts with weights")
    assert "0.6" in browser.find_element("css selector", "[data-table=prompts]").text
    search = browser.find_element("css selector", "[data-table=tuples] input")
    search.send_keys("country4")
    wait(browser, lambda: rows(browser, "[data-table=tuples]") == 1, "one tuple found")
    assert "city4 | country4" in browser.find_element("css selector", "[data-table=tuples] tbody").text
    search.clear()
    search.send_keys(" ")
    wait(browser, lambda: rows(browser, "[data-table=tuples]") == 5, "the relation's 5 tuples")
    shot(browser, "kgharvest")


def test_metric_view_results_sortable_scores_with_texts_and_curve(browser, live, all_runs):
    browser.get(f"{live.url}/#/run/{all_runs['metric']}")
    wait(browser, lambda: rows(browser, "#results-table") == 2, "2 corpus results")
    wait(browser, lambda: rows(browser, "[data-table=scores]") == 6, "6 scored examples")
    wait(browser, lambda: points(browser, "curve-perplexity") == [4], "the 4-point checkpoint curve")
    head = [e.text for e in browser.find_elements("css selector", "[data-table=scores] th")]
    assert head[:4] == ["id", "output", "source", "references"]
    sort_by = next(e for e in browser.find_elements("css selector", "[data-table=scores] th") if e.text == "rouge-l")
    sort_by.click()  # first click: highest first
    header = "[data-table=scores] th.sortable:nth-child(6)"
    wait(browser, lambda: browser.find_element("css selector", header).text == "rouge-l ▼", "sorted by rouge-l, highest first")
    assert browser.find_element("css selector", "[data-table=scores] tbody td").text == "s1"
    browser.find_element("css selector", header).click()
    wait(browser, lambda: browser.find_element("css selector", "[data-table=scores] tbody td").text == "s6", "s6 first")
    assert "summary 6" in browser.find_element("css selector", "[data-table=scores] tbody tr").text
    shot(browser, "metriceval")


@pytest.fixture(scope="module")
def scorer_endpoint() -> Iterator[str]:
    """The tiny scorer's real model server (tests/unit/scorer/serve_tiny.py) on 127.0.0.1."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(SCORER_DIR / "serve_tiny.py"), str(port), "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    deadline = time.monotonic() + 120
    while not any(x.startswith("serving: ") for x in lines) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert any(x.startswith("serving: ") for x in lines), "".join(lines)[-3000:]
    yield f"http://127.0.0.1:{port}"
    proc.kill()
    proc.wait()


def test_scorer_playground_ranks_with_the_real_server(browser, live, all_runs, scorer_endpoint):
    browser.get(f"{live.url}/#/run/{all_runs['scorer']}?endpoint={scorer_endpoint}")
    model = wait(browser, lambda: browser.find_element("id", "model"), "the playground")
    model.clear()
    model.send_keys("tiny")  # serve_tiny.py serves the model under this name
    browser.find_element("id", "rank").click()
    wait(browser, lambda: rows(browser, "#rank-table") == 3, "3 ranked candidates", timeout=60)
    text = browser.find_element("id", "rank-table").text
    assert all(c in text for c in ("Ag", "Au", "gold")) and "score" in text
    shot(browser, "scorer-playground")
    model.clear()
    model.send_keys("nope")
    browser.find_element("id", "rank").click()
    err = wait(browser, lambda: browser.find_element("css selector", "#playground-out .error"), "the endpoint's error")
    assert "answered 404" in err.text and "Traceback" not in err.text


def test_chat_playground_shows_the_disclaimer(browser, store):
    from .conftest import start_run

    prefix, _ = start_run(store, "DialogBot", "covid-tiny", {"serving": {"disclaimer": "Spec disclaimer: not a doctor."}})
    with ChatStub() as chat, LiveServer(create_app(store)) as srv:
        browser.get(f"{srv.url}/#/run/{prefix}?endpoint={chat.url}")
        disclaimer = wait(browser, lambda: browser.find_element("id", "disclaimer"), "the disclaimer")
        assert disclaimer.text == "Spec disclaimer: not a doctor."
        browser.find_element("id", "message").send_keys("I have a cough")
        browser.find_element("id", "send").click()
        wait(browser, lambda: "echo: I have a cough" in browser.find_element("id", "chat-log").text, "the reply")
        assert "not a doctor" not in browser.find_element("id", "chat-log").text  # shown once, above
        assert disclaimer.text == "Research system, not a doctor: see one for medical advice."
        shot(browser, "dialogbot-playground")


def test_bad_stores_and_half_written_runs_show_a_message(browser, store, all_runs):
    from glassbox_api.store import RetryPolicy, S3Settings, S3Store

    settings = S3Settings.from_env({"GLASSBOX_S3_ENDPOINT": "http://127.0.0.1:9", "GLASSBOX_S3_ACCESS_KEY": "k",
                                    "GLASSBOX_S3_SECRET_KEY": "s"})
    with LiveServer(create_app(S3Store("runs", "", settings=settings, retry=RetryPolicy(deadline=0.5)))) as srv:
        browser.get(srv.url + "/")
        err = wait(browser, lambda: browser.find_element("css selector", "#runs .error"), "the store error")
        assert "cannot list the store s3://runs" in err.text and "Traceback" not in browser.page_source
        shot(browser, "bad-store")
    store.sub(all_runs["harvest"]).delete("relations/born_in/tuples.jsonl")
    with LiveServer(create_app(store)) as srv:
        browser.get(f"{srv.url}/#/run/{all_runs['harvest']}")
        err = wait(browser, lambda: browser.find_element("css selector", "[data-table=tuples] .error"), "the missing file")
        assert "the manifest lists relations/born_in/tuples.jsonl, but the store has no" in err.text


def test_glassbox_report_draws_the_same_charts_offline(browser, store, tmp_path):
    from glassbox_operator import cli_artifacts

    prefix, run, _ = pretrain_run(store, name="reported")
    out = tmp_path / "report.html"
    assert cli_artifacts.report(run.uri(), out) == 0
    browser.get(out.as_uri())
    wait(browser, lambda: points(browser, "loss") == [30, 3], "the report's loss chart")
    assert points(browser, "throughput") == [30]
    assert browser.execute_script("return window.glassboxCharts.throughput.scales.y.min") >= 0
    shot(browser, "report")
