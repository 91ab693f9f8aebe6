"""`mlharness init`: write a new project that works as written.

The project (harness/resources/project_template) has the configuration, one pipeline
(processing, training in the project's own image, evaluation, a metric gate, create
model, batch transform), its job code and Dockerfile, an example-data generator, tests
with the pytest plugin, tox.ini and a CI workflow. Straight after `init`, `mlharness run
--target local` and `pytest` pass there, offline (the project's image extends the
harness's job image, so nothing is downloaded).
"""

from __future__ import annotations

import dataclasses
import json
import re
from importlib import metadata
from pathlib import Path

from harness import resources
from harness.errors import HarnessError
from harness.project import NAME

PLACEHOLDER = "__PROJECT__"
# Template files whose names a package could not carry (dotfiles) or would misread.
RENAMED = {"_gitignore": ".gitignore", "_github": ".github"}
ALLOWED_IN_TARGET = {".git"}  # a folder `git init` made first is still an empty project
SKIPPED = {"__pycache__", ".ruff_cache", ".pytest_cache"}


@dataclasses.dataclass(frozen=True)
class Written:
    root: Path
    name: str
    files: list[Path]


def init(directory: str | Path, name: str | None = None) -> Written:
    """Write the template into `directory` (new, or empty but for .git); one line for what
    cannot be done, and nothing written then."""
    root = Path(directory).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise HarnessError(f"{directory} is a file: `mlharness init` writes a project into a folder")
    if root.is_dir():
        present = sorted(p.name for p in root.iterdir() if p.name not in ALLOWED_IN_TARGET)
        if present:
            shown = ", ".join(present[:3]) + (", ..." if len(present) > 3 else "")
            raise HarnessError(
                f"{directory} is not empty ({shown}): init writes a new project into an empty folder"
            )
    name = name or _name_from(root.name)
    if not NAME.match(name):
        raise HarnessError(
            f"project name {name!r}: use 2-32 lower-case letters, digits and '-', starting with a letter "
            "(--name NAME)"
        )
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted(resources.PROJECT_TEMPLATE.rglob("*")):
        relative = source.relative_to(resources.PROJECT_TEMPLATE)
        if source.is_dir() or SKIPPED & set(relative.parts):
            continue
        target = root.joinpath(*(RENAMED.get(part, part) for part in relative.parts))
        target.parent.mkdir(parents=True, exist_ok=True)
        text = source.read_bytes()
        if PLACEHOLDER.encode() in text:
            text = text.replace(PLACEHOLDER.encode(), name.encode())
        target.write_bytes(text)
        target.chmod(source.stat().st_mode & 0o777)
        written.append(target)
    requirements = root / "requirements-dev.txt"
    requirements.write_text(
        "# What the project's tests and CI install: mlharness (as this project was made) and pytest.\n"
        f"{_installed_from()}\npytest\n"
    )
    written.append(requirements)
    return Written(root, name, sorted(written))


def _name_from(folder: str) -> str:
    name = re.sub(r"[^a-z0-9]+", "-", folder.lower()).strip("-")
    if name and not name[0].isalpha():
        name = f"p-{name}"
    return name[:32].rstrip("-")


def _installed_from() -> str:
    """The requirement that installs this mlharness again: the wheel or folder it came from
    (pip's record of it), else the package's name and version."""
    try:
        distribution = metadata.distribution("mlharness")
    except metadata.PackageNotFoundError:
        return "mlharness"
    direct = distribution.read_text("direct_url.json")
    if direct:
        found = json.loads(direct)
        url = found.get("url", "")
        if found.get("dir_info", {}).get("editable"):
            return f"-e {url.removeprefix('file://')}"
        if url:
            return f"mlharness @ {url}"
    return f"mlharness=={distribution.version}"
