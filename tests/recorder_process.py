"""Run the real 01-record-audio-app.py as a subprocess and read what it prints, line by line."""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

from conftest import PYTHON, REPO

SCRIPT = REPO / "01-record-audio-app.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """The recorder running in the background; `expect` waits for a line of its output."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, cwd: Path = REPO):
        self.started = time.monotonic()
        self.lines: list[tuple[float, str]] = []  # (seconds since start, line)
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            [PYTHON, "-u", str(SCRIPT), *args], cwd=cwd, env={**os.environ, **(env or {})},
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
