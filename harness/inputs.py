"""Named inputs: what the selected pipelines run on, resolved, checked and uploaded.

Each input a pipeline declares (`mlharness.Input`) is given by the configuration
(`inputs.<name>`: a path, or `{generate: {...}}`) or `--input NAME=PATH`; without either,
an input whose pipeline can generate an example gets one (kept under
`.mlharness/inputs/`). Before anything is deployed each is checked: it exists, is a
file or a folder as declared, can be read, and passes the check of every selected
pipeline that takes it. It is then uploaded under `inputs/<sha256>/` (the sha256 of its
content; an unchanged input is not uploaded again) and the run gets that prefix.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness import package
from harness.config import Config
from harness.errors import HarnessError, one_line
from mlharness.contract import Input, Pipeline

CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class Given:
    """A checked input, on this machine."""

    name: str
    kind: str  # file | folder
    path: Path
    generated: bool = False


@dataclasses.dataclass(frozen=True)
class Uploaded:
    name: str
    path: Path
    uri: str  # the prefix the run reads: s3://<bucket>/inputs/<sha256>/
    sha256: str

    def recorded(self) -> dict:
        return {"path": str(self.path), "uri": self.uri, "sha256": self.sha256}


def checked(config: Config, pipelines: Sequence[Pipeline], required: bool = True) -> dict[str, Given]:
    """Every input the pipelines take, resolved and checked (one line for the first problem).
    required=False: an input that is neither given nor generated is left out (the test kit's
    runs give it)."""
    takers: dict[str, list[tuple[Pipeline, Input]]] = {}
    for pipeline in pipelines:
        for item in pipeline.inputs:
            takers.setdefault(item.name, []).append((pipeline, item))
    given = {}
    for name, declared in takers.items():
        pipeline, item = declared[0]
        source = config.inputs.get(name)
        if source is not None and source.path is not None:
            found = Given(name, item.kind, Path(source.path))
        elif item.generate is not None:
            options = dict(item.generate_options)
            if source is not None and source.generate is not None:
                options.update(source.generate)
            found = Given(name, item.kind, _generated(config, item, options), generated=True)
        elif not required:
            continue
        else:
            what = f" ({item.description})" if item.description else ""
            raise HarnessError(
                f"pipeline {pipeline.name} takes input {name!r}{what}: give it as inputs.{name} in "
                f"{Path(config.source).name} or with --input {name}=PATH"
            )
        _check_readable(found)
        for taker, declaration in declared:
            _run_check(taker, declaration, found)
        given[name] = found
    return given


def given(pipeline: Pipeline, paths: Mapping[str, Path | str]) -> dict[str, Given]:
    """Inputs given for one run of one pipeline (the test kit's), checked as `checked` checks."""
    declared = {item.name: item for item in pipeline.inputs}
    found = {}
    for name, path in paths.items():
        if name not in declared:
            raise HarnessError(
                f"pipeline {pipeline.name} takes no input {name!r} (it takes {', '.join(declared) or 'none'})"
            )
        found[name] = Given(name, declared[name].kind, Path(path))
        _check_readable(found[name])
        _run_check(pipeline, declared[name], found[name])
    return found


def _check_readable(item: Given) -> None:
    where = f"input {item.name}: {item.path}"
    if not item.path.exists():
        raise HarnessError(f"{where} does not exist")
    if item.kind == "file":
        if not item.path.is_file():
            raise HarnessError(f"{where} is not a file (the input is declared as one)")
        files = [item.path]
    else:
        if not item.path.is_dir():
            raise HarnessError(f"{where} is not a folder (the input is declared as one)")
        files = _files(item.path)
        if not files:
            raise HarnessError(f"{where} holds no files")
    for path in files:
        if not os.access(path, os.R_OK):
            raise HarnessError(f"input {item.name}: {path} cannot be read")


def _run_check(pipeline: Pipeline, declaration: Input, item: Given) -> None:
    if declaration.check is None:
        return
    try:
        declaration.check(item.path)
    except ValueError as ex:
        raise HarnessError(f"input {item.name}: {' '.join(str(ex).split())}") from None
    except Exception as ex:  # noqa: BLE001  (a check that fails otherwise is one line too)
        raise HarnessError(
            f"input {item.name}: pipeline {pipeline.name}'s check raised {one_line(ex)}"
        ) from None


def _generated(config: Config, item: Input, options: Mapping) -> Path:
    """The example input the pipeline generates with these options, made once and kept; made in
    a folder of its own and renamed into place, so two commands at once never see half of one."""
    key = hashlib.sha256(json.dumps([item.name, item.file_name, dict(options)], sort_keys=True).encode())
    folder = config.project.inputs_dir / f"{item.name}-{key.hexdigest()[:12]}"
    path = folder / item.file_name
    if path.exists():
        return path
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        item.generate(scratch / item.file_name, **options)
        if not (scratch / item.file_name).exists():
            raise HarnessError(f"input {item.name}: its generator wrote nothing at {item.file_name}")
        try:
            scratch.rename(folder)
        except OSError:  # another command made it meanwhile: theirs is the same
            pass
    except HarnessError:
        raise
    except Exception as ex:  # noqa: BLE001
        raise HarnessError(f"input {item.name}: generating an example raised {one_line(ex)}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return path


def upload(s3, bucket: str, item: Given) -> Uploaded:
    """The input under inputs/<sha256>/ (a file by its name, a folder as it is laid out)."""
    if item.kind == "file":
        files = {item.path.name: item.path}
    else:
        files = {path.relative_to(item.path).as_posix(): path for path in _files(item.path)}
    digests = {relative: _sha256(path) for relative, path in files.items()}
    if item.kind == "file":
        digest = next(iter(digests.values()))
    else:
        listing = "".join(f"{relative}\0{digests[relative]}\n" for relative in sorted(digests))
        digest = hashlib.sha256(listing.encode()).hexdigest()
    for relative, path in sorted(files.items()):
        with open(path, "rb") as body:
            package.put_once(s3, bucket, f"inputs/{digest}/{relative}", body, digests[relative])
    return Uploaded(item.name, item.path, f"s3://{bucket}/inputs/{digest}/", digest)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
