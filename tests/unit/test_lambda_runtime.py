"""The Lambda runtime client (resources/lambda_runtime/bootstrap.py) against the local Runtime
API, as a process on this machine (the contract a function's container runs, without Docker),
and .zip packages unpacked safely."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile

import pytest

from harness.emulator.functions import packages
from harness.emulator.functions.environments import RUNTIME_FOLDER
from harness.emulator.functions.runtime_api import Event, RuntimeApi

APP = """
import sys
def handler(event, context):
    if event.get("raise"):
        raise KeyError("missing")
    if event.get("set"):
        return {1}
    return {"got": event, "request": context.aws_request_id, "left": context.get_remaining_time_in_millis()}
"""


def runtime(task_root, handler: str, allowed=lambda address: True):
    api = RuntimeApi("127.0.0.1", allowed)
    env = {"AWS_LAMBDA_RUNTIME_API": api.address, "LAMBDA_TASK_ROOT": str(task_root), "_HANDLER": handler}
    process = subprocess.Popen(
        [sys.executable, str(RUNTIME_FOLDER / "bootstrap.py")], env=env, stderr=subprocess.PIPE
    )
    return api, process


def handed(api, payload: dict, request_id: str) -> Event:
    event = Event(request_id, json.dumps(payload).encode(), "arn:aws:lambda:us-east-1:1:function:f", 5.0)
    api.submit(event)
    assert event.done.wait(20), "the runtime never answered"
    return event


def test_the_runtime_takes_events_and_answers_results_and_errors_as_lambda(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    api, process = runtime(tmp_path, "app.handler")
    try:
        ok = handed(api, {"n": 1}, "r-1")
        result = json.loads(ok.result)
        assert ok.error_type is None
        assert result["got"] == {"n": 1} and result["request"] == "r-1" and 0 < result["left"] <= 5000

        failed = handed(api, {"raise": True}, "r-2")
        error = json.loads(failed.result)
        assert failed.error_type == "Unhandled"
        assert (error["errorType"], error["errorMessage"], error["requestId"]) == (
            "KeyError",
            "'missing'",
            "r-2",
        )

        unmarshalled = handed(api, {"set": True}, "r-3")
        assert json.loads(unmarshalled.result)["errorType"] == "Runtime.MarshalError"
    finally:
        process.kill()
        api.close()


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        (
            "absent.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'absent': No module named 'absent'",
        ),
        ("app.nothing", "Runtime.HandlerNotFound", "Handler 'nothing' missing on module 'app'"),
        ("nodots", "Runtime.MalformedHandlerName", "Bad handler 'nodots': not enough values to unpack"),
    ],
)
def test_a_handler_that_cannot_be_loaded_is_an_init_error(tmp_path, handler, error_type, message):
    (tmp_path / "app.py").write_text(APP)
    api, process = runtime(tmp_path, handler)
    try:
        assert api.init_failed.wait(20)
        error = json.loads(api.init_error)
        assert error["errorType"] == error_type and error["errorMessage"].startswith(message)
        assert process.wait(10) == 1
    finally:
        process.kill()
        api.close()


def test_a_runtime_api_answers_only_its_own_container():
    import urllib.error
    import urllib.request

    api = RuntimeApi("127.0.0.1", allowed=lambda address: False)
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://{api.address}/2018-06-01/runtime/invocation/next", timeout=5)
        assert refused.value.code == 403
    finally:
        api.close()


def zipped(*members: tuple[zipfile.ZipInfo | str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, text in members:
            archive.writestr(member, text)
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["../up.py", "/abs.py", "a/../../up.py", "..\\win.py"])
def test_a_package_naming_a_file_outside_its_folder_is_refused(tmp_path, name):
    with pytest.raises(packages.BadPackage, match="outside its folder"):
        packages.unpacked([zipped((name, "x"))], "k", tmp_path / "code")
    assert not (tmp_path / "up.py").exists() and not list((tmp_path / "code").glob("k*"))


def test_links_and_devices_in_a_package_are_refused(tmp_path):
    link = zipfile.ZipInfo("link")
    link.external_attr = 0o120777 << 16
    with pytest.raises(packages.BadPackage, match="not a regular file"):
        packages.check(zipped((link, "/etc/passwd")))
    with pytest.raises(packages.BadPackage, match="Could not unzip"):
        packages.check(b"not a zip")


def test_layers_are_merged_in_order_once_per_key(tmp_path):
    first = zipped(("python/a.py", "first"), ("python/shared.py", "first"))
    second = zipped(("python/shared.py", "second"))
    folder = packages.unpacked([first, second], "key", tmp_path)
    assert (folder / "python/a.py").read_text() == "first"
    assert (folder / "python/shared.py").read_text() == "second"
    assert oct((folder / "python/a.py").stat().st_mode & 0o777) == "0o644"
    (folder / "python/a.py").write_text("changed")
    assert packages.unpacked([first], "key", tmp_path) == folder  # made once: the key names it
    assert (folder / "python/a.py").read_text() == "changed"
