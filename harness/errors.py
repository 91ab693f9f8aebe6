"""The error the CLI reports as one line and a non-zero exit, and how a user's code's exception
becomes such a line."""

from __future__ import annotations

import traceback
from pathlib import Path


class HarnessError(RuntimeError):
    pass


def one_line(ex: BaseException) -> str:
    """An exception raised in a user's code (a pipeline module, a check, a generator), as one
    line: its type, its message and where it was raised."""
    if isinstance(ex, SyntaxError):
        return f"SyntaxError: {ex.msg} ({Path(ex.filename or '?').name}, line {ex.lineno})"
    frames = traceback.extract_tb(ex.__traceback__)
    where = f" ({Path(frames[-1].filename).name}, line {frames[-1].lineno})" if frames else ""
    message = " ".join(str(ex).split()) or "(no message)"
    return f"{type(ex).__name__}: {message}{where}"
