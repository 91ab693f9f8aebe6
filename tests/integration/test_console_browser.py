"""The console in a real browser: Debian's headless Chromium, driven by Selenium, opens the
console of a project with a recorded run and checks what a person sees (the pipeline listed,
its graph drawn, the run's failed state in its graph and in its steps, the run's metrics).
Screenshots are kept in test-artifacts/console/ (CI keeps that folder)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from harness import cli, config, records
from harness.console import Console

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "console"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER and shutil.which("dot")),
    reason="needs Debian's chromium, chromium-driver and graphviz (scripts/setup.sh installs them)",
)


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    from werkzeug.serving import make_server

    project = tmp_path_factory.mktemp("browser") / "churn"
    assert cli.main(["init", str(project)]) == 0
    settings = config.load("local", [], project)
    record = records.RunRecord(
        run_id="churn-20260101-000000-abcdef", pipeline="churn", env="local", target="local",
        status="FAILED", started_at="2026-01-01T00:00:00+00:00", prefix="s3://b/runs/x", project={},
        inputs={}, code={}, images={}, parameters={}, definition_sha256="x", state_machine_arn="arn",
        error="States.TaskFailed", cause="train failed", metrics={"accuracy": 0.91},
        steps=[{"name": "Train", "status": "FAILED", "started": "2026-01-01T00:00:01+00:00", "seconds": 3.5}],
    )  # fmt: skip
    records.save(record, settings.records_dir)
    server = make_server("127.0.0.1", 0, Console(settings), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", record
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def drawn(driver, image) -> bool:
    return driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", image)


def test_a_person_sees_the_pipeline_its_graph_and_the_failed_run(console, browser):
    from selenium.webdriver.common.by import By

    address, record = console
    browser.get(address + "/")
    assert browser.find_element(By.LINK_TEXT, "churn").is_displayed()
    assert browser.find_element(By.CSS_SELECTOR, "tr.run .status.bad").text == "FAILED"
    browser.save_screenshot(str(SCREENSHOTS / "pipelines.png"))

    browser.find_element(By.LINK_TEXT, "churn").click()
    graph = browser.find_element(By.CSS_SELECTOR, "figure.graph img")
    assert drawn(browser, graph), "the pipeline's graph was not drawn"
    browser.save_screenshot(str(SCREENSHOTS / "pipeline.png"))

    browser.find_element(By.LINK_TEXT, record.run_id).click()
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Run {record.run_id}"
    (step,) = browser.find_elements(By.CSS_SELECTOR, "tr.step")
    assert step.text.split()[:2] == ["Train", "FAILED"]
    assert "accuracy" in browser.find_element(By.TAG_NAME, "main").text
    graph = browser.find_element(By.CSS_SELECTOR, "figure.graph img")
    assert drawn(browser, graph), "the run's graph was not drawn"
    svg = browser.execute_script("return fetch(arguments[0]).then(r => r.text())", graph.get_attribute("src"))
    assert "#f8d7da" in svg  # the failed state, coloured as failed
    browser.save_screenshot(str(SCREENSHOTS / "run.png"))


def test_an_unknown_run_is_a_page_saying_so(console, browser):
    from selenium.webdriver.common.by import By

    address, _ = console
    browser.get(address + "/runs/nope")
    assert (
        browser.find_element(By.CSS_SELECTOR, "p.error").text
        == "no run 'nope' recorded for environment local"
    )
