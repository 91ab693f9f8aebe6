"""The job timeline the benchmark's per-hop breakdown reads."""

from __future__ import annotations

import io
import json

from harness.emulator.sagemaker import timeline


def test_marks_keep_the_first_time_unless_told_and_are_read_by_job_prefix(monkeypatch):
    clock = iter([1.0, 2.0, 3.0, 4.0, 5.0])
    monkeypatch.setattr(timeline.time, "time", lambda: next(clock))
    line = timeline.Timeline()
    line.mark("run-1-train", "first line")
    line.mark("run-1-train", "first line")  # a later line: the first stays
    line.mark("run-1-train", "last line", keep_first=False)
    line.mark("run-1-train", "last line", keep_first=False)
    line.mark("run-2-train", "created")
    assert line.of("run-1-") == {"run-1-train": {"first line": 1.0, "last line": 4.0}}
    assert set(line.of("run-")) == {"run-1-train", "run-2-train"}


def test_only_the_latest_jobs_are_kept(monkeypatch):
    monkeypatch.setattr(timeline, "KEPT_JOBS", 3)
    line = timeline.Timeline()
    for number in range(5):
        line.mark(f"job-{number}", "created")
    assert sorted(line.of("job-")) == ["job-2", "job-3", "job-4"]


def test_the_endpoint_answers_its_path_and_passes_the_rest_on():
    timeline.TIMELINE.mark("endpoint-test-job", "created")
    app = timeline.serving(lambda environ, start_response: [b"the rest"])
    answered = []
    body = app(
        {
            "PATH_INFO": timeline.TIMELINE_PATH,
            "QUERY_STRING": "jobs=endpoint-test-",
            "wsgi.input": io.BytesIO(),
        },
        lambda status, headers: answered.append(status),
    )
    assert answered == ["200 OK"]
    assert list(json.loads(b"".join(body))["jobs"]) == ["endpoint-test-job"]
    assert app({"PATH_INFO": "/"}, lambda status, headers: None) == [b"the rest"]
