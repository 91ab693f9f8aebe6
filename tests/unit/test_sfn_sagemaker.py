import datetime

from harness.emulator.sfn_sagemaker import _json_safe


def test_timestamps_become_epoch_milliseconds_everywhere():
    moment = datetime.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.UTC)
    answer = _json_safe(
        {"CreationTime": moment, "Transitions": [{"StartTime": moment, "Status": "Training"}]}
    )
    millis = 1767323045678
    assert answer == {"CreationTime": millis, "Transitions": [{"StartTime": millis, "Status": "Training"}]}
