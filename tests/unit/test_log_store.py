"""Job logs written through to disk and replayed into moto at start."""

import time

from moto.logs.models import logs_backends

from harness.emulator.log_store import LogStore


def test_lines_come_back_with_their_timestamps_even_when_old_and_a_cut_line_is_skipped(tmp_path):
    store = LogStore(tmp_path)
    month_ago = int((time.time() - 30 * 86400) * 1000)  # older than PutLogEvents accepts
    store.append(
        "111122223333",
        "eu-west-1",
        "/aws/sagemaker/TrainingJobs",
        "job/algo-1-1",
        {"timestamp": month_ago, "message": "one"},
    )
    store.append(
        "111122223333",
        "eu-west-1",
        "/aws/sagemaker/TrainingJobs",
        "job/algo-1-1",
        {"timestamp": month_ago + 1, "message": "two"},
    )
    (path,) = tmp_path.glob("*.jsonl")
    with open(path, "a") as file:
        file.write('{"timestamp": 1, "mess')  # a crash mid-line

    assert LogStore(tmp_path).restore() == 2

    stream = (
        logs_backends["111122223333"]["eu-west-1"]
        .groups["/aws/sagemaker/TrainingJobs"]
        .streams["job/algo-1-1"]
    )
    assert [(e.timestamp, e.message) for e in stream.events] == [(month_ago, "one"), (month_ago + 1, "two")]
