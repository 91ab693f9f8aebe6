"""Serving for batch transform and endpoints: /ping and /invocations, CSV in and out.

Each input line is a row of features; each output line is "<label>,<probability
of the high-income class>".
"""

from __future__ import annotations

import io
import os
import signal
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import joblib
import numpy as np

MODEL_FILE = "model.joblib"


def predict_csv(model, body: bytes) -> bytes:
    text = body.decode("utf-8").strip()
    if not text:
        return b""
    rows = np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2)
    scores = model.predict_proba(rows)[:, 1]
    return "".join(f"{int(s >= 0.5)},{s:.6f}\n" for s in scores).encode()


def make_handler(model):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            # Without it every keep-alive request stalls about 40 ms (Nagle + delayed ACK).
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _reply(self, code: int, body: bytes = b"", content_type: str = "text/csv") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self._reply(200 if self.path == "/ping" else 404)

        def do_POST(self):
            if self.path != "/invocations":
                return self._reply(404)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                self._reply(200, predict_csv(model, body))
            except ValueError as ex:
                self._reply(400, f"bad input: {ex}".encode(), "text/plain")

        def log_message(self, fmt, *args):
            pass

    return Handler


def main(argv: list[str] | None = None) -> int:
    model_dir = Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    model = joblib.load(model_dir / MODEL_FILE)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # PID 1 must stop on SIGTERM
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    print(f"serve: model loaded, listening on {port}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", port), make_handler(model)).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
