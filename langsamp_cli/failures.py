"""The last line of defence: failures of the machine or of a file, as one line naming the path and a fix.

Checks made before work starts (writable output folder, memory estimate, YAML size) come first and raise
:class:`~langsamp_cli.errors.LangsampError` themselves; :func:`describe_failure` turns what still escapes
(an ``OSError`` with its errno and path, a file that is not UTF-8, memory exhausted, a damaged weights
file) into the line the CLI prints. Anything it does not recognise is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import pickle
import shutil
from pathlib import Path

# errno -> what it means for the user and what to do about it
_OS_FIXES = {
    errno.ENOSPC: ("no space left on the device", "free some space or pick a folder on another disk"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or pick a folder on another disk"),
    errno.EACCES: ("permission denied", "pick a folder you can write to, or fix its permissions"),
    errno.EPERM: ("operation not permitted (immutable or protected)", "pick another folder"),
    errno.EROFS: ("read-only file system", "pick a folder on a writable file system"),
    errno.ENAMETOOLONG: ("file name too long", "use a shorter path or fewer --languages in one run"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "pick another path"),
    errno.EISDIR: ("is a folder, not a file", "pass the file inside it"),
    errno.ELOOP: ("too many levels of symbolic links (a link loop)", "fix or remove the link"),
    errno.ENOENT: ("no such file or folder", "check the path"),
    errno.EIO: ("input/output error from the device", "check the disk or the network file system"),
    errno.EMFILE: ("too many open files", "raise the limit (ulimit -n) or use fewer worker processes"),
}
_TORCH_WRITE_FAILURES = ("PytorchStreamWriter failed", "unexpected pos", "file write failed")


def describe_failure(err: BaseException) -> str | None:
    """One line for a failure a user can act on (no traceback needed), or None for a bug."""
    if isinstance(err, UnicodeDecodeError):
        return (f"a file is not UTF-8 text (byte {err.start}: {err.object[err.start:err.start + 4]!r}); "
                "convert it to UTF-8 (e.g. iconv -t UTF-8)")
    if isinstance(err, MemoryError):
        return ("out of memory; use a smaller model, --batch-size or --max-seq-len, fewer languages, "
                "or a machine with more memory")
    if isinstance(err, OSError) and err.errno is not None:
        return describe_os_error(err)
    if type(err).__name__ == "SafetensorError":
        return (f"a .safetensors weights file is damaged ({_first_line(err)}); "
                "copy the checkpoint again or re-save it")
    if isinstance(err, pickle.UnpicklingError):
        return (f"a .bin weights file holds objects other than tensors and plain values ({_first_line(err)[:120]}); "
                "refused, loading it could run code; convert the checkpoint to .safetensors")
    if type(err).__name__ == "OutOfMemoryError" or (isinstance(err, RuntimeError) and any(
            text in str(err) for text in ("DefaultCPUAllocator", "can't allocate memory", "not enough memory"))):
        return ("out of memory while allocating tensors; lower --batch-size or --max-seq-len (use --grad-accum), "
                "or use a smaller model")
    if isinstance(err, RuntimeError) and any(text in str(err) for text in _TORCH_WRITE_FAILURES):
        return ("writing a checkpoint file failed (is the disk full?); free some space and rerun with --resume: "
                "the previous checkpoint is intact")
    return None


def describe_os_error(err: OSError) -> str:
    """``PATH: what happened (errno NAME); what to do``, with the free space on a full disk."""
    what, fix = _OS_FIXES.get(err.errno, (err.strerror or "operating-system error", "check the path"))
    where = err.filename if err.filename is not None else err.filename2
    where_text = f"{_shorten(os.fsdecode(where))}: " if where is not None else ""
    code = errno.errorcode.get(err.errno, str(err.errno))
    extra = ""
    if err.errno in (errno.ENOSPC, errno.EDQUOT) and where is not None:
        free = free_bytes(Path(os.fsdecode(where)))
        extra = f" ({size_text(free)} free there)" if free is not None else ""
    return f"{where_text}{what} ({code}){extra}; {fix}"


def free_bytes(path: Path) -> int | None:
    """Free space on the file system of ``path`` (its nearest existing ancestor), None when unknown."""
    for candidate in (path, *path.absolute().parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def _shorten(path: str, limit: int = 200) -> str:
    """A path as it can be read in one line: very long ones keep their start and end."""
    return path if len(path) <= limit else f"{path[:limit // 2]}...{path[-limit // 2:]} ({len(path):,} characters)"


def size_text(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:,.0f} {unit}"
        n /= 1024
    return f"{n:,.1f} TB"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
