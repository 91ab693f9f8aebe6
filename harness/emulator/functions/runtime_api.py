"""The Lambda Runtime API one execution environment's runtime talks to.

AWS's contract with a function's runtime (the same for AWS's clients, a custom runtime and
the local runtime client, resources/lambda_runtime/bootstrap.py): the runtime GETs
`/2018-06-01/runtime/invocation/next` and is handed the next event with its request id and
deadline in headers; it POSTs the handler's result to `.../invocation/{id}/response`, a
failure to `.../invocation/{id}/error`, or a failed initialisation to `.../init/error`.

Each environment gets a server of its own on an ephemeral port, reached from its container
only: a request from any other address is refused, so a job on the same network can neither
take another function's events nor answer for it.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # a synchronous invocation's response, as AWS limits it
NOT_YOURS = {"errorMessage": "this Runtime API serves another execution environment"}


@dataclass
class Event:
    """One invocation, as handed to the runtime and as it ended."""

    request_id: str
    payload: bytes
    function_arn: str
    timeout_s: float
    client_context: str | None = None
    trace_id: str = ""
    handed: threading.Event = field(default_factory=threading.Event)  # the runtime took it
    done: threading.Event = field(default_factory=threading.Event)  # it answered
    deadline_ms: int = 0
    result: bytes = b""
    error_type: str | None = None  # set when the function failed

    def finish(self, result: bytes, error_type: str | None = None) -> None:
        if not self.done.is_set():
            self.result, self.error_type = result, error_type
            self.done.set()


class RuntimeApi:
    def __init__(self, host: str, allowed: Callable[[str], bool]):
        """host: the address to listen on (where the environment's container reaches the local
        AWS). allowed(address): whether a request from that address is the container's."""
        self._events: queue.Queue[Event] = queue.Queue()
        self._current: Event | None = None
        self.init_error: bytes | None = None
        self.init_failed = threading.Event()
        self._allowed = allowed
        self._server = ThreadingHTTPServer((host, 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="lambda-runtime-api", daemon=True).start()

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def submit(self, event: Event) -> None:
        self._events.put(event)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- the routes ------------------------------------------------------------------
    def _next(self) -> Event:
        event = self._events.get()
        event.deadline_ms = int((time.time() + event.timeout_s) * 1000)
        self._current = event
        event.handed.set()
        return event

    def _answer(self, request_id: str, body: bytes, error_type: str | None) -> HTTPStatus:
        event = self._current
        if event is None or event.request_id != request_id:
            return HTTPStatus.BAD_REQUEST
        if error_type is None and len(body) > MAX_RESPONSE_BYTES:
            limit = f"maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)"
            too_large = {
                "errorMessage": f"Response payload size exceeded {limit}.",
                "errorType": "Function.ResponseSizeTooLarge",
            }
            event.finish(json.dumps(too_large).encode(), "Unhandled")
            return HTTPStatus.REQUEST_ENTITY_TOO_LARGE
        event.finish(body, error_type)
        self._current = None
        return HTTPStatus.ACCEPTED

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # noqa: A002 - the stdlib's name
                pass

            def do_GET(self):
                if not api._allowed(self.client_address[0]):
                    return self._reply(HTTPStatus.FORBIDDEN, NOT_YOURS)
                if self.path != f"{PREFIX}/invocation/next":
                    return self._reply(HTTPStatus.NOT_FOUND, {"errorMessage": f"no route {self.path}"})
                event = api._next()
                headers = {
                    "Lambda-Runtime-Aws-Request-Id": event.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(event.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": event.function_arn,
                    "Lambda-Runtime-Trace-Id": event.trace_id,
                }
                if event.client_context:
                    headers["Lambda-Runtime-Client-Context"] = event.client_context
                self._send(HTTPStatus.OK, event.payload, headers)

            def do_POST(self):
                if not api._allowed(self.client_address[0]):
                    return self._reply(HTTPStatus.FORBIDDEN, NOT_YOURS)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.removeprefix(PREFIX)
                if path == "/init/error":
                    api.init_error = body
                    api.init_failed.set()
                    return self._reply(HTTPStatus.ACCEPTED, {"status": "OK"})
                parts = path.split("/")  # ['', 'invocation', id, 'response'|'error']
                if len(parts) != 4 or parts[1] != "invocation" or parts[3] not in ("response", "error"):
                    return self._reply(HTTPStatus.NOT_FOUND, {"errorMessage": f"no route {self.path}"})
                status = api._answer(parts[2], body, "Unhandled" if parts[3] == "error" else None)
                self._reply(
                    status,
                    {"status": "OK"} if status == HTTPStatus.ACCEPTED else {"errorMessage": status.phrase},
                )

            def _reply(self, status: HTTPStatus, document: dict) -> None:
                self._send(status, json.dumps(document).encode(), {})

            def _send(self, status: HTTPStatus, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
