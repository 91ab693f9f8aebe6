"""Writes to the local AWS's own endpoints answer only callers on the host."""

from __future__ import annotations

import io
import json

import pytest

from harness.emulator import host_only

JOB = "172.30.0.5"


def _call(method: str, path: str, caller: str, forwarded: str | None = None) -> tuple[str, dict | None]:
    reached = []

    def app(environ, start_response):
        reached.append(path)
        start_response("200 OK", [])
        return [b""]

    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "REMOTE_ADDR": caller, "wsgi.input": io.BytesIO()}
    if forwarded is not None:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded
    status = []
    body = host_only.serving(app, lambda: {JOB})(environ, lambda s, headers: status.append(s))
    answer = b"".join(body)
    return status[0], (json.loads(answer) if not reached else None)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/_localstack/health"),
        ("PUT", "/_localstack/health"),
        ("DELETE", "/_mlharness/cache"),
        ("POST", "/_mlharness/cache"),
        ("POST", "/_mlharness/anything-new"),
    ],
)
def test_a_job_container_cannot_change_the_local_aws(method, path):
    status, answer = _call(method, path, JOB)
    assert status == "403 Forbidden"
    assert "answers only callers on the host" in answer["message"]
    # nor through a proxy on loopback that says whom it forwards for
    assert _call(method, path, "127.0.0.1", forwarded=f"127.0.0.1, {JOB}")[0] == "403 Forbidden"


@pytest.mark.parametrize("caller", ["127.0.0.1", "::1", "172.30.0.1", "10.0.0.9"])
def test_the_host_and_other_callers_may(caller):
    assert _call("POST", "/_localstack/health", caller) == ("200 OK", None)


def test_reads_and_aws_operations_stay_open_to_jobs():
    assert _call("GET", "/_localstack/health", JOB) == ("200 OK", None)
    assert _call("GET", "/_mlharness/info", JOB) == ("200 OK", None)
    assert _call("POST", "/", JOB) == ("200 OK", None)  # an AWS API call: IAM judges it


def test_a_networks_gateway_is_the_host_known_without_a_lookup(monkeypatch):
    from harness.emulator import containers

    monkeypatch.setattr(containers, "gateway_addresses", lambda: frozenset({"172.30.0.1"}))

    def no_lookup() -> set[str]:
        raise AssertionError("a gateway's call needs no list of containers")

    environ = {"REMOTE_ADDR": "172.30.0.1"}
    assert host_only.from_a_container(environ, no_lookup) is False
    assert host_only.from_a_container({"REMOTE_ADDR": JOB}, lambda: {JOB}) is True
