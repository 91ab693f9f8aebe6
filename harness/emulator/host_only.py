"""The local AWS's own endpoints that change it answer only callers on the host.

`POST /_localstack/health {"action": "kill"}`, the init and cache endpoints and every other
write under `/_localstack/` or `/_mlharness/` come from the user's commands, never from the
code a job or a model server runs: a request from the address of a container a local AWS
runs is refused with 403. Reads stay open to them (a job may ask for health or info).
`from_a_container` is also how IAM evaluation tells a container's call from the user's. A
call from a network's gateway (the host, as calls through a published port arrive) is the
host's without asking the engine: that test stays off the hot path for the host's calls.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from harness.emulator import containers
from harness.emulator.internal_api import json_answer

OWN_PATHS = ("/_localstack/", "/_mlharness/")
READS = ("GET", "HEAD", "OPTIONS")


def host_addresses() -> frozenset[str]:
    return containers.gateway_addresses()


def serving(app, container_addresses: Callable[[], set[str]] = containers.container_addresses):
    """The WSGI app, refusing writes to its own endpoints from job and serving containers."""

    def application(environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        if method in READS or not path.startswith(OWN_PATHS):
            return app(environ, start_response)
        if not from_a_container(environ, container_addresses):
            return app(environ, start_response)
        message = f"{method} {path} answers only callers on the host, not job or serving containers"
        return json_answer(start_response, "403 Forbidden", {"message": message})

    return application


def from_a_container(environ, container_addresses: Callable[[], set[str]]) -> bool:
    """Whether the caller, or anyone a proxy on loopback (LocalStack's, in front) says it
    forwards for, has the address of a container a local AWS runs."""
    caller = environ.get("REMOTE_ADDR", "")
    callers = {caller}
    if caller in host_addresses():  # a network's gateway: the host, known without a lookup
        return False
    if _is_loopback(caller):
        forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
        callers = {address.strip() for address in forwarded.split(",") if address.strip()}
        if not callers:
            return False
    return bool(callers & container_addresses())


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
