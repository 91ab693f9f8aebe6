"""Job logs that survive a restart or a `kill -9` of the emulator.

moto keeps CloudWatch Logs in memory. Each line a SageMaker job writes
(sagemaker/logs.py) is also appended to <root>/<sha256 of the stream>.jsonl,
whose first line names the account, region, group and stream; at start the
files are replayed into moto with the lines' own timestamps, straight into the
streams (the PutLogEvents API would refuse lines older than 14 days). A line cut
short by a crash is skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from harness.emulator.state_files import FolderStore

log = logging.getLogger(__name__)


class LogStore(FolderStore):
    def append(self, account: str, region: str, group: str, stream: str, event: dict) -> None:
        header = {"account": account, "region": region, "group": group, "stream": stream}
        path = self.root / f"{hashlib.sha256(json.dumps(header, sort_keys=True).encode()).hexdigest()}.jsonl"
        with self._lock, open(path, "a", encoding="utf-8") as file:
            if file.tell() == 0:
                file.write(json.dumps(header) + "\n")
            file.write(json.dumps(event) + "\n")

    def restore(self) -> int:
        """Load every persisted stream into moto; return the number of lines."""
        from moto.logs.models import logs_backends

        count = 0
        for path in sorted(self.root.glob("*.jsonl")):
            header, *events = _read_lines(path)
            if not header:
                continue
            backend = logs_backends[header["account"]][header["region"]]
            if header["group"] not in backend.groups:
                backend.create_log_group(header["group"], tags={})
            backend.ensure_log_stream(header["group"], header["stream"])
            stream = backend.groups[header["group"]].streams[header["stream"]]
            if events:
                stream.put_log_events(events)
            count += len(events)
        return count


def _read_lines(path: Path) -> list[dict]:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            log.warning("skipping a cut-short line in %s", path)
    return lines or [{}]
