"""`mlharness cache list|clear`: the local AWS's step cache, read where it is kept.

The cache of the local AWS answering on the configured port, when it runs one; otherwise
the one in the configured state dir (where the local target's local AWS keeps it). The
cache is the machine's, not a project's: outside a project the local AWS's defaults say
where it is.
"""

from __future__ import annotations

from pathlib import Path

from harness.config import Emulator


def location(emulator: Emulator) -> Path:
    from harness.emulator import default_state_dir, server
    from harness.emulator.sagemaker import step_cache

    info = server.info_of(f"http://127.0.0.1:{emulator.port}") or {}
    if info.get("cache"):
        return Path(info["cache"])
    state_dir = Path(emulator.state_dir).expanduser() if emulator.state_dir else default_state_dir()
    return step_cache.default_root(state_dir)


def listing(emulator: Emulator) -> tuple[Path, list[dict], int]:
    """Where the cache is, its entries (most recently used first) and the bytes its outputs take."""
    from harness.emulator import cache_api
    from harness.emulator.sagemaker.step_cache import StepCache

    where = location(emulator)
    if not where.is_dir():
        return where, [], 0
    cache = StepCache(where)
    return where, cache_api.summaries(cache), cache.size()


def clear(emulator: Emulator) -> tuple[Path, int]:
    """Where the cache is, and how many entries were removed."""
    from harness.emulator.sagemaker.step_cache import StepCache

    where = location(emulator)
    if not where.is_dir():
        return where, 0
    return where, StepCache(where).clear()
