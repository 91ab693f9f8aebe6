"""What the local AWS did not reproduce, or did differently from AWS, noted as it happens.

Each finding has a subject (the SageMaker job or endpoint it concerns; "" for a request that
concerns none), a kind and one sentence:

- instances: the instance type's CPUs or memory capped by this machine, or a type the
  instance table does not know (no limits); an endpoint variant's instance count;
- gpu: an instance type with GPUs (the container has none);
- spot, warm-pool: managed spot training (run on demand), a warm pool (not kept);
- network: a VpcConfig or inter-container traffic encryption not applied;
- kms: a KMS key accepted but nothing encrypted with it;
- endpoint: production variants beyond the first, not served;
- cache: a job served from the step cache (its code did not run);
- unsupported: an operation refused as unsupported;
- iam: a call AWS would deny (the IAM evaluation's soft mode).

`GET /_mlharness/fidelity?jobs=PREFIX&since=EPOCH&role=ARN`: the findings whose subject starts
with PREFIX, and those made since EPOCH about endpoints and requests of no job: of no role, or
of the role given (a state machine's).
"""

from __future__ import annotations

import collections
import threading
import time

from harness.emulator.internal_api import answering, call

FIDELITY_PATH = "/_mlharness/fidelity"
KEPT = 5000  # findings kept, oldest dropped first


class Journal:
    def __init__(self) -> None:
        self._findings: collections.deque[dict] = collections.deque(maxlen=KEPT)
        self._seen: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def note(
        self, subject: str, kind: str, message: str, of_job: bool = True, role: str | None = None
    ) -> None:
        """One finding. of_job: the subject is a job's name (found by the run's prefix; the same
        finding about one job is kept once); else an endpoint or nothing (found by time)."""
        key = (subject, kind, message)
        with self._lock:
            if of_job and key in self._seen:
                return
            if len(self._findings) == self._findings.maxlen:
                oldest = self._findings[0]
                self._seen.discard((oldest["subject"], oldest["kind"], oldest["message"]))
            if of_job:
                self._seen.add(key)
            self._findings.append(
                {
                    "time": time.time(),
                    "subject": subject,
                    "kind": kind,
                    "message": message,
                    "of_job": of_job,
                    "role": role,
                }  # fmt: skip
            )

    def of(self, prefix: str, since: float | None = None, role: str | None = None) -> list[dict]:
        """The findings about jobs named PREFIX...; and, since a time, the others: those of no role,
        and (given a role) that role's (a state machine's calls), not other roles'."""
        with self._lock:
            findings = list(self._findings)
        return [
            {k: f[k] for k in ("subject", "kind", "message")}
            for f in findings
            if (f["of_job"] and prefix and f["subject"].startswith(prefix))
            or (not f["of_job"] and since is not None and f["time"] >= since and f["role"] in (None, role))
        ]


JOURNAL = Journal()


def serving(app):
    """The WSGI app, answering FIDELITY_PATH itself."""

    def findings(environ, query: dict) -> tuple[str, dict]:
        try:
            since = float(query["since"][0]) if query.get("since") else None
        except ValueError:
            return "400 Bad Request", {"message": "since: seconds since the epoch"}
        role = (query.get("role") or [None])[0]
        return "200 OK", {"findings": JOURNAL.of((query.get("jobs") or [""])[0], since, role)}

    return answering(app, FIDELITY_PATH, findings)


def fetch(endpoint_url: str, prefix: str, since: float | None, role: str | None = None) -> list[dict]:
    """The findings a running local AWS has about a run's jobs (and, since, the rest: of no role or
    of the given one)."""
    query = (
        {"jobs": prefix} | ({"since": since} if since is not None else {}) | ({"role": role} if role else {})
    )
    return call(endpoint_url, FIDELITY_PATH, query=query)["findings"]
