"""A job ended: the signal that wakes Step Functions' `.sync` tasks at once (AWS learns of a
job's end from an event; polling Describe would add half a poll interval to every step)."""

from __future__ import annotations

import threading

_ended = threading.Condition()


def job_ended() -> None:
    """Wake every waiter: one of the jobs they watch may have ended."""
    with _ended:
        _ended.notify_all()


def wait(seconds: float) -> None:
    """Sleep up to `seconds`, or until a job ends."""
    with _ended:
        _ended.wait(timeout=seconds)
