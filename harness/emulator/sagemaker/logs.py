"""Job container output into CloudWatch Logs, under the names SageMaker uses.

Written into the emulator's own Logs backend while the job runs, so `aws logs
tail`, the SageMaker SDK's `logs=True` and the harness all read it there; and,
once `persist_to` is given a store, to disk, so it survives a restart.
"""

from __future__ import annotations

import threading
import time

LOG_GROUPS = {
    "training": "/aws/sagemaker/TrainingJobs",
    "processing": "/aws/sagemaker/ProcessingJobs",
    "transform": "/aws/sagemaker/TransformJobs",
    "endpoint": "/aws/sagemaker/Endpoints/{name}",
}

_create_lock = threading.Lock()
_put_lock = threading.Lock()  # moto's log streams are not thread-safe
_store = None  # a harness.emulator.log_store.LogStore, when the emulator persists logs


def persist_to(store) -> None:
    global _store
    _store = store


class JobLog:
    """A callable sink: each call appends one line to the job's log stream."""

    def __init__(
        self,
        account_id: str,
        region: str,
        kind: str,
        name: str,
        stream: str | None = None,
        host: str | None = None,
    ):
        from moto.logs.models import logs_backends

        self._backend = logs_backends[account_id][region]
        self._where = (account_id, region)
        self.group = LOG_GROUPS[kind].format(name=name)
        instance = host or ("algo-1" if kind in ("training", "processing") else "i-local")
        self.stream = stream or f"{name}/{instance}-{int(time.time())}"
        with _create_lock:
            if self.group not in self._backend.groups:
                self._backend.create_log_group(self.group, tags={})
            self._backend.ensure_log_stream(self.group, self.stream)

    def __call__(self, line: str) -> None:
        event = {"timestamp": int(time.time() * 1000), "message": line}
        with _put_lock:
            self._backend.put_log_events(self.group, self.stream, [event])
        if _store is not None:
            _store.append(*self._where, self.group, self.stream, event)
