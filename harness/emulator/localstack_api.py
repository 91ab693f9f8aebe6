"""LocalStack's own endpoints on the local AWS, in LocalStack's shapes, so that healthchecks,
CI scripts and tools written for LocalStack wait on it and read it unchanged.

- `GET /_localstack/health`: `{"services": {name: "running"}, "edition", "version"}` plus what
  was PUT there (LocalStack merges keys like `features:initScripts` into the document);
  HEAD answers 200; `POST {"action": "kill"}` stops the local AWS (`restart` is refused: there
  is no supervisor to restart it);
- `GET /_localstack/info`: version, edition, session and machine ids, system, whether it runs
  in a container, server time and uptime;
- `GET /_localstack/init` and `/_localstack/init/<stage>`: the init scripts and their states.

The edition says `mlharness` and the version is the project's: this is not LocalStack, and a
tool that checks for LocalStack's own features should not be told otherwise.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import platform
import threading
import time
import uuid
from pathlib import Path

from harness.emulator.init_hooks import InitHooks, Stage
from harness.emulator.internal_api import json_answer, read_json

PREFIX = "/_localstack/"
EDITION = "mlharness"


def version() -> str:
    try:
        return importlib.metadata.version("mlharness")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class LocalStackEndpoints:
    """The documents; `stopping` is set by POST /_localstack/health {"action": "kill"}."""

    def __init__(self, services: list[str], hooks: InitHooks, stopping: threading.Event):
        self.services = sorted(services)
        self.hooks = hooks
        self.stopping = stopping
        self.state: dict = {}  # what clients PUT on /_localstack/health
        self.started = time.time()
        self.session_id = str(uuid.uuid4())

    def health(self) -> dict:
        document = _merged({"services": dict.fromkeys(self.services, "running")}, self.state)
        return {**document, "edition": EDITION, "version": version()}

    def put_health(self, data: dict) -> None:
        """LocalStack's PUT: keys like `features:initScripts` are paths into the document."""
        for key, value in data.items():
            *parents, leaf = key.split(":")
            node = self.state
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value

    def info(self) -> dict:
        return {
            "version": version(),
            "edition": EDITION,
            "is_license_activated": False,
            "session_id": self.session_id,
            "machine_id": _machine_id(),
            "system": platform.system().lower(),
            "is_docker": Path("/.dockerenv").exists(),
            "server_time_utc": datetime.datetime.now(datetime.UTC)
            .replace(tzinfo=None)
            .isoformat("T", "seconds"),
            "uptime": int(time.time() - self.started),
        }


def serving(app, endpoints: LocalStackEndpoints):
    """The WSGI app, answering LocalStack's endpoints itself."""

    def application(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            return app(environ, start_response)
        method = environ.get("REQUEST_METHOD")
        resource = path[len(PREFIX) :].rstrip("/")
        if resource == "health":
            return _health(endpoints, method, environ, start_response)
        if method not in ("GET", "HEAD"):
            return json_answer(start_response, "405 Method Not Allowed", {"message": f"{method} {path}"})
        if resource == "info":
            return json_answer(start_response, "200 OK", endpoints.info())
        if resource == "init":
            return json_answer(start_response, "200 OK", endpoints.hooks.report())
        if resource.startswith("init/"):
            stage = resource.split("/", 1)[1].upper()
            if stage not in Stage.__members__:
                return _text(start_response, "404 Not Found", f"no such stage {stage.lower()}")
            return json_answer(start_response, "200 OK", endpoints.hooks.report(Stage[stage]))
        return app(environ, start_response)  # not one of LocalStack's: what moto says of it

    return application


def _health(endpoints: LocalStackEndpoints, method: str, environ, start_response):
    if method == "GET":
        return json_answer(start_response, "200 OK", endpoints.health())
    if method == "HEAD":
        return _text(start_response, "200 OK", "ok")
    try:
        data = read_json(environ)
    except ValueError:
        data = None
    if method == "PUT":
        endpoints.put_health(data if isinstance(data, dict) else {})
        return json_answer(start_response, "200 OK", {"status": "OK"})
    if method == "POST":
        if not isinstance(data, dict) or not data:
            return _text(start_response, "400 Bad Request", "invalid request")
        if data.get("action") == "kill":
            endpoints.stopping.set()
        elif data.get("action") == "restart":
            return _text(start_response, "501 Not Implemented", "restart is not supported: stop and start it")
        return _text(start_response, "200 OK", "ok")
    return json_answer(start_response, "405 Method Not Allowed", {"message": f"{method} /_localstack/health"})


def _text(start_response, status: str, text: str):
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _merged(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _machine_id() -> str:
    try:
        return Path("/etc/machine-id").read_text().strip()[:12] or platform.node()
    except OSError:
        return platform.node()
