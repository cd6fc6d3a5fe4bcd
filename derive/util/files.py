"""Files derive writes (JSON, LaTeX, PDF) appear whole or not at all, and never replace an input.

The content goes to an unnamed file in the destination's folder (Linux ``O_TMPFILE``:
nothing to see or to leave behind, even after ``SIGKILL``), is flushed to disk and
linked in as the destination; where unnamed files are not supported, a hidden temporary
file renamed over the destination (``os.replace`` is atomic on POSIX and Windows) and
removed on any failure, ``SIGTERM`` included (the CLI turns it into ``SystemExit``).
A new file gets the user's umask; a replaced one keeps its mode.  Errors name the
destination, never a temporary file.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Sequence
from pathlib import Path


class WriteError(OSError):
    """A file that cannot be written; the message names the destination and the reason."""


def umask() -> int:
    """The process's umask (read from /proc where it can be, without changing it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def _mode(target: Path) -> int:
    try:
        return stat.S_IMODE(target.stat().st_mode)  # a replaced file keeps its mode
    except OSError:
        return 0o666 & ~umask()


def _folder(target: Path) -> Path:
    return target.parent if str(target.parent) else Path(".")


def problem(path: str | Path, inputs: Sequence[str | Path] = ()) -> str | None:
    """Why ``path`` cannot be written as an output, or None: a missing or read-only folder,
    a folder in its place, or one of the ``inputs`` (checked before a run, not after it)."""
    target = Path(path)
    folder = _folder(target)
    if not folder.is_dir():
        return f"the folder {folder} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} is not writable"
    if target.is_dir():
        return "is a folder"
    for source in inputs:
        if _same(target, Path(source)):
            return f"is the input {source}: derive never overwrites an input"
    return None


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all; :class:`WriteError` names ``path``."""
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    folder = _folder(target)
    mode = _mode(target)
    try:
        if not _write_unnamed(target, folder, payload, mode):
            _write_named(target, folder, payload, mode)
    except OSError as exc:
        if isinstance(exc, WriteError):
            raise
        reason = exc.strerror or str(exc)
        if exc.errno == errno.ENOENT and not folder.is_dir():
            reason = f"the folder {folder} does not exist"
        raise WriteError(exc.errno or 0, f"cannot write {target}: {reason}") from None


def _write_unnamed(target: Path, folder: Path, payload: bytes, mode: int) -> bool:
    """Linux: an ``O_TMPFILE`` file linked in when complete; False where unsupported."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.isdir("/proc/self/fd"):
        return False
    try:
        fd = os.open(folder, flag | os.O_WRONLY, mode)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT) and folder.is_dir():
            return False  # a file system without unnamed files
        raise
    try:
        os.fchmod(fd, mode)
        _write_all(fd, payload)
        proc = f"/proc/self/fd/{fd}"
        try:
            os.link(proc, target, follow_symlinks=True)  # a new file: appears whole, at once
            return True
        except FileExistsError:
            hidden = _hidden(target, folder)
            os.link(proc, hidden, follow_symlinks=True)  # visible only until the rename below
        try:
            os.replace(hidden, target)
        except BaseException:
            hidden.unlink(missing_ok=True)
            raise
        return True
    except OSError as exc:  # a file system (overlay, gVisor, ...) that cannot link an unnamed file in
        if exc.errno in (errno.EXDEV, errno.EPERM, errno.ENOENT, errno.EOPNOTSUPP, errno.EACCES):
            return False
        raise
    finally:
        os.close(fd)


def _hidden(target: Path, folder: Path) -> Path:
    """A temporary name beside ``target`` that carries this process's id."""
    return folder / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def _remove_stale(target: Path, folder: Path) -> None:
    """Remove the temporary files of earlier writes to ``target`` whose process is gone
    (killed with SIGKILL between writing and renaming): derive's own names only."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith(f".{target.name}.") and n.endswith(".tmp")]
    except OSError:
        return
    for name in names:
        parts = name[len(target.name) + 2: -len(".tmp")].split(".")
        if len(parts) != 2 or not parts[0].isdigit() or len(parts[1]) != 8:
            continue
        pid = int(parts[0])
        if pid == os.getpid() or _alive(pid):
            continue
        try:
            (folder / name).unlink()
        except OSError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _write_named(target: Path, folder: Path, payload: bytes, mode: int) -> None:
    _remove_stale(target, folder)
    hidden = _hidden(target, folder)
    fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.fchmod(fd, mode)
            _write_all(fd, payload)
        finally:
            os.close(fd)
        os.replace(hidden, target)
    except BaseException:  # SIGTERM (SystemExit) and Ctrl-C included: no temporary file stays
        hidden.unlink(missing_ok=True)
        raise


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.fsync(fd)
