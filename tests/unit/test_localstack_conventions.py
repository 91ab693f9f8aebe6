"""LocalStack's conventions on the local AWS, unit by unit: its init hooks (stages, order, a
failing script, what a script sees), its /_localstack endpoints' shapes, and LOCALSTACK_HOST
as the local target's endpoint."""

from __future__ import annotations

import io
import json
import logging
import os
import tarfile
import threading
import time

import pytest

from harness.config import load as load_config
from harness.emulator import init_hooks, localstack_api
from harness.emulator.init_hooks import InitHooks, Stage, State
from harness.errors import HarnessError
from harness.targets import LocalTarget


def _script(root, stage: str, name: str, body: str, executable: bool = True):
    folder = root / stage
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(body)
    path.chmod(0o755 if executable else 0o644)
    return path


def test_each_stage_runs_its_scripts_in_sorted_order_once_and_a_failure_does_not_stop_the_next(tmp_path):
    out = tmp_path / "out.txt"
    _script(tmp_path / "init", "ready.d", "20-second.sh", f"#!/bin/sh\necho second >> {out}\n")
    _script(tmp_path / "init", "ready.d", "10-first.py", f"open({str(out)!r}, 'a').write('first\\n')\n")
    _script(tmp_path / "init", "ready.d", "15-fails.sh", "#!/bin/sh\nexit 3\n")
    _script(tmp_path / "init", "ready.d", "17-not-executable.sh", "#!/bin/sh\necho never\n", executable=False)
    _script(tmp_path / "init", "ready.d", "notes.txt", "not a script")
    _script(tmp_path / "init", "start.d", "01-start.sh", f"#!/bin/sh\necho start >> {out}\n")
    hooks = InitHooks(tmp_path / "init", "http://127.0.0.1:4566")

    assert hooks.report(Stage.READY)["completed"] is False
    hooks.run(Stage.READY)
    hooks.run(Stage.READY)  # once only, as LocalStack

    assert out.read_text().splitlines() == ["first", "second"]
    assert hooks.report(Stage.READY) == {
        "completed": True,
        "scripts": [
            {"stage": "READY", "name": "10-first.py", "state": "SUCCESSFUL"},
            {"stage": "READY", "name": "15-fails.sh", "state": "ERROR"},
            {"stage": "READY", "name": "17-not-executable.sh", "state": "ERROR"},
            {"stage": "READY", "name": "20-second.sh", "state": "SUCCESSFUL"},
        ],
    }
    everything = hooks.report()
    assert everything["completed"] == {"BOOT": False, "START": False, "READY": True, "SHUTDOWN": False}
    assert {"stage": "START", "name": "01-start.sh", "state": "UNKNOWN"} in everything["scripts"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie has exited
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_a_hook_that_overruns_its_limit_is_killed_with_what_it_started_and_the_next_runs(tmp_path, caplog):
    pids = tmp_path / "pids"
    hangs = f"#!/bin/sh\nsleep 300 &\necho $! $$ > {pids}\nwait\n"
    _script(tmp_path / "init", "ready.d", "1-hangs.sh", hangs)
    _script(tmp_path / "init", "ready.d", "2-next.sh", f"#!/bin/sh\ntouch {tmp_path / 'next'}\n")
    hooks = InitHooks(tmp_path / "init", "http://127.0.0.1:4566", timeout=0.5)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR):
        hooks.run(Stage.READY)
    assert time.monotonic() - started < 10
    assert [s.state for s in hooks.scripts[Stage.READY]] == [State.ERROR, State.SUCCESSFUL]
    assert "1-hangs.sh (READY) failed: did not finish within 0.5 s: killed" in caplog.text
    assert not any(_alive(int(pid)) for pid in pids.read_text().split())  # its child too


def test_a_stop_while_a_hook_runs_kills_it_and_skips_the_stage_but_not_shutdown(tmp_path):
    _script(tmp_path / "init", "ready.d", "1-hangs.sh", "#!/bin/sh\nsleep 300\n")
    _script(tmp_path / "init", "ready.d", "2-skipped.sh", "#!/bin/sh\nexit 0\n")
    _script(tmp_path / "init", "shutdown.d", "1-bye.sh", "#!/bin/sh\nexit 0\n")
    hooks = InitHooks(tmp_path / "init", "http://127.0.0.1:4566", timeout=300)
    threading.Timer(0.5, hooks.interrupt).start()
    started = time.monotonic()
    hooks.run(Stage.READY)
    assert time.monotonic() - started < 10
    assert [s.state for s in hooks.scripts[Stage.READY]] == [State.ERROR, State.UNKNOWN]
    hooks.run(Stage.SHUTDOWN)
    assert hooks.scripts[Stage.SHUTDOWN][0].state is State.SUCCESSFUL


def test_the_wait_for_a_start_covers_the_hooks_that_run_before_it(tmp_path):
    for stage in ("boot.d", "start.d", "ready.d", "shutdown.d"):
        _script(tmp_path / "init", stage, "a.sh", "#!/bin/sh\n")
    assert init_hooks.start_bound(tmp_path / "init", 20) == 60  # shutdown's is not waited for
    assert init_hooks.start_bound(None, 20) == 0


def test_a_python_hook_is_executed_as_localstack_does_without_being_main(tmp_path):
    out = tmp_path / "out.json"
    _script(
        tmp_path / "init",
        "boot.d",
        "a.py",
        f"import json\njson.dump({{'has_name': '__name__' in globals()}}, open({str(out)!r}, 'w'))\n",
    )
    hooks = InitHooks(tmp_path / "init", "http://127.0.0.1:4566")
    hooks.run(Stage.BOOT)
    assert hooks.scripts[Stage.BOOT][0].state is State.SUCCESSFUL
    assert json.loads(out.read_text()) == {"has_name": False}


def test_a_hook_sees_the_local_aws_and_test_credentials_whatever_the_environment_held(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALKEY")
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "real-token")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://s3.amazonaws.com")
    out = tmp_path / "env.json"
    keys = ["AWS_ENDPOINT_URL", "LOCALSTACK_HOST", "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_SESSION_TOKEN"]
    _script(
        tmp_path / "init",
        "ready.d",
        "env.py",
        f"import json, os, shutil\njson.dump({{k: os.environ.get(k) for k in {keys!r}}} | "
        f"{{'awslocal': bool(shutil.which('awslocal'))}}, open({str(out)!r}, 'w'))\n",
    )
    InitHooks(tmp_path / "init", "http://127.0.0.1:4599").run(Stage.READY)
    assert json.loads(out.read_text()) == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:4599",
        "LOCALSTACK_HOST": "127.0.0.1:4599",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_PROFILE": None,
        "AWS_SESSION_TOKEN": None,
        "awslocal": True,  # installed beside the local AWS's Python (the test extras)
    }


def test_no_root_means_no_scripts_and_every_stage_completes(tmp_path, monkeypatch):
    monkeypatch.setattr(init_hooks, "DEFAULT_ROOT", tmp_path / "absent")
    assert init_hooks.default_root() is None
    hooks = InitHooks(None, "http://127.0.0.1:4566")
    assert hooks.run(Stage.READY) == []
    assert hooks.report(Stage.READY) == {"completed": True, "scripts": []}


def _call(app, method: str, path: str, body: bytes = b""):
    answered = {}

    def start_response(status, headers):
        answered["status"], answered["headers"] = status, dict(headers)

    chunks = app(
        {
            "PATH_INFO": path,
            "REQUEST_METHOD": method,
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        },
        start_response,
    )
    return answered["status"], b"".join(chunks)


@pytest.fixture
def endpoints(tmp_path):
    hooks = InitHooks(None, "http://127.0.0.1:4566")
    served = localstack_api.LocalStackEndpoints(
        ["s3", "stepfunctions", "sagemaker"], hooks, threading.Event()
    )

    def moto(environ, start_response):
        start_response("404 Not Found", [])
        return [b"moto"]

    app = localstack_api.serving(moto, served)
    return served, app


def test_health_has_localstacks_shape_and_merges_what_is_put_there(endpoints):
    served, app = endpoints
    status, body = _call(app, "GET", "/_localstack/health")
    assert status == "200 OK"
    health = json.loads(body)
    assert health["services"] == {"s3": "running", "sagemaker": "running", "stepfunctions": "running"}
    assert health["edition"] == "mlharness" and health["version"]

    status, body = _call(app, "PUT", "/_localstack/health", b'{"features:initScripts": "initialized"}')
    assert (status, json.loads(body)) == ("200 OK", {"status": "OK"})
    assert json.loads(_call(app, "GET", "/_localstack/health")[1])["features"] == {
        "initScripts": "initialized"
    }
    assert _call(app, "HEAD", "/_localstack/health")[0] == "200 OK"


def test_posting_kill_to_health_stops_the_local_aws_and_restart_is_refused(endpoints):
    served, app = endpoints
    assert _call(app, "POST", "/_localstack/health", b"")[0] == "400 Bad Request"
    assert _call(app, "POST", "/_localstack/health", b'{"action": "restart"}')[0] == "501 Not Implemented"
    assert not served.stopping.is_set()
    assert _call(app, "POST", "/_localstack/health", b'{"action": "kill"}')[0] == "200 OK"
    assert served.stopping.is_set()


def test_info_and_init_answer_in_localstacks_shapes_and_other_paths_pass_on(endpoints):
    _, app = endpoints
    info = json.loads(_call(app, "GET", "/_localstack/info")[1])
    assert set(info) == {
        "version", "edition", "is_license_activated", "session_id", "machine_id", "system", "is_docker",
        "server_time_utc", "uptime",
    }  # fmt: skip
    assert info["is_license_activated"] is False and isinstance(info["uptime"], int)
    assert json.loads(_call(app, "GET", "/_localstack/init")[1])["completed"]["READY"] is False
    assert json.loads(_call(app, "GET", "/_localstack/init/ready")[1]) == {"completed": False, "scripts": []}
    assert _call(app, "GET", "/_localstack/init/nonsense") == ("404 Not Found", b"no such stage nonsense")
    assert _call(app, "GET", "/bucket/key")[1] == b"moto"


@pytest.mark.parametrize(
    ("given", "endpoint"),
    [
        (None, "http://127.0.0.1:4571"),
        ("localhost", "http://localhost:4566"),
        ("local-aws:4599", "http://local-aws:4599"),
    ],
)
def test_the_local_target_reads_localstack_host_as_localstacks_clients_do(monkeypatch, given, endpoint):
    if given is None:
        monkeypatch.delenv("LOCALSTACK_HOST", raising=False)
    else:
        monkeypatch.setenv("LOCALSTACK_HOST", given)
    config = load_config("local", overrides=["emulator.port=4571"])
    assert LocalTarget(config, log=lambda line: None)._endpoint() == endpoint


def test_a_malformed_localstack_host_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("LOCALSTACK_HOST", "host:port:extra")
    target = LocalTarget(load_config("local"), log=lambda line: None)
    with pytest.raises(HarnessError, match="LOCALSTACK_HOST='host:port:extra' is not HOST or HOST:PORT"):
        target._endpoint()


def _archive(name: str, **fields) -> tarfile.TarFile:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        member = tarfile.TarInfo(name)
        for key, value in fields.items():
            setattr(member, key, value)
        member.size = 0
        archive.addfile(member, io.BytesIO(b""))
    buffer.seek(0)
    return tarfile.open(fileobj=buffer, mode="r:gz")


@pytest.mark.parametrize("with_filter", [True, False], ids=["python-with-data-filter", "python-3.11.2"])
def test_model_archives_extract_safely_on_pythons_with_and_without_tarfiles_filter(
    tmp_path, monkeypatch, with_filter
):
    """The container image's Python (Debian 12: 3.11.2) has no extraction filter."""
    from harness.emulator.sagemaker import channels

    if not with_filter:
        monkeypatch.delattr(tarfile, "data_filter")
    channels.extract_safely(_archive("model/model.joblib"), tmp_path / "ok", "s3://b/m.tar.gz")
    assert (tmp_path / "ok" / "model" / "model.joblib").is_file()
    unsafe = [("../evil", {}), ("link", {"type": tarfile.SYMTYPE, "linkname": "../../etc/passwd"})]
    for number, (name, fields) in enumerate(unsafe):
        with pytest.raises(channels.DataError, match="s3://b/m.tar.gz cannot be extracted"):
            channels.extract_safely(_archive(name, **fields), tmp_path / f"dest{number}", "s3://b/m.tar.gz")
    assert not (tmp_path / "evil").exists()
