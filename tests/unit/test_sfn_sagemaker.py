import datetime

from harness.emulator import sfn_sagemaker
from harness.emulator.sfn_sagemaker import _json_safe


def test_timestamps_become_epoch_milliseconds_everywhere():
    moment = datetime.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.UTC)
    answer = _json_safe(
        {"CreationTime": moment, "Transitions": [{"StartTime": moment, "Status": "Training"}]}
    )
    millis = 1767323045678
    assert answer == {"CreationTime": millis, "Transitions": [{"StartTime": millis, "Status": "Training"}]}


def test_a_request_response_result_carries_the_sdk_metadata_step_functions_adds():
    metadata = {
        "RequestId": "req-1",
        "HTTPStatusCode": 200,
        "HTTPHeaders": {
            "x-amzn-requestid": "req-1",
            "content-type": "application/x-amz-json-1.1",
            "content-length": "88",
            "date": "Mon, 07 Dec 2026 22:00:00 GMT",
            "server": "Werkzeug",
        },
    }
    added = sfn_sagemaker.sdk_metadata(metadata)
    assert added["SdkResponseMetadata"] == {"RequestId": "req-1"}
    http = added["SdkHttpMetadata"]
    assert http["HttpStatusCode"] == 200
    assert http["HttpHeaders"] == {
        "Content-Length": "88",
        "Content-Type": "application/x-amz-json-1.1",
        "Date": "Mon, 07 Dec 2026 22:00:00 GMT",
        "x-amzn-RequestId": "req-1",
    }
    assert http["AllHttpHeaders"]["Date"] == ["Mon, 07 Dec 2026 22:00:00 GMT"]
