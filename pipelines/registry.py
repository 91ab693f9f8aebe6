"""The registered pipelines: the modules in pipelines.MODULES, then a configuration's own,
each defining PIPELINE. Ordered so that a pipeline comes after those producing what it
consumes, otherwise as registered."""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from pipelines import MODULES
from pipelines.contract import ContractError, Pipeline, check_registry


def load(extra_modules: Sequence[str] = ()) -> list[Pipeline]:
    pipelines = [_pipeline_of(module) for module in dict.fromkeys([*MODULES, *extra_modules])]
    check_registry(pipelines)
    return _in_dependency_order(pipelines)


def _pipeline_of(module_name: str) -> Pipeline:
    try:
        module = importlib.import_module(module_name)
    except ImportError as ex:
        raise ContractError(f"pipeline module {module_name!r} cannot be imported: {ex}") from None
    pipeline = getattr(module, "PIPELINE", None)
    if not isinstance(pipeline, Pipeline):
        raise ContractError(
            f"pipeline module {module_name!r} defines no PIPELINE = pipelines.contract.Pipeline(...)"
        )
    return pipeline


def _in_dependency_order(pipelines: list[Pipeline]) -> list[Pipeline]:
    ordered: list[Pipeline] = []
    pending = list(pipelines)
    while pending:
        ready = next((p for p in pending if not _waits_for(p, pending)), None)
        if ready is None:
            names = ", ".join(p.name for p in pending)
            raise ContractError(f"pipelines {names} consume what each other produce: break the cycle")
        ordered.append(ready)
        pending.remove(ready)
    return ordered


def _waits_for(pipeline: Pipeline, pending: list[Pipeline]) -> bool:
    """Whether another pending pipeline produces something this one consumes."""
    consumed = {a.kind for a in pipeline.consumes}
    return any(consumed & {a.kind for a in other.produces} for other in pending if other is not pipeline)
