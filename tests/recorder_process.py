"""Run the real 01-record-audio-app.py as a subprocess, read what it prints, and talk to it as a browser would."""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
from conftest import PYTHON, REPO

SCRIPT = REPO / "01-record-audio-app.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """The recorder running in the background; `expect` waits for a line of its output."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, cwd: Path = REPO,
                 wrapper: tuple[str, ...] = ()):
        """`wrapper`: a command the script runs under (strace ...); `proc` is then the wrapper's process."""
        self.started = time.monotonic()
        self.lines: list[tuple[float, str]] = []  # (seconds since start, line)
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            [*wrapper, PYTHON, "-u", str(SCRIPT), *args], cwd=cwd, env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def expect(self, pattern: str, timeout: float) -> re.Match:
        """Wait until a line matches `pattern`; fail with everything printed so far if it does not come."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(left, 0.01))
            except queue.Empty:
                line = ""
                if left <= 0:
                    raise AssertionError(f"no line matching {pattern!r} within {timeout} s; output:\n{self.output}")
            if line is None:
                raise AssertionError(f"the recorder exited ({self.proc.wait()}) before printing "
                                     f"{pattern!r}; output:\n{self.output}")
            if line:
                self.lines.append((time.monotonic() - self.started, line))
                match = re.search(pattern, line)
                if match:
                    return match

    @property
    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


START_SECONDS = 60  # only a wait for the server to come up: generous, for a machine shared with other work


def started(recorder: Recorder) -> Recorder:
    """Wait until the recorder says it is serving; one that did not come up is not left running."""
    try:
        recorder.expect(r"^Press Ctrl\+C to stop", timeout=START_SECONDS)
    except BaseException:
        recorder.stop()
        raise
    return recorder


def this_machines_address() -> str | None:
    """An address of this machine other than loopback (the VM's own IP), or None if it has none.

    Connecting a UDP socket sends nothing; it only makes the kernel pick the
    interface it would route through, whose address we then read.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: any routable address will do
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def upload(base_url: str, path: Path, client: httpx.Client | None = None) -> httpx.Response:
    """POST a file to the page's upload route, as the browser does when a file is chosen."""
    client = client or httpx.Client(verify=False)
    return client.post(f"{base_url}/gradio_api/upload", timeout=60,
                       files={"files": (path.name, path.read_bytes(), "application/octet-stream")})


def api_client(base_url: str, auth: tuple[str, str] | None = None):
    """A Gradio API client for the page, the programmatic twin of a browser tab (its own session)."""
    from gradio_client import Client

    # download_files=False: results name files on the server; the tests fetch what they need.
    return Client(base_url, auth=auth, verbose=False, download_files=False, ssl_verify=False)


def save_through_api(client, path: Path) -> tuple[str, dict | None]:
    """Upload `path` and press Save Recording; returns the status line and the download's file data."""
    from gradio_client import handle_file

    status, download = client.predict(handle_file(str(path)), api_name="/save")
    value = download.get("value") if isinstance(download, dict) else None
    return status, value
