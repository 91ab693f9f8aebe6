"""Which files of a code archive a Python program can load: the program, every module its
static imports reach within the archive (transitively, with the packages' __init__.py), and
every file that is not Python source (data and configuration it may read).

The step cache keys a job's code by these files only, so changing one step's script does not
invalidate the steps that never import it. Imports made at run time by name (importlib,
__import__) are not seen: a job that loads code so should run with the cache off.
"""

from __future__ import annotations

import ast
import io
import posixpath
import tarfile


def archive_members(body: bytes) -> dict[str, bytes] | None:
    """The regular files of a tar or tar.gz holding Python sources, by path; None for anything else."""
    try:
        with tarfile.open(fileobj=io.BytesIO(body)) as archive:
            members = {
                posixpath.normpath(m.name).removeprefix("./"): archive.extractfile(m).read()
                for m in archive.getmembers()
                if m.isfile()
            }
    except (tarfile.TarError, OSError, EOFError):
        return None
    return members if any(name.endswith(".py") for name in members) else None


def loadable(members: dict[str, bytes], programs: list[str]) -> set[str] | None:
    """The members the programs can load, or None when no program is among the members (then
    every member counts). A program matches a member it ends with (`/opt/ml/code/jobs/a.py`
    is `jobs/a.py`)."""
    entry_points = {
        member
        for member in members
        if member.endswith(".py")
        for program in programs
        if program == member or program.endswith("/" + member)
    }
    if not entry_points:
        return None
    seen: set[str] = set()
    pending = list(entry_points)
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        roots = ("", posixpath.dirname(module)) if module in entry_points else ("",)
        for found in _imports(members[module], module, roots):
            if found in members and found not in seen:
                pending.append(found)
    return seen | {name for name in members if not name.endswith(".py")}


def _imports(source: bytes, module: str, roots: tuple[str, ...]) -> set[str]:
    """Member paths an import in the module may load: resolved from the archive's root and,
    for the program itself, its own folder (sys.path[0] of a script)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    package = posixpath.dirname(module)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                for root in roots:
                    found |= _candidates(root, alias.name.split("."))
        elif isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names if alias.name != "*"]
            if node.level:  # relative: from the module's package, `level - 1` folders up
                base = package
                for _ in range(node.level - 1):
                    base = posixpath.dirname(base)
                bases = [base]
            else:
                bases = list(roots)
            parts = node.module.split(".") if node.module else []
            for base in bases:
                found |= _candidates(base, parts)
                for name in names:  # `from package import module`
                    found |= _candidates(base, [*parts, name])
    return found


def _candidates(root: str, parts: list[str]) -> set[str]:
    """The files `import a.b.c` may load below root: each package's __init__.py, and the last
    part as a module or a package."""
    found = set()
    for depth in range(1, len(parts) + 1):
        folder = posixpath.join(root, *parts[:depth])
        found.add(f"{folder}/__init__.py")
    if parts:
        found.add(posixpath.join(root, *parts) + ".py")
    return {posixpath.normpath(path).removeprefix("./") for path in found}
