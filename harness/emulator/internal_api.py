"""What the local AWS's own endpoints (/_mlharness/*, /_localstack/*) share: a JSON answer."""

from __future__ import annotations

import json


def json_answer(start_response, status: str, document) -> list[bytes]:
    """Answer a WSGI request with `document` as JSON; status as WSGI writes it ("200 OK")."""
    body = json.dumps(document).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def read_json(environ) -> object:
    """The request's JSON body (None when it has none); ValueError when it is not JSON."""
    raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    return json.loads(raw) if raw.strip() else None
