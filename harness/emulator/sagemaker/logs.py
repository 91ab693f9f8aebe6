"""Container output into CloudWatch Logs: jobs' under the names SageMaker uses, functions' under Lambda's.

Written into the emulator's own Logs backend while the job runs, so `aws logs
tail`, the SageMaker SDK's `logs=True` and the harness all read it there; and,
once `persist_to` is given a store, to disk, so it survives a restart. When another server's
Logs is the one users read (`--engine localstack`), `mirror_to` copies every line there too.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from mlharness.kinds import ENDPOINT, Kind

log = logging.getLogger(__name__)

_create_lock = threading.Lock()
_put_lock = threading.Lock()  # moto's log streams are not thread-safe
_store = None  # a harness.emulator.log_store.LogStore, when the emulator persists logs
_mirror = None  # a LogMirror, when users read logs from another server


def persist_to(store) -> None:
    global _store
    _store = store


def mirror_to(endpoint_url: str) -> None:
    global _mirror
    _mirror = LogMirror(endpoint_url)


class LogMirror:
    """Copies job log lines to another server's Logs API, in order, batched, off the job's thread.
    Each line goes to the job's account there (its id as the access key: LocalStack's convention)."""

    BATCH = 500

    def __init__(self, endpoint_url: str):
        self.endpoint_url = endpoint_url
        self._lines: queue.Queue = queue.Queue()
        self._clients: dict[tuple[str, str], object] = {}
        self._made: set[tuple] = set()  # (account, region, group, stream) created there
        threading.Thread(target=self._copy, name="log-mirror", daemon=True).start()

    def add(self, account_id: str, region: str, group: str, stream: str, event: dict) -> None:
        self._lines.put((account_id, region, group, stream, event))

    def _copy(self) -> None:
        while True:
            first = self._lines.get()
            batch = [first]
            while len(batch) < self.BATCH:
                try:
                    batch.append(self._lines.get_nowait())
                except queue.Empty:
                    break
            by_stream: dict[tuple, list[dict]] = {}
            for account_id, region, group, stream, event in batch:
                by_stream.setdefault((account_id, region, group, stream), []).append(event)
            for where, events in by_stream.items():
                try:
                    self._put(where, events)
                except Exception:  # noqa: BLE001  the job goes on; its log stays in this server
                    log.warning(
                        "could not copy %d log line(s) of %s to %s", len(events), where[3], self.endpoint_url
                    )

    def _put(self, where: tuple, events: list[dict]) -> None:
        account_id, region, group, stream = where
        client = self._client(account_id, region)
        if where not in self._made:
            for create, arguments in (
                (client.create_log_group, {"logGroupName": group}),
                (client.create_log_stream, {"logGroupName": group, "logStreamName": stream}),
            ):
                try:
                    create(**arguments)
                except client.exceptions.ResourceAlreadyExistsException:
                    pass
            self._made.add(where)
        client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)

    def _client(self, account_id: str, region: str):
        if (account_id, region) not in self._clients:
            import boto3

            self._clients[account_id, region] = boto3.client(
                "logs",
                endpoint_url=self.endpoint_url,
                region_name=region,
                aws_access_key_id=account_id,
                aws_secret_access_key="test",  # noqa: S106  a local server's convention, not a secret
            )
        return self._clients[account_id, region]


class StreamLog:
    """A callable sink: each call appends one line to one log stream (its group and stream made
    when absent); persisted and mirrored like every line written here."""

    def __init__(self, account_id: str, region: str, group: str, stream: str):
        from moto.logs.models import logs_backends

        self._backend = logs_backends[account_id][region]
        self._where = (account_id, region)
        self.group, self.stream = group, stream
        with _create_lock:
            if self.group not in self._backend.groups:
                self._backend.create_log_group(self.group, tags={})
            self._backend.ensure_log_stream(self.group, self.stream)

    def __call__(self, line: str) -> None:
        self.write([line])

    def write(self, lines: list[str]) -> None:
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": line} for line in lines]
        with _put_lock:
            self._backend.put_log_events(self.group, self.stream, events)
        for event in events:
            if _store is not None:
                _store.append(*self._where, self.group, self.stream, event)
            if _mirror is not None:
                _mirror.add(*self._where, self.group, self.stream, event)


class JobLog(StreamLog):
    """A job's or an endpoint's log stream, under the names SageMaker uses."""

    def __init__(
        self,
        account_id: str,
        region: str,
        kind: Kind,
        name: str,
        stream: str | None = None,
        host: str | None = None,
    ):
        # an endpoint's log group is its own (/aws/sagemaker/Endpoints/<name>), a job's its kind's
        group = f"{kind.log_group}/{name}" if kind is ENDPOINT else kind.log_group
        instance = host or kind.first_host
        super().__init__(account_id, region, group, stream or f"{name}/{instance}-{int(time.time())}")
