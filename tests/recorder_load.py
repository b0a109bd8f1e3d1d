"""Load test of the recorder on 127.0.0.1: many clients uploading and saving at once, hostile files included.

    python tests/recorder_load.py                          # 20 clients for 60 s, prints the figures
    python tests/recorder_load.py --clients 5 --seconds 15

The real 01-record-audio-app.py runs under strace, which logs every system call
of the server that can create or change a file (open for writing, mkdir,
rename, link, ...), so "nothing is written outside --output and the private
folder" is checked on what the kernel was asked to do, not on what we expect.
Meanwhile:

* each client is a Gradio API client (its own session, like a browser tab) that
  repeats a shuffled round of uploads and saves: good recordings at browser
  rates (each save followed by its figure, as on the page), a 2-hour FLAC (a few MB), the same with its length hidden, text named
  .wav, random bytes named .mp3, a FLAC cut off half-way, 64 channels; plus raw
  HTTP: a file over the upload limit, and a broken multipart request;
* a probe fetches the page (GET /) twice a second, before the load (idle) and
  during it: the page's latency, side by side;
* the server's memory is read from /proc: its peak (VmHWM, the kernel's
  high-water mark over the whole run) against the bound the recorder promises.

Every answer is checked: a save of a good file says "Saved", each hostile file
gets its own refusal, the oversized upload HTTP 413, the broken request HTTP 400.
Needs strace (Debian package `strace`, installed by .ci/install-browser.sh).
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

TESTS = Path(__file__).resolve().parent
for folder in (TESTS, TESTS.parent):  # run as a script: the test helpers and the lab's package
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from recorder_hostile_audio import (  # noqa: E402
    hide_flac_length,
    jfk_file,
    long_flac,
    many_channels_wav,
    truncated,
)
from recorder_process import Recorder, api_client, free_port  # noqa: E402

from whisper_lab.recorder.app import MAX_UPLOAD  # noqa: E402
from whisper_lab.recorder.recording import MAX_SECONDS  # noqa: E402

# The server's peak must stay under this, whatever is uploaded: what it holds with
# nothing to do (Gradio, numpy, matplotlib: 165 MB here), one save at a time
# (SAVE_MEMORY_MB), one figure being drawn, and the sessions and uploads of 20
# clients, with room to spare (measured: under 300 MB).
SERVER_MEMORY_BOUND_MB = 400
ANSWER_TIMEOUT = 300  # seconds: far beyond any queue wait; a request past it counts as unanswered
PROBE_EVERY = 0.5
FILE_SYSCALLS = ("open,openat,openat2,creat,mkdir,mkdirat,rename,renameat,renameat2,"
                 "link,linkat,symlink,symlinkat,truncate")


@dataclass(frozen=True)
class Action:
    name: str
    file: Path | None
    expect: str  # a regex the status line must match, or "HTTP <code>"


@dataclass
class Answer:
    action: str
    seconds: float
    ok: bool
    detail: str


@dataclass
class LoadReport:
    clients: int
    seconds: float
    answers: list[Answer] = field(default_factory=list)
    idle_page_ms: list[float] = field(default_factory=list)
    loaded_page_ms: list[float] = field(default_factory=list)
    baseline_rss_mb: float = 0.0
    peak_rss_mb: float = 0.0  # VmHWM: the server's high-water mark over its whole life
    writes: list[str] = field(default_factory=list)  # every file the server created or wrote
    outside: list[str] = field(default_factory=list)  # those outside --output and the private folder
    left_in_temp: list[str] = field(default_factory=list)
    left_in_output: list[str] = field(default_factory=list)
    output_file_ok: bool = False

    @property
    def failures(self) -> list[Answer]:
        return [answer for answer in self.answers if not answer.ok]

    def summary(self) -> str:
        def ms(values: list[float]) -> str:
            if not values:
                return "no samples"
            ordered = sorted(values)
            p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
            return f"median {statistics.median(ordered):.0f} ms, p95 {p95:.0f} ms, max {ordered[-1]:.0f} ms"

        per_action: dict[str, list[Answer]] = {}
        for answer in self.answers:
            per_action.setdefault(answer.action, []).append(answer)
        lines = [f"{self.clients} clients for {self.seconds:.0f} s against 127.0.0.1: "
                 f"{len(self.answers)} requests, {len(self.answers) - len(self.failures)} answered as expected"]
        for action, answers in sorted(per_action.items()):
            times = sorted(answer.seconds for answer in answers)
            lines.append(f"  {action:<22} {len(answers):>4}   answer in median {statistics.median(times):.1f} s, "
                         f"max {times[-1]:.1f} s")
        idle, loaded = self.idle_page_ms, self.loaded_page_ms
        ratio = (statistics.median(loaded) / statistics.median(idle)) if idle and loaded else float("nan")
        lines += [
            f"page (GET /) idle:    {ms(idle)}",
            f"page (GET /) loaded:  {ms(loaded)}   (median {ratio:.1f}x idle)",
            f"server memory: {self.baseline_rss_mb:.0f} MB after start, peak {self.peak_rss_mb:.0f} MB "
            f"(bound {SERVER_MEMORY_BOUND_MB} MB)",
            f"files the server wrote: {len(self.writes)}, outside --output and its private folder: "
            f"{len(self.outside)}",
            f"after stop: temporary folder {'empty' if not self.left_in_temp else self.left_in_temp}, "
            f"output folder {'speech.wav only' if not self.left_in_output else self.left_in_output}",
        ]
        lines += [f"  outside: {path}" for path in self.outside[:20]]
        lines += [f"  FAILED {answer.action}: {answer.detail}" for answer in self.failures[:20]]
        return "\n".join(lines)


def make_files(folder: Path) -> list[Action]:
    """The uploads of one round: what a student sends, and what a careless or hostile one does."""
    folder.mkdir(parents=True, exist_ok=True)
    two_hours = long_flac(folder / "two-hours.flac", minutes=120)  # the size of a photo, 2.7 GB decoded
    text = folder / "notes.wav"
    text.write_text("lecture notes, not audio\n" * 100)
    junk = folder / "junk.mp3"
    junk.write_bytes(random.Random(0).randbytes(300_000))
    oversized = folder / "oversized.wav"
    with oversized.open("wb") as out:  # one MB past the upload limit, without holding it in memory
        out.truncate(_size_in_bytes(MAX_UPLOAD) + (1 << 20))
    jfk48 = jfk_file(folder / "jfk-48k-stereo.wav", rate=48_000, channels=2, subtype="FLOAT")
    refused = r"^\*\*Not saved:\*\* "
    return [
        Action("save 48 kHz stereo wav", jfk48, r"^Saved speech\.wav: 11\.0 s"),
        Action("save 44.1 kHz flac", jfk_file(folder / "jfk-44k.flac", rate=44_100, channels=1),
               r"^Saved speech\.wav: 11\.0 s"),
        Action("save 2 h flac", two_hours, refused + r"the recording is 7200 s long, over the limit of 300 s"),
        Action("save hidden-length", hide_flac_length(two_hours, folder / "hidden-length.flac"),
               refused + rf"the recording is over the limit of {MAX_SECONDS} s"),
        Action("save text as .wav", text, refused + r"notes\.wav: cannot read it as audio"),
        Action("save junk as .mp3", junk, refused + r"junk\.mp3: cannot read it as audio"),
        Action("save cut-off flac", truncated(jfk_file(folder / "whole.flac", 48_000, 2), folder / "cut-off.flac"),
               refused + r"cut\\?-off\.flac: the audio is damaged after"),
        Action("save 64 channels", many_channels_wav(folder / "many-channels.wav"),
               refused + "the recording has 64 channels"),
        Action("upload over the limit", oversized, "HTTP 413"),
        Action("broken multipart", None, "HTTP 400"),
    ]


def _size_in_bytes(size: str) -> int:
    number, unit = re.fullmatch(r"(\d+)\s*([kmg]?b)", size.lower()).groups()
    return int(number) * {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}[unit]


def _do(action: Action, client, http: httpx.Client, base_url: str) -> Answer:
    from gradio_client import handle_file

    start = time.monotonic()
    try:
        if action.name == "broken multipart":
            response = http.post(f"{base_url}/gradio_api/upload", content=b"--nope\r\n\r\nnot a form",
                                 headers={"content-type": "multipart/form-data; boundary=missing"})
            got = f"HTTP {response.status_code}"
        elif action.expect.startswith("HTTP"):
            with action.file.open("rb") as body:  # streamed from disk, as a browser does
                response = http.post(f"{base_url}/gradio_api/upload",
                                     files={"files": (action.file.name, body, "audio/wav")})
            got = f"HTTP {response.status_code}"
        else:
            got = client.submit(handle_file(str(action.file)), api_name="/save").result(timeout=ANSWER_TIMEOUT)[0]
            if got.startswith("Saved"):  # the page then asks for the figure of what was saved
                figure = client.submit(api_name="/spectrogram").result(timeout=ANSWER_TIMEOUT)
                if not (isinstance(figure, dict) and http.get(figure["url"]).status_code == 200):
                    got = f"no figure after saving: {figure!r}"
        ok = got == action.expect if action.expect.startswith("HTTP") else bool(re.search(action.expect, got))
        return Answer(action.name, time.monotonic() - start, ok, got[:300])
    except Exception as exc:  # noqa: BLE001 - an unanswered request is a finding, not a crash of the test
        return Answer(action.name, time.monotonic() - start, False, f"{type(exc).__name__}: {exc}"[:300])


def _status_kb(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise KeyError(field_name)


def _traced_child(strace_pid: int, timeout: float = 30) -> int:
    """The PID of the Python process strace started (its only child)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = Path(f"/proc/{strace_pid}/task/{strace_pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise RuntimeError("strace started no process")


_ANNOTATED = re.compile(r'(?:(AT_FDCWD|\d+)<([^>]*)>, )?"((?:[^"\\]|\\.)*)"')


def files_written(trace_dir: Path, cwd: Path) -> list[str]:
    """Absolute paths of every file or folder the traced processes created, opened for writing or renamed."""
    written = set()
    for log in trace_dir.glob("trace.*"):
        for line in log.read_text(errors="replace").splitlines():
            call = line.split("(", 1)[0].strip()
            if call.startswith("open") or call == "creat":
                flags = line.split('", ', 1)[1] if '", ' in line else ""
                if call != "creat" and not re.search(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC", flags):
                    continue
                result = re.search(r"= \d+<([^>]*)>$", line)  # -y: the path of the file descriptor it returned
                if result:
                    written.add(result.group(1))
                continue
            args = _ANNOTATED.findall(line)
            if call.startswith("symlink"):
                args = args[1:]  # the first argument is what the link points to, not a file written
            for _, folder, path in args:
                written.add(str(Path(folder or cwd) / path) if not path.startswith("/") else path)
    return sorted(written)


def run_load(clients: int, seconds: float, work: Path, seed: int = 0, log=print) -> LoadReport:
    if not shutil.which("strace"):
        raise RuntimeError("strace is missing: apt-get install strace (bash .ci/install-browser.sh does it)")
    report = LoadReport(clients, seconds)
    log("building the upload files (a 2-hour FLAC takes a while) ...")
    actions = make_files(work / "uploads")
    temp, out, traces = work / "tmp", work / "out", work / "trace"
    for folder in (temp, out, traces):
        folder.mkdir(parents=True)
    output = out / "speech.wav"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    wrapper = ("strace", "-ff", "-qq", "-y", "-z", "--seccomp-bpf", "-s", "4096", "-e", f"trace={FILE_SYSCALLS}",
               "-e", "signal=none", "-o", str(traces / "trace"))
    recorder = Recorder("--no-share", "--port", str(port), "--output", str(output), env={"TMPDIR": str(temp)},
                        wrapper=wrapper)
    server_pid = None
    try:
        recorder.expect(r"^Press Ctrl\+C to stop", timeout=120)
        server_pid = _traced_child(recorder.proc.pid)
        report.baseline_rss_mb = _status_kb(server_pid, "VmRSS") / 1024

        with httpx.Client(timeout=30) as probe:
            for _ in range(10):
                started = time.monotonic()
                probe.get(f"{base_url}/").raise_for_status()
                report.idle_page_ms.append(1000 * (time.monotonic() - started))
                time.sleep(PROBE_EVERY)

        deadline = time.monotonic() + seconds
        done = threading.Event()
        lock = threading.Lock()

        def client_loop(number: int) -> None:
            rng = random.Random(seed * 1000 + number)
            client = api_client(base_url)
            with httpx.Client(timeout=ANSWER_TIMEOUT) as http:
                while time.monotonic() < deadline:
                    for action in rng.sample(actions, len(actions)):
                        if time.monotonic() >= deadline:
                            break
                        answer = _do(action, client, http, base_url)
                        with lock:
                            report.answers.append(answer)

        def page_probe() -> None:
            with httpx.Client(timeout=30) as probe:
                while not done.is_set():
                    started = time.monotonic()
                    try:
                        ok = probe.get(f"{base_url}/").status_code == 200
                    except httpx.HTTPError as exc:
                        ok = False
                        with lock:
                            report.answers.append(Answer("page (GET /)", time.monotonic() - started, False,
                                                         f"{type(exc).__name__}: {exc}"))
                    if ok:
                        report.loaded_page_ms.append(1000 * (time.monotonic() - started))
                    done.wait(PROBE_EVERY)

        log(f"{clients} clients for {seconds:.0f} s ...")
        workers = [threading.Thread(target=client_loop, args=(n,), daemon=True) for n in range(clients)]
        prober = threading.Thread(target=page_probe, daemon=True)
        prober.start()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(seconds + 2 * ANSWER_TIMEOUT)
        done.set()
        prober.join(60)
        report.peak_rss_mb = _status_kb(server_pid, "VmHWM") / 1024
        report.output_file_ok = output.read_bytes() in {_saved_alone(action, work) for action in actions
                                                        if action.expect.startswith("^Saved")}
    finally:
        if server_pid is not None:
            try:
                Path(f"/proc/{server_pid}").exists() and _signal(server_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            recorder.proc.wait(timeout=60)
        finally:
            recorder.stop()

    report.writes = files_written(traces, cwd=TESTS.parent)
    private = [path for path in report.writes if re.fullmatch(rf"{re.escape(str(temp))}/whisper-lab-recorder-\d+-\w+",
                                                               path)]
    report.outside = [path for path in report.writes if not _inside(path, output, [Path(p) for p in private])]
    report.left_in_temp = sorted(str(path) for path in temp.iterdir())
    report.left_in_output = sorted(str(path) for path in out.iterdir() if path != output)
    return report


def _signal(pid: int, signum: int) -> None:
    import os

    os.kill(pid, signum)


def _inside(path: str, output: Path, private: list[Path]) -> bool:
    """Written where the recorder may write: --output (or its temporary name beside it), the private folder.

    The temporary name is whisper_lab.files' `.<name>.<pid>.<random>.tmp`.
    """
    if path in ("/dev/null", "/dev/tty") or path.startswith(("/proc/", "/dev/pts/", "pipe:", "socket:")):
        return True  # not files on disk
    candidate = Path(path)
    if candidate.parent == output.parent:
        return bool(candidate.name == output.name
                    or re.fullmatch(rf"\.{re.escape(output.name)}\.\d+\.\w+\.tmp", candidate.name))
    return any(candidate.is_relative_to(folder) for folder in private)


_SAVED_ALONE: dict[Path, bytes] = {}


def _saved_alone(action: Action, work: Path) -> bytes:
    """What saving this upload alone writes: speech.wav after the load must be exactly one of these."""
    from whisper_lab.recorder.recording import save_recording

    if action.file not in _SAVED_ALONE:
        target = work / "alone" / action.file.stem / "speech.wav"
        _SAVED_ALONE[action.file] = save_recording(str(action.file), target).path.read_bytes()
    return _SAVED_ALONE[action.file]


def main() -> None:
    parser = argparse.ArgumentParser(description="Load test of the recorder (01) on 127.0.0.1; prints the figures.")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="recorder-load-") as work:
        report = run_load(args.clients, args.seconds, Path(work))
    print(report.summary())
    sys.exit(0 if not report.failures and not report.outside and report.peak_rss_mb < SERVER_MEMORY_BOUND_MB
             else 1)


if __name__ == "__main__":
    main()
