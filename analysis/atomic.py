"""Writing files safely: the one way every output of this package is written
(workbooks, CSVs, pages, caches), and its scratch folders.

* An output goes to a temporary file beside the target (on its file system, so the
  move is a rename), which replaces the target only once it is whole; on any failure it
  is removed and the target is left as it was.
* A scratch folder is named after its process (``.<kind>-<pid>-…``): the folders of a
  process that died (killed mid-run; scratch can hold phone numbers) are removed by the
  next one.
* A full disk is one line naming the file.

Standard library only: the console command sweeps scratch before it imports anything.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class DiskFull(OSError):
    """No room left to write a file; the message names it and what is free."""


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; it replaces ``path`` when the block
    ends without an error, and is removed otherwise. Permissions are the ones a new
    file gets (the umask's), not the temporary file's owner-only ones."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise disk_full(path) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: bytes | str | Callable[[Path], object], *, encoding: str = "utf-8") -> Path:
    """Write ``data`` (bytes, text, or a function that writes a given path) to ``path``
    through :func:`atomic_path`. Returns ``path``."""
    with atomic_path(path) as tmp:
        if callable(data):
            data(tmp)
        elif isinstance(data, str):
            tmp.write_text(data, encoding=encoding)
        else:
            tmp.write_bytes(data)
    return Path(path)


def disk_full(path: str | Path) -> DiskFull:
    """The one error for a disk with no room left while writing ``path``."""
    folder = Path(path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    error = DiskFull(f"{path}: no space left on the disk ({free / 2**20:,.1f} MB free): nothing was written; free "
                     "some space and run again")
    error.errno = errno.ENOSPC
    return error


def no_room(exc: BaseException, path: str | Path) -> bool:
    """Whether ``exc``, raised while writing under ``path``, is a full disk: an
    ``ENOSPC`` error, a library's message saying so (delta-rs and pyarrow put the
    errno in their text), or a disk left with less than a mebibyte free."""
    if isinstance(exc, DiskFull) or getattr(exc, "errno", None) == errno.ENOSPC:
        return True
    text = str(exc).lower()
    if "no space left" in text or "errno 28" in text:
        return True
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free < 1 << 20


def new_scratch(root: str | Path, kind: str) -> Path:
    """A new scratch folder ``<root>/.<kind>-<pid>-…`` for this process, after removing
    those of processes that died (killed mid-run: scratch can hold phone numbers)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    sweep_scratch(root, kind)
    folder = root / f".{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    return folder


def sweep_scratch(root: str | Path, kind: str) -> None:
    """Remove the scratch folders ``<root>/.<kind>-<pid>-…`` whose process is gone."""
    for old in Path(root).glob(f".{kind}-*"):
        pid = old.name[len(kind) + 2:].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
