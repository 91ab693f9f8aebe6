"""One walk over a state machine definition: every state, at any depth.

A definition nests states in Parallel branches and in Map iterators
(`ItemProcessor`, or `Iterator` before 2022). Whatever reads or changes the states
of a definition (the build checks, the KMS pass, the template's IAM kinds) goes
through `states`, so none of them misses a nested one.
"""

from __future__ import annotations

from collections.abc import Iterator

MAP_PROCESSORS = ("ItemProcessor", "Iterator")


def states(scope: dict) -> Iterator[tuple[str, dict]]:
    """(name, state) of every state in `scope` (a definition, a branch or a Map's processor),
    depth first, in the order they are written."""
    for name, state in (scope.get("States") or {}).items():
        yield name, state
        for branch in state.get("Branches") or []:
            if isinstance(branch, dict):
                yield from states(branch)
        for processor in MAP_PROCESSORS:
            if isinstance(state.get(processor), dict):
                yield from states(state[processor])


def arguments(state: dict) -> dict | str | None:
    """A Task's request: `Parameters` (JSONPath) or `Arguments` (JSONata, which may be one
    expression string); None when it has neither."""
    if "Parameters" in state:
        return state["Parameters"]
    return state.get("Arguments")
