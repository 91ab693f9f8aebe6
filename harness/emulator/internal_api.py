"""What the local AWS's own endpoints (/_mlharness/*, /_localstack/*) share: a JSON answer."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request


def json_answer(start_response, status: str, document) -> list[bytes]:
    """Answer a WSGI request with `document` as JSON; status as WSGI writes it ("200 OK")."""
    body = json.dumps(document).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def answering(app, path: str, handler):
    """The WSGI app, answering `path` itself: `handler(environ, query)` returns (status, document),
    query being the parsed query string; every other path goes on to `app`."""

    def application(environ, start_response):
        if environ.get("PATH_INFO") != path:
            return app(environ, start_response)
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        status, document = handler(environ, query)
        return json_answer(start_response, status, document)

    return application


def read_json(environ) -> object:
    """The request's JSON body (None when it has none); ValueError when it is not JSON."""
    raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    return json.loads(raw) if raw.strip() else None


def call(
    endpoint_url: str,
    path: str,
    method: str = "GET",
    document: dict | None = None,
    query: dict | None = None,
    timeout: float = 10,
) -> dict:
    """One call to one of a running local AWS's own endpoints; urllib's errors as they come."""
    data = json.dumps(document).encode() if document is not None else None
    url = f"{endpoint_url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    request = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 (the local AWS)
        return json.load(answer)
