"""One pretraining process per run folder: an advisory lock on ``{run}/.langsamp.lock``.

``fcntl.flock`` on a file in the run folder, taken before the folder is changed and held until the run
ends; the operating system drops it when the process dies (a crash or a kill never leaves a stale lock).
The file holds the pid of the holder, so a second ``pretrain`` (or ``--resume``) refuses in one line that
names the folder and the process. Locks are per open file: a second run in the same process (an
experiment, a notebook) waits for :func:`release` of the first, which ``pretrain()`` calls when it returns.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from langsamp_cli.errors import LangsampError

LOCK_FILE = ".langsamp.lock"
_HELD: dict[Path, int] = {}   # resolved run folder -> the open descriptor holding its lock


def _key(out: Path) -> Path:
    return Path(os.path.realpath(out))


def _holder_pid(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 32).decode("ascii", "replace").strip()
    return text if text.isdigit() else "unknown"


def _in_use(out: Path, pid: str) -> LangsampError:
    return LangsampError(f"{out}: in use by another langsamp pretrain (pid {pid}); wait for it to finish "
                         "(or stop it), or pick another --output-dir")


def check_free(out: Path) -> None:
    """Refuse at once when another process holds the folder's lock (only looks; creates nothing)."""
    if _key(out) in _HELD:
        return
    try:
        fd = os.open(out / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return  # no lock file (yet): nobody has locked this folder
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _in_use(out, _holder_pid(fd)) from None
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def acquire(out: Path) -> None:
    """Take the folder's lock for this process (the folder exists); a LangsampError when another holds it."""
    key = _key(out)
    if key in _HELD:
        return
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _holder_pid(fd)
        os.close(fd)
        raise _in_use(out, pid) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode("ascii"))
    _HELD[key] = fd


def release(out: Path) -> None:
    """Give the folder's lock back (a no-op when this process does not hold it)."""
    fd = _HELD.pop(_key(out), None)
    if fd is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
