"""The recorder's private temporary folder: besides --output, the only place a recording is kept.

Gradio keeps every upload, and every file it serves (the download button's copy
of speech.wav, the spectrogram), in its temporary folder: by default /tmp/gradio,
shared by every user of the machine, readable by all of them, and left behind
when the server stops. So the recorder gives Gradio, and every other temporary
file of its process, a folder of its own:

* made by mkdtemp, so only the student can open it (mode 0700);
* named after the process (whisper-lab-recorder-<pid>-...), so that the next
  start can remove the folder of a recorder that was killed (SIGKILL, an
  out-of-memory kill, a VM reset) and never got to clean up;
* removed when the recorder stops: Ctrl+C, SIGTERM, SIGHUP (the terminal or
  the SSH connection closed), or an error.

It must be made before Gradio is imported: Gradio reads GRADIO_TEMP_DIR once, at import.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import tempfile
from pathlib import Path

from ..errors import LabError

PREFIX = "whisper-lab-recorder-"
_NAME = re.compile(rf"^{re.escape(PREFIX)}(\d+)-")


class Stop(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled exactly like Ctrl+C: stop serving, clean up, exit."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def remove_abandoned(parent: Path) -> list[Path]:
    """Remove our folders whose recorder process is gone; returns what was removed."""
    removed = []
    for folder in parent.glob(f"{PREFIX}*"):
        match = _NAME.match(folder.name)
        try:
            ours = folder.is_dir() and not folder.is_symlink() and folder.stat().st_uid == os.getuid()
        except OSError:
            continue
        if match and ours and not _alive(int(match.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _temp_parent() -> Path:
    """The system's temporary folder, found as tempfile does but without its test file.

    tempfile.gettempdir() proves a folder writable by creating and deleting a file
    in it: a write outside the private folder, however brief, that we can avoid.
    """
    candidates = [os.environ.get(name) for name in ("TMPDIR", "TEMP", "TMP")] + ["/tmp", "/var/tmp"]
    for candidate in filter(None, candidates):
        if os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return Path(candidate).resolve()
    raise LabError("no writable temporary folder (tried $TMPDIR, /tmp, /var/tmp); "
                   "set TMPDIR to a folder you can write to")


def make_private_temp() -> Path:
    """Make this recorder's folder, point Gradio and Python's tempfile at it, and remove it at exit."""
    parent = _temp_parent()
    remove_abandoned(parent)
    folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent))
    os.environ["GRADIO_TEMP_DIR"] = str(folder / "gradio")
    # Temporary files Gradio (or a library under it) makes without naming a folder land here too.
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = str(folder)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def stop_on_signals() -> None:
    """Turn SIGTERM and SIGHUP into `Stop`, so the folder is removed as after Ctrl+C.

    Python's default for both is to end at once, without running atexit handlers.
    """
    def stop(signum, _frame):
        raise Stop(signal.Signals(signum).name)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
