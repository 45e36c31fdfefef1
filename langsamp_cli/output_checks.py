"""Pre-flight check of an output folder: can it be made and written, before any work starts?

A folder that cannot be written (an existing file, a path under a file, ``/dev/null``, ``/proc``, a symlink
loop, read-only or immutable, a name longer than the file system allows) is a one-line error naming it,
instead of an ``OSError`` traceback after a model has loaded or a run has trained.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from langsamp_cli.errors import LangsampError

NAME_MAX = 255    # bytes in one path component (ext4, xfs, btrfs, tmpfs, NFS)
PATH_MAX = 4096   # bytes in a whole path (Linux)


def check_output_dir(path: str | Path, flag: str = "--output-dir") -> Path:
    """``path`` as given when it is (or can become) a folder this process can write in; else a LangsampError.

    Creates nothing: the probe folder made in the nearest existing ancestor is removed at once.
    """
    path = Path(path).expanduser()
    _check_lengths(path, flag)
    existing = _nearest_existing(path, flag)
    if not existing.is_dir():
        if existing == path:
            raise LangsampError(f"{flag} {path}: is a file, not a folder; pick another {flag}")
        raise LangsampError(f"{flag} {path}: {existing} is a file, so no folder can be made under it; "
                            f"pick another {flag}")
    _probe_write(existing, path, flag)
    return path


def _check_lengths(path: Path, flag: str) -> None:
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > NAME_MAX:
            raise LangsampError(f"{flag}: the path component {part[:40]!r}... is {size} bytes, longer than the "
                                f"{NAME_MAX} a file name may have; use a shorter name")
    total = len(os.fsencode(str(path.absolute())))
    if total > PATH_MAX - 256:  # room for the files langsamp puts inside
        raise LangsampError(f"{flag}: the path is {total} bytes long; the file system allows {PATH_MAX} "
                            "including the files inside, use a shorter path")


def _nearest_existing(path: Path, flag: str) -> Path:
    """``path`` or its nearest ancestor that exists (followed through symlinks)."""
    for candidate in (path, *path.absolute().parents):
        try:
            os.stat(candidate)
            return candidate
        except FileNotFoundError:
            if os.path.islink(candidate):
                raise LangsampError(f"{flag} {path}: {candidate} is a symbolic link to a missing target; "
                                    "fix the link or pick another folder") from None
            continue
        except NotADirectoryError:
            continue  # a file further up: reported by the caller when reached
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise LangsampError(f"{flag} {path}: {candidate} is a symbolic link loop; fix or remove the link, "
                                    "or pick another folder") from None
            raise LangsampError(f"{flag} {path}: cannot look at {candidate} ({err.strerror})") from None
    return Path("/")


def _probe_write(existing: Path, path: Path, flag: str) -> None:
    try:
        probe = tempfile.mkdtemp(prefix=".langsamp-write-test-", dir=existing)
    except OSError as err:
        from langsamp_cli.failures import describe_os_error

        reason = describe_os_error(err).split("; ")[0].removeprefix(f"{err.filename}: ")
        raise LangsampError(f"{flag} {path}: cannot write in {existing} ({reason}); pick a folder you can "
                            "write to") from None
    os.rmdir(probe)
