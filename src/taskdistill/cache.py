"""Content hashes and atomic writes: an artifact is either complete or absent, never half-written."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def content_hash(obj: Any, length: int = 16) -> str:
    """Stable hash of a JSON-serialisable object (keys sorted)."""
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Full SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_identity(path: str | Path) -> str:
    """Cheap identity of a file as it is now (absolute path, size, modification time, inode)."""
    st = Path(path).stat()
    return content_hash([str(Path(path).resolve()), st.st_size, st.st_mtime_ns, st.st_ino], 32)


def cached_file_sha256(path: str | Path) -> str:
    """:func:`file_sha256`, computed once per file: remembered under the cache home by the file's identity."""
    from taskdistill import settings

    memo = settings.cache_dir("file-hashes") / f"{file_identity(path)}.txt"
    if memo.is_file():
        return memo.read_text().strip()
    digest = file_sha256(path)
    atomic_write_text(memo, digest)
    return digest


def folder_hash(path: str | Path, length: int = 16) -> str:
    """Hash of a folder's files (names and bytes; each file hashed once, see :func:`cached_file_sha256`)."""
    root = Path(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(root)).encode())
        digest.update(cached_file_sha256(file).encode())
    return digest.hexdigest()[:length]


def check_writable(path: str | Path, what: str, *, folder: bool = False, inside: bool = False) -> None:
    """Refuse, before any work starts, a destination that cannot be written: a file where a folder is
    wanted (or the reverse), a file on the way to it, or a place where nothing can be created.

    ``folder``: the destination is a folder; ``inside``: files are written into that folder (a study
    folder), rather than the folder being built aside and renamed into place (:func:`atomic_dir`).
    Writability is probed for real (a temporary file created and removed where the writing happens:
    the folder itself with ``inside``, else the nearest existing parent): permission bits say nothing
    when running as root, while a read-only mount or an immutable folder stops root too.
    """
    from taskdistill.errors import TaskDistillError

    path = Path(path).expanduser()
    if folder and path.exists() and not path.is_dir():
        raise TaskDistillError(f"{what} {path} is a file, not a folder; give a folder path")
    if not folder and path.is_dir():
        raise TaskDistillError(f"{what} {path} is a folder; give a file path inside it")
    place = path if inside and path.is_dir() else path.parent
    while not place.exists() and place != place.parent:
        place = place.parent
    if not place.is_dir():
        raise TaskDistillError(f"{what} {path} lies under {place}, which is a file; choose another place")
    problem = unwritable(place)
    if problem:
        raise TaskDistillError(f"{what} {path} cannot be written: {place} is not writable ({problem}); "
                               "choose a writable place")


def unwritable(folder: str | Path) -> str | None:
    """Why nothing can be created in the existing ``folder`` (found by trying), or None."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".taskdistill-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write text to ``path`` through a temporary file in the same folder and a rename."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str))


@contextlib.contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Yield a temporary folder next to ``final``; on success it is renamed to ``final``.

    On any error the temporary folder is removed, so ``final`` is either complete or absent.
    An existing ``final`` is replaced only after the new one is complete.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the usual folder mode
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
