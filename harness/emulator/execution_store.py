"""The outcome of every execution that ended, kept in the local AWS's state dir.

Executions run in the local AWS's memory and are gone when it stops; what a run's record
says of them must not be. When an execution ends, its description (status, output, error,
cause, dates) and its event history are written here; the harness reads them back
(`StoredExecutions`) for a run whose execution the local AWS no longer knows, or when the
local AWS is not running, so that `LOST` means unknown and nothing else.

Layout: <root>/<sha256 of the execution ARN>.json
"""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

from botocore.exceptions import ClientError

from harness.emulator.state_files import FolderStore, atomic_write, quarantine, read_json

EXECUTIONS_FOLDER = "executions"  # in the local AWS's state dir
_DATES = ("startDate", "stopDate", "timestamp")


class ExecutionStore(FolderStore):
    def record(self, describe: dict, history: list[dict]) -> None:
        """Keep an ended execution: its DescribeExecution answer and its events."""
        document = {"describe": describe, "history": history}
        path = path_of(self.root, describe["executionArn"])
        with self._lock:
            atomic_write(path, json.dumps(document, default=_jsonable).encode())


class StoredExecutions:
    """The two Step Functions calls a run's watcher makes, answered from a store's files: an
    execution it does not hold is ExecutionDoesNotExist, as the API says."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def describe_execution(self, executionArn: str) -> dict:
        return dict(self._document(executionArn)["describe"])

    def get_execution_history(self, executionArn: str, reverseOrder: bool = False, **paging) -> dict:
        events = list(self._document(executionArn)["history"])
        return {"events": events[::-1] if reverseOrder else events}  # one page: it is all here

    def _document(self, arn: str) -> dict:
        path = path_of(self.root, arn)
        found = read_json(path) if path.is_file() else None
        if path.is_file() and not (isinstance(found, dict) and {"describe", "history"} <= set(found)):
            quarantine(path, "not a whole execution record")
            found = None
        if found is None:
            error = {"Code": "ExecutionDoesNotExist", "Message": f"Execution Does Not Exist: '{arn}'"}
            raise ClientError({"Error": error}, "DescribeExecution")
        found["describe"] = _dated(found["describe"])
        found["history"] = [_dated(event) for event in found["history"]]
        return found


def path_of(root: Path, arn: str) -> Path:
    return Path(root) / f"{hashlib.sha256(arn.encode()).hexdigest()}.json"


def _jsonable(value):
    if isinstance(value, datetime.datetime):  # to the millisecond, as the API answers
        return value.replace(microsecond=value.microsecond // 1000 * 1000).isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _dated(document: dict) -> dict:
    """The document with its dates as datetimes again (as botocore parses them)."""
    return {
        key: datetime.datetime.fromisoformat(value) if key in _DATES and isinstance(value, str) else value
        for key, value in document.items()
    }
