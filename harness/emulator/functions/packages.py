"""A function's .zip package (and its layers') unpacked into a folder its containers mount.

A package is untrusted input: a member named with `..` or an absolute path, a symbolic
link, or a device is refused (the package is "not a valid zip file" to the caller), so
nothing in it lands outside its folder. Each package is unpacked once per content digest,
into a folder named by that digest; the folder is complete before it is visible.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tempfile
import threading
import zipfile
from pathlib import Path, PurePosixPath

MAX_UNPACKED_BYTES = 250 * 1024 * 1024  # AWS's limit for a function and its layers, unzipped
_lock = threading.Lock()


class BadPackage(ValueError):
    """The package cannot be unpacked safely; the message says why."""


def unpacked(codes: list[bytes], key: str, into: Path) -> Path:
    """The folder holding the packages unpacked in order, a later one's files over an earlier
    one's (as Lambda merges layers into /opt); made once per key (their digest), under `into`."""
    folder = into / key
    with _lock:
        if folder.is_dir():
            return folder
        into.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=into))
        try:
            for code in codes:
                _extract(code, staging)
            staging.chmod(0o755)
            os.replace(staging, folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return folder


def check(code: bytes) -> None:
    """Refuse, as BadPackage, a package that could not be unpacked safely."""
    with _opened(code) as archive:
        for member in archive.infolist():
            _target(Path("/"), member)


def _opened(code: bytes) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(code))
    except zipfile.BadZipFile as ex:
        raise BadPackage(
            f"Could not unzip uploaded file. Please check your file, then try to upload again. ({ex})"
        ) from ex
    if sum(member.file_size for member in archive.infolist()) > MAX_UNPACKED_BYTES:
        raise BadPackage(f"Unzipped size must be smaller than {MAX_UNPACKED_BYTES} bytes")
    return archive


def _extract(code: bytes, into: Path) -> None:
    with _opened(code) as archive:
        for member in archive.infolist():
            target = _target(into, member)
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)
            executable = (member.external_attr >> 16) & 0o111
            target.chmod(0o755 if executable else 0o644)  # readable by the function's user, never setuid
        for folder, _, _ in os.walk(into):
            Path(folder).chmod(0o755)


def _target(root: Path, member: zipfile.ZipInfo) -> Path:
    name = PurePosixPath(member.filename.replace("\\", "/"))
    mode = member.external_attr >> 16
    if name.is_absolute() or ".." in name.parts or not name.parts:
        raise BadPackage(f"The package names a file outside its folder: {member.filename!r}")
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # no type: a plain file (zipfile's own)
        raise BadPackage(f"The package holds {member.filename!r}, which is not a regular file or folder")
    return root.joinpath(*name.parts)
