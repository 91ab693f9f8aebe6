"""A project's pipelines: the modules its mlharness.yaml lists, each defining PIPELINE, imported
with the project's folder first on the import path (no PYTHONPATH needed). Ordered so that a
pipeline comes after those producing what it consumes, otherwise as listed.

A module that fails to import, or defines no PIPELINE, is refused in one line naming the
module and where it failed; the harness never prints the traceback.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from harness.errors import one_line
from mlharness.contract import ContractError, Pipeline, check_registry


def load(root: Path, modules: tuple[str, ...]) -> list[Pipeline]:
    importable(root)
    pipelines = [_pipeline_of(root, module) for module in dict.fromkeys(modules)]
    check_registry(pipelines)
    return _in_dependency_order(pipelines)


_ACTIVE: list[Path] = []  # the project whose folder this process put on the import path


def importable(root: Path) -> None:
    """Put the project first on the import path. A process that loads several projects (a test
    session) forgets what it imported from the one before, and modules of the names this one
    has that were imported from elsewhere."""
    root = Path(root).resolve()
    for earlier in [p for p in _ACTIVE if p != root]:
        _ACTIVE.remove(earlier)
        if str(earlier) in sys.path:
            sys.path.remove(str(earlier))
        _forget(lambda name, location, earlier=earlier: location.is_relative_to(earlier))
    if str(root) in sys.path:
        sys.path.remove(str(root))
    sys.path.insert(0, str(root))
    if root not in _ACTIVE:
        _ACTIVE.append(root)
    importlib.invalidate_caches()

    def shadowed(name: str, location: Path) -> bool:
        top = name.partition(".")[0]
        ours = (root / top / "__init__.py").is_file() or (root / f"{top}.py").is_file()
        return ours and not location.is_relative_to(root)

    _forget(shadowed)


def _forget(which) -> None:
    for name, module in list(sys.modules.items()):
        location = _location(module)
        if location is not None and which(name, location):
            del sys.modules[name]


def _location(module) -> Path | None:
    found = getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", None) or []), None)
    return Path(found).resolve() if found else None


def _pipeline_of(root: Path, module_name: str) -> Pipeline:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as ex:
        parents = {".".join(module_name.split(".")[: i + 1]) for i in range(module_name.count(".") + 1)}
        why = "no such module in the project or on the path" if ex.name in parents else one_line(ex)
        raise ContractError(f"pipeline module {module_name!r} cannot be imported: {why}") from None
    except Exception as ex:  # noqa: BLE001  (whatever a user's module raises is one line here)
        raise ContractError(f"pipeline module {module_name!r} cannot be imported: {one_line(ex)}") from None
    pipeline = getattr(module, "PIPELINE", None)
    if not isinstance(pipeline, Pipeline):
        raise ContractError(f"pipeline module {module_name!r} defines no PIPELINE = mlharness.Pipeline(...)")
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
