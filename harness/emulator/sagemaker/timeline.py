"""When each step of a job happened, in the local AWS's process: what the benchmark's per-hop
breakdown reads (`GET /_mlharness/timeline?jobs=PREFIX`).

Marks, in order: `created` (the job's thread starts), `staged` (inputs downloaded, containers
made), `container started`, `first line` and `last line` (of its output), `container exited`,
`completed` (its Describe says so). A transform job's containers serve: `container started`
is its first serving container's start. Only the latest jobs are kept.
"""

from __future__ import annotations

import collections
import threading
import time

from harness.emulator.internal_api import answering

TIMELINE_PATH = "/_mlharness/timeline"
KEPT_JOBS = 2000


class Timeline:
    def __init__(self) -> None:
        self._marks: collections.OrderedDict[str, dict[str, float]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def mark(self, job: str, event: str, keep_first: bool = True) -> None:
        """Record that `event` happened to `job` now (keep_first: a repeat keeps the first time)."""
        now = time.time()
        with self._lock:
            marks = self._marks.setdefault(job, {})
            if not keep_first or event not in marks:
                marks[event] = now
            while len(self._marks) > KEPT_JOBS:
                self._marks.popitem(last=False)

    def of(self, prefix: str) -> dict[str, dict[str, float]]:
        with self._lock:
            return {job: dict(marks) for job, marks in self._marks.items() if job.startswith(prefix)}


TIMELINE = Timeline()


def serving(app):
    """The WSGI app, answering TIMELINE_PATH itself."""
    return answering(
        app, TIMELINE_PATH, lambda environ, query: ("200 OK", {"jobs": TIMELINE.of(_first(query, "jobs"))})
    )


def _first(query: dict, name: str) -> str:
    return (query.get(name) or [""])[0]
