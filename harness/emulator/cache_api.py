"""The step cache's own endpoint on the local AWS, and the client the harness uses.

`GET /_mlharness/cache`: the entries (step, job, size, when made and last used) and the
total size; with `?jobs=PREFIX`, also what the cache did with each job whose name starts
with PREFIX (hit: from which job; miss: why; not cached: why). `DELETE`: empty it.
`POST {"bypass": PREFIX}`: jobs whose names start with PREFIX run without it (what
`run --no-cache` asks for its run). 404 when the local AWS runs without a cache.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

from harness.emulator import internal_api
from harness.emulator.internal_api import read_json

CACHE_PATH = "/_mlharness/cache"


def serving(app, cached_runner):
    """The WSGI app, answering CACHE_PATH itself; cached_runner is None without a cache."""

    def handle(environ, query: dict) -> tuple[str, dict]:
        if cached_runner is None:
            return "404 Not Found", {"message": "this local AWS runs without a step cache"}
        method = environ.get("REQUEST_METHOD")
        cache = cached_runner.cache
        if method == "GET":
            document = {"entries": summaries(cache), "bytes": cache.size()}
            if query.get("jobs"):
                document["events"] = cached_runner.events(query["jobs"][0])
            return "200 OK", document
        if method == "DELETE":
            return "200 OK", {"removed": cache.clear()}
        if method == "POST":
            try:
                body = read_json(environ) or {}
                cached_runner.bypass(str(body["bypass"]))
            except (ValueError, KeyError, TypeError):
                return "400 Bad Request", {"message": 'expected {"bypass": PREFIX}'}
            return "200 OK", {"bypass": body["bypass"]}
        return "405 Method Not Allowed", {"message": f"{method} is not supported"}

    return internal_api.answering(app, CACHE_PATH, handle)


def summaries(cache) -> list[dict]:
    return [
        {
            "kind": e["kind"],
            "job": e["job"],
            "key": e["key"][:12],
            "bytes": sum(o["size"] for o in e["outputs"]),
            "created": e["created"],
            "last_used": e["last_used"],
        }
        for e in sorted(cache.entries(), key=lambda e: e["last_used"], reverse=True)
    ]


class NoCache(RuntimeError):
    """The local AWS at that endpoint runs without a step cache."""


def call(
    endpoint_url: str,
    method: str,
    document: dict | None = None,
    query: dict | None = None,
    timeout: float = 10,
) -> dict:
    """One call to a running local AWS's cache endpoint."""
    try:
        return internal_api.call(endpoint_url, CACHE_PATH, method, document, query, timeout)
    except urllib.error.HTTPError as ex:
        if ex.code == 404:
            raise NoCache(f"the local AWS at {endpoint_url} runs without a step cache") from None
        raise
