"""Output files of the commands: never replace what exists unless told, never share a writer.

Every command that writes an output calls :func:`claim` for its output paths: an existing path is
refused unless ``--overwrite`` was given, and an advisory lock (a hidden ``.<name>.lock`` file
next to the output, removed again at the end) refuses an output that another process is writing
right now.  The lock is a POSIX record lock (``fcntl.lockf``): the kernel releases it when the
holding process dies, however it dies, and processes forked by the holder do not inherit it, so
a killed run never leaves its output locked.  Within one process the same path cannot be claimed
twice either (a process-wide registry), since POSIX locks do not conflict inside one process.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

from ionwire.structures.errors import UserError

_HELD: dict[str, "FileLock"] = {}


class OutputInUseError(UserError):
    """Another process (or another part of this one) is writing the same output right now."""


class FileLock:
    """An exclusive, non-blocking advisory lock on ``path`` (created if missing).

    ``what`` names the protected thing in the error message; ``remove`` deletes the lock file on
    release (the hidden per-output locks do, the campaign folder's ``.lock`` stays)."""

    def __init__(self, path: str | os.PathLike, what: str, *, remove: bool = True):
        self.path = Path(path)
        self.what = what
        self.remove = remove
        self.fd: int | None = None

    def _key(self) -> str:
        return os.path.realpath(self.path)

    def acquire(self) -> "FileLock":
        key = self._key()
        if key in _HELD:
            raise OutputInUseError(f"{self.what} is in use by another writer in this process")
        for _ in range(20):  # retried only if the lock file was replaced while we locked it
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:  # a read-only or missing folder, a full disk, ...
                raise UserError(f"cannot write {self.what}: {exc.strerror or exc} "
                                f"(creating {self.path.name} in {self.path.parent})") from None
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = ""
                with contextlib.suppress(OSError, ValueError):
                    text = os.pread(fd, 64, 0).decode().strip()
                    holder = f" (process {int(text)})" if text else ""
                os.close(fd)
                if exc.errno in (errno.EACCES, errno.EAGAIN):
                    raise OutputInUseError(f"{self.what} is in use by another running process{holder}") from None
                raise
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the previous holder removed the file between our open and lock
                os.close(fd)
                continue
            with contextlib.suppress(OSError):  # the holder's pid is for messages only (a full disk may refuse it)
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self.fd = fd
            _HELD[key] = self
            return self
        raise OutputInUseError(f"{self.what}: its lock file {self.path} keeps changing")

    def release(self) -> None:
        if self.fd is None:
            return
        _HELD.pop(self._key(), None)
        if self.remove:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> "FileLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def lock_path(path: str | os.PathLike) -> Path:
    """The hidden lock file of output ``path``: ``.<name>.lock`` in the same folder."""
    p = Path(path)
    return p.with_name(f".{p.name}.lock")


def refuse_existing(paths, overwrite: bool, flag: str = "--overwrite") -> None:
    """UserError naming the first existing path of ``paths`` unless ``overwrite``."""
    if overwrite:
        return
    for p in paths:
        if p is not None and os.path.lexists(p):
            raise UserError(f"{p} exists: pass {flag} to replace it (nothing was changed)")


@contextlib.contextmanager
def claim(*paths, overwrite: bool = False, check_existing: bool = True, folder_ok: bool = False):
    """Lock the output ``paths[0]`` (the others are written with it) and refuse existing ones.

    The output's folder must exist (one clear error otherwise); a path that is a directory is
    refused unless ``folder_ok`` (an output folder, e.g. a report directory)."""
    paths = [Path(p) for p in paths if p is not None]
    main = paths[0]
    parent = main.parent if str(main.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"output folder {str(parent)!r} does not exist")
    for p in paths:
        if p.is_dir() and not folder_ok:
            raise UserError(f"{p} is a folder, not an output file")
    with FileLock(lock_path(main), f"output {main}"):
        if check_existing:
            refuse_existing(paths, overwrite)
        yield


@contextlib.contextmanager
def sigterm_as_interrupt():
    """SIGTERM (``kill``, a batch system's time limit) stops the command like Ctrl-C, so the
    command's KeyboardInterrupt handling (a checkpoint, a resumable folder) runs."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def stop_at_once_on_interrupt():
    """Ctrl-C and SIGTERM end the process at once (the default action) for commands that write
    no file: their compiled loops do not return to Python for minutes, so a Python handler would
    only run at their end.  Nothing is lost; the previous handlers are restored afterwards."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, signal.SIG_DFL) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# a write the disk refused: a full disk or quota, an I/O error, a file too large, a read-only mount
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS)


def write_error(exc: BaseException, out) -> UserError | None:
    """The one-line UserError for an OSError the disk raised while ``out`` was written (through
    a temporary name, so nothing was written under the output's name); None for other errors."""
    if not isinstance(exc, OSError) or exc.errno not in DISK_ERRNOS:
        return None
    return UserError(f"cannot write {out}: {exc.strerror or exc}; nothing was written under that name")
