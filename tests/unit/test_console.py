"""The console's pages and API over a project's records and definitions (WSGI, no browser: the
browser test is tests/integration/test_console_browser.py)."""

from __future__ import annotations

import shutil

import pytest
from werkzeug.test import Client

from harness import cli, config, records
from harness.console import Console


@pytest.fixture
def project(tmp_path):
    # per test: where a project keeps its records depends on MLHARNESS_HOME, which the unit
    # tests' own autouse fixture unsets for each test
    root = tmp_path / "churn"
    assert cli.main(["init", str(root)]) == 0
    settings = config.load("local", [], root)
    record = records.RunRecord(
        run_id="churn-20260101-000000-abcdef", pipeline="churn", env="local", target="local",
        status="FAILED", started_at="2026-01-01T00:00:00+00:00", prefix="s3://b/runs/x", project={},
        inputs={"data": {"path": "data/rows.csv", "sha256": "f00d"}}, code={"sha256": "c0de"}, images={},
        parameters={}, definition_sha256="x", state_machine_arn="arn", error="States.TaskFailed",
        cause="train <script>alert(1)</script> failed", metrics={"accuracy": 0.91},
        steps=[{"name": "Train", "status": "FAILED", "started": "2026-01-01T00:00:01+00:00", "seconds": 3.5}],
    )  # fmt: skip
    records.save(record, settings.records_dir)
    return settings, record


def test_the_api_lists_pipelines_and_runs_and_gives_a_run_whole(project):
    settings, record = project
    client = Client(Console(settings))
    listed = client.get("/api/pipelines").json
    assert [p["name"] for p in listed["pipelines"]] == ["churn"] and listed["env"] == "local"
    runs = client.get("/api/runs?pipeline=churn").json["runs"]
    assert [(r["run_id"], r["status"]) for r in runs] == [(record.run_id, "FAILED")]
    assert client.get("/api/runs?pipeline=other").json["runs"] == []
    whole = client.get(f"/api/runs/{record.run_id}").json
    assert whole["steps"][0]["name"] == "Train" and whole["metrics"] == {"accuracy": 0.91}


def test_pages_show_the_pipeline_and_the_run_escaped(project):
    settings, record = project
    client = Client(Console(settings))
    home = client.get("/")
    assert home.status_code == 200 and "churn" in home.text and record.run_id in home.text
    run = client.get(f"/runs/{record.run_id}")
    assert "<script>alert(1)</script>" not in run.text and "&lt;script&gt;" in run.text
    assert "accuracy" in run.text and "3.5 s" in run.text and f"/runs/{record.run_id}/graph.svg" in run.text
    css = client.get("/assets/console.css")
    assert css.status_code == 200 and css.mimetype == "text/css"


def test_graphs_are_svg_coloured_by_the_run(project):
    if shutil.which("dot") is None:
        pytest.skip("Graphviz is not installed (scripts/setup.sh installs it)")
    settings, record = project
    client = Client(Console(settings))
    plain = client.get("/pipelines/churn/graph.svg")
    assert plain.status_code == 200 and plain.mimetype == "image/svg+xml" and "#f8d7da" not in plain.text
    coloured = client.get(f"/runs/{record.run_id}/graph.svg")
    assert "#f8d7da" in coloured.text  # the failed state


def test_an_unknown_pipeline_or_run_is_one_line_and_404(project):
    settings, _ = project
    client = Client(Console(settings))
    page = client.get("/runs/nope")
    assert page.status_code == 404 and "no run &#x27;nope&#x27; recorded for environment local" in page.text
    assert client.get("/api/runs/nope").json == {"error": "no run 'nope' recorded for environment local"}
    assert client.get("/pipelines/nope").status_code == 404
    assert client.get("/assets/../../etc/passwd").status_code == 404


def test_the_metrics_of_a_pipelines_runs_are_compared_side_by_side(project, tmp_path):
    settings, first = project
    second = records.RunRecord(
        run_id="churn-20260102-000000-bbbbbb", pipeline="churn", env="local", target="local",
        status="SUCCEEDED", started_at="2026-01-02T00:00:00+00:00", ended_at="2026-01-02T00:01:30+00:00",
        prefix="s3://b/runs/y", project={}, inputs={}, code={}, images={}, parameters={},
        definition_sha256="x", state_machine_arn="arn", metrics={"accuracy": 0.93, "auc": 0.97},
    )  # fmt: skip
    records.save(second, settings.records_dir)
    try:
        client = Client(Console(settings))
        page = client.get("/pipelines/churn/compare").text
        assert "<th>accuracy</th><th>auc</th>" in page
        rows = page.split("<tr class='compared'>")[1:]
        assert [second.run_id in rows[0], first.run_id in rows[1]] == [True, True]  # newest first
        assert "0.93" in rows[0] and "0.97" in rows[0] and "0.91" in rows[1]
        only = client.get(f"/pipelines/churn/compare?run={first.run_id}").text
        assert second.run_id not in only and first.run_id in only
        assert "90.0 s" in client.get("/").text  # how long the ended run took
    finally:
        (settings.records_dir / f"{second.run_id}.json").unlink()


def test_a_running_runs_page_reads_its_record_again_and_an_ended_ones_does_not(project):
    settings, ended = project
    running = records.RunRecord(
        run_id="churn-20260103-000000-cccccc", pipeline="churn", env="local", target="local",
        status="RUNNING", started_at="2026-01-03T00:00:00+00:00", prefix="s3://b/runs/z", project={},
        inputs={}, code={}, images={}, parameters={}, definition_sha256="x", state_machine_arn="arn",
    )  # fmt: skip
    records.save(running, settings.records_dir)
    try:
        client = Client(Console(settings))
        assert "http-equiv='refresh'" in client.get(f"/runs/{running.run_id}").text
        assert "http-equiv='refresh'" not in client.get(f"/runs/{ended.run_id}").text
    finally:
        (settings.records_dir / f"{running.run_id}.json").unlink()


def test_a_runs_page_links_what_it_consumed_and_the_runs_that_used_what_it_produced(tmp_path):
    from tests.unit.test_lineage import RUNS

    root = tmp_path / "churn"
    assert cli.main(["init", str(root)]) == 0
    settings = config.load("local", [], root)
    for record in RUNS:
        records.save(record, settings.records_dir)
    client = Client(Console(settings))
    made = client.get("/runs/training-1").text
    assert made.count("<li class='used-by'>") == 2 and "href='/runs/inference-3'" in made
    used = client.get("/runs/inference-2").text
    assert "the model of <a href='/runs/training-1'>training-1</a>" in used
