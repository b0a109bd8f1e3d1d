"""Atomic writes, private scratch folders, one writer per folder.

Another script may read what we write (02 reads the `speech.wav` that 01 saves,
the benchmark reads the ONNX files 03 exports), and a run can be interrupted.
So we write under a temporary name in the same folder and rename at the end:
a rename within one file system is atomic, a half-written file never has the
real name.

Every temporary name carries the writer's process id, `.<name>.<pid>.<random>.tmp`,
so what a killed run left behind (SIGKILL runs no clean-up code) is recognisable:
its process is gone, and the next writer in that folder removes it.

A long job (03's export) also gets a private scratch folder (`scratch_dir`),
removed on exit, on Ctrl-C and on SIGTERM, and redirects Python's `tempfile`
into it, so libraries that drop files next to their input or in /tmp leave
nothing outside. `folder_lock` makes a second job on the same folder wait for
the first: a lock file holding the holder's PID, locked with `flock`, which the
kernel releases when the holder dies however it dies, so a lock left by a
killed run is simply taken over.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterator

LOCK_NAME = ".whisper-onnx-lab.lock"
_TEMP_NAME = re.compile(r"^\..+\.(\d+)\.[a-z0-9_]+\.tmp$")


def _read_umask() -> int | None:
    """The process's umask, read without changing it (Linux shows it in /proc since 4.7)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return None


def _umask_by_setting() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# os.umask can only be read by setting it, and the umask is the whole process's: setting it to 0
# for a moment, while another thread (the recorder's server) creates a file, would make that
# file world-writable. So read it from /proc; without /proc, read it once here, at import.
_UMASK_AT_IMPORT = _read_umask()
if _UMASK_AT_IMPORT is None:
    _UMASK_AT_IMPORT = _umask_by_setting()


def _umask() -> int:
    mask = _read_umask()
    return _UMASK_AT_IMPORT if mask is None else mask


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, read 4 MB at a time (ONNX files run to hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _temp_prefix(name: str) -> str:
    return f".{name}.{os.getpid()}."


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but someone else's
        return True
    return True


def is_stale_temp(path: Path) -> bool:
    """True for a temporary file or folder of ours whose writer no longer runs."""
    match = _TEMP_NAME.match(path.name)
    return bool(match) and not _process_alive(int(match.group(1)))


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove what killed writers left in `folder` (see the module docstring); returns what was removed."""
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for path in folder.iterdir():
            if is_stale_temp(path):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `target`; rename it onto `target` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        if is_stale_temp(stale):
            stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target.name), suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; give it the usual permissions
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to `target`; it replaces `target` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(target.name), suffix=".tmp", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if target.exists():
            # Two renames instead of delete-then-rename: `target` is missing only between them.
            old = Path(tempfile.mkdtemp(prefix=_temp_prefix(target.name), suffix=".tmp", dir=target.parent))
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into SystemExit(143) while inside, so `finally` blocks clean up as on Ctrl-C.

    Python's default for SIGTERM is to die at once, skipping every clean-up.
    Signal handlers can only be set from the main thread; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        print("terminated", file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def scratch_dir(parent: str | os.PathLike, label: str) -> Iterator[Path]:
    """A private (0700) folder inside `parent` for one run, removed on exit, Ctrl-C or SIGTERM.

    While inside, `tempfile` creates its files there too. Scratch folders of runs
    that were killed are removed first.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(parent)
    with _sigterm_raises():
        path = Path(tempfile.mkdtemp(prefix=_temp_prefix(label), suffix=".tmp", dir=parent))
        previous, tempfile.tempdir = tempfile.tempdir, str(path)
        try:
            yield path
        finally:
            tempfile.tempdir = previous
            shutil.rmtree(path, ignore_errors=True)


def _lock_holder(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode().strip())
    return None


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, on_wait: Callable[[int | None], None] | None = None) -> Iterator[None]:
    """Hold `folder`'s lock file while inside; if another process holds it, call `on_wait(pid)` and wait.

    The lock file holds the holder's PID (for the waiting message) and is removed
    on exit. A waiter may have opened the file just before the holder removed it:
    it then holds a lock on a deleted file, notices, and tries again.
    """
    import fcntl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    with _sigterm_raises():
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if on_wait:
                        on_wait(_lock_holder(fd))
                    fcntl.flock(fd, fcntl.LOCK_EX)
                with contextlib.suppress(FileNotFoundError):
                    if os.stat(path).st_ino == os.fstat(fd).st_ino:
                        break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            path.unlink(missing_ok=True)  # still locked: a waiter that opened it sees it gone and retries
            os.close(fd)
