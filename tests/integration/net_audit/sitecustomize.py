"""Loaded by every Python process of a test run that puts this folder on PYTHONPATH:
records each outbound socket connection and each name lookup (Python's audit hooks,
which see every socket the interpreter opens), one JSON line per event."""

import json
import os
import socket
import sys

_LOG = os.environ.get("MLHARNESS_NET_AUDIT")


def _record(kind, target):
    with open(_LOG, "a") as log:
        log.write(
            json.dumps({"pid": os.getpid(), "kind": kind, "target": target, "argv": sys.argv[:3]}) + "\n"
        )


def _hook(event, args):
    if event == "socket.connect":
        sock, address = args[0], args[1]
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            _record("connect", list(address[:2]))
    elif event == "socket.getaddrinfo":
        _record("lookup", args[0] if isinstance(args[0], str) else repr(args[0]))


if _LOG:
    sys.addaudithook(_hook)
