"""A full, read-only or forbidden disk as one line a user can act on, and partial files that
never outlive a failed write.

Writers of big files (starter assembly, hub downloads, quantizations) write beside their
target and rename at the end; `removed_on_failure` deletes that partial file on any failure
(a full disk stays full otherwise), and `disk_errors` turns the OSError into a DiskError that
names the path, the free space there and what to change.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import LeerooError
from .units import format_size

FULL = {errno.ENOSPC, errno.EDQUOT}
READ_ONLY = {errno.EROFS}
FORBIDDEN = {errno.EACCES, errno.EPERM}
DISK_ERRNOS = FULL | READ_ONLY | FORBIDDEN


class DiskError(LeerooError):
    """The disk refused a write: full, over quota, read-only, or not ours to write."""

    exit_code = 2

    def __init__(self, message: str, path: Path | None = None, errno_: int | None = None):
        super().__init__(message)
        self.path, self.errno = path, errno_


def is_disk_error(exc: BaseException) -> bool:
    """An OSError that says the disk (not the network, not a missing file) refused us."""
    return isinstance(exc, OSError) and exc.errno in DISK_ERRNOS


def disk_error(exc: OSError, path: str | os.PathLike | None = None,
               setting: str | None = None) -> DiskError | None:
    """The DiskError for `exc` (writing `path`, or the file the OSError names), else None.
    `setting`: the variable that moves these files elsewhere (LEEROO_HOME under our home).

    A full or read-only disk without a path (a write to an open file names none) is said of
    our home; a permission error without one is not a disk's (binding a low port, a signal)."""
    if not is_disk_error(exc):
        return None
    named = exc.filename or path
    if not named:
        if exc.errno in FORBIDDEN:
            return None
        return _unnamed(exc.errno, setting)
    target = Path(named)
    where = _existing_folder(target)
    setting = setting or _setting(target)
    if exc.errno in FULL:
        what = "no space left" if exc.errno == errno.ENOSPC else "disk quota exceeded"
        msg = (f"{what} on {where} writing {target.name} ({_free(where)} free): free space there"
               f"{f' or set {setting} to a folder on another disk' if setting else ''}")
    elif exc.errno in READ_ONLY:
        msg = (f"{where} is read-only (writing {target.name}): "
               f"{f'set {setting} to a writable folder' if setting else 'write somewhere else'}")
    else:  # a read as much as a write
        msg = (f"permission denied on {target}: give this user access to it"
               f"{f' or set {setting} to a folder it owns' if setting else ''}")
    return DiskError(msg, target, exc.errno)


def _unnamed(code: int, setting: str | None) -> DiskError:
    """A full or read-only disk the OSError names no path of: said of `setting`'s folder, or of
    our home."""
    from . import paths

    home = paths.home()
    where = "" if setting else f" (LEEROO_HOME is {home}, {_free(_existing_folder(home))} free)"
    setting = setting or "LEEROO_HOME"
    if code in READ_ONLY:
        return DiskError(f"a disk this command writes to is read-only{where}: set {setting} to "
                         "a writable folder", None, code)
    return DiskError(f"a disk this command writes to is full{where}: free space there or set "
                     f"{setting} to a folder on another disk", None, code)


def database_disk_error(exc: BaseException, db: Path) -> DiskError | None:
    """The DiskError behind an SQLite error ("database or disk is full", "attempt to write a
    readonly database", "unable to open database file"): SQLite names no errno, so the disk
    of `db` is asked. None when the disk is fine (the error is something else)."""
    import sqlite3

    if not isinstance(exc, sqlite3.OperationalError):
        return None
    folder = _existing_folder(db)
    cause = unwritable(folder, need=1 << 20 if "full" in str(exc) else 0)
    if cause is None and "full" in str(exc):
        cause = errno.ENOSPC  # a quota, or space that came back since
    if cause is None:
        return None
    return disk_error(OSError(cause, os.strerror(cause), str(db)))


@contextmanager
def disk_errors(path: str | os.PathLike | None = None, setting: str | None = None
                ) -> Iterator[None]:
    """Raise a DiskError in place of a disk's OSError inside the block; others pass unchanged."""
    try:
        yield
    except OSError as exc:
        err = disk_error(exc, path, setting)
        if err is None:
            raise
        raise err from exc


@contextmanager
def removed_on_failure(*partials: str | os.PathLike) -> Iterator[None]:
    """Delete these partial files if the block fails in any way (Ctrl-C included), then re-raise."""
    try:
        yield
    except BaseException:
        for p in partials:
            try:
                Path(p).unlink(missing_ok=True)
            except OSError:
                pass  # a read-only folder: nothing was written there either
        raise


def unwritable(folder: Path, need: int = 0) -> int | None:
    """Why a write into `folder` fails, as an errno (read-only, not ours, or fewer than `need`
    bytes free), or None: for writers that cannot tell (a child process's bare "write error")."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    if st.f_flag & os.ST_RDONLY:
        return errno.EROFS
    if not os.access(folder, os.W_OK):
        return errno.EACCES
    if st.f_bavail * st.f_frsize < need:
        return errno.ENOSPC
    return None


def _existing_folder(path: Path) -> Path:
    """The nearest folder of `path` that exists (where its filesystem can be asked)."""
    probe = (path if path.is_dir() else path.parent).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def _free(folder: Path) -> str:
    try:
        return format_size(shutil.disk_usage(folder).free, binary=False)
    except OSError:
        return "unknown"


def _setting(path: Path) -> str:
    """LEEROO_HOME for a file under our home (it moves them all), else "" (unknown here)."""
    from . import paths

    return "LEEROO_HOME" if path.absolute().is_relative_to(paths.home().absolute()) else ""
