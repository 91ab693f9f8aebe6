"""A project's pipelines: the modules its mlharness.yaml lists, each defining PIPELINE, imported
with the project's folder first on the import path (no PYTHONPATH needed). Ordered so that a
pipeline comes after those producing what it consumes, otherwise as listed.

A module that fails to import, or defines no PIPELINE, is refused in one line naming the
module and where it failed; the harness never prints the traceback.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.errors import one_line
from mlharness.contract import ContractError, Pipeline, check_registry


def load(root: Path, modules: tuple[str, ...]) -> list[Pipeline]:
    importable(root, modules)
    pipelines = [_pipeline_of(root, module) for module in dict.fromkeys(modules)]
    check_registry(pipelines)
    return _in_dependency_order(pipelines)


_ADDED: list[Path] = []  # project folders this process put on the import path


def importable(root: Path, names: Sequence[str] = ()) -> None:
    """Put the project first on the import path, so that its modules (`names`, and whatever is
    at the top of its folder) import from it. A process that loads several projects (a test
    session) forgets, of those names, what it imported from anywhere else."""
    root = Path(root).resolve()
    for earlier in [p for p in _ADDED if p != root]:
        _ADDED.remove(earlier)
        if str(earlier) in sys.path:
            sys.path.remove(str(earlier))
    if str(root) in sys.path:
        sys.path.remove(str(root))
    else:
        _ADDED.append(root)
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    ours = _top_level_names(root)
    wanted = ours | {name.partition(".")[0] for name in names}
    for name, module in list(sys.modules.items()):
        top = name.partition(".")[0]
        if top not in wanted:
            continue
        location = _location(module)
        if location is None or location.is_relative_to(root):
            continue
        if top in ours or not _resolves_to(top, location):
            del sys.modules[name]


def _resolves_to(top: str, location: Path) -> bool:
    """Whether importing `top` now would find the module loaded from `location`."""
    import importlib.machinery

    spec = importlib.machinery.PathFinder.find_spec(top, sys.path)
    if spec is None:
        return False
    origin = (
        spec.origin
        if spec.origin not in (None, "namespace")
        else next(iter(spec.submodule_search_locations or []), None)
    )
    if origin is None:
        return False
    found = Path(origin).resolve()
    package = found.parent if found.name == "__init__.py" else found
    return location == found or location.is_relative_to(package)


def _top_level_names(root: Path) -> set[str]:
    """The packages (folders with __init__.py) and modules at the top of a project's folder."""
    return {p.name for p in root.iterdir() if (p / "__init__.py").is_file()} | {
        p.stem for p in root.glob("*.py")
    }


def _location(module) -> Path | None:
    found = getattr(module, "__file__", None)
    if not found:
        try:
            found = next(iter(getattr(module, "__path__", None) or []), None)
        except (KeyError, TypeError):  # a namespace package whose parent was forgotten
            return None
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
