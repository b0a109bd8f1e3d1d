"""Script 03 stopped at any moment, or run twice at once on one folder: never a broken or stray file.

Every test runs the real script on the real whisper-base and looks at what is left
in the output folder: under each real name a complete file or none, and after the
next normal run exactly the export's seven files, all valid.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import onnx
import pytest
from conftest import REPO

from whisper_lab.files import LOCK_NAME, folder_lock, is_stale_temp
from whisper_lab.onnx_files import PRECISIONS, is_up_to_date, onnx_pair, tokenizer_file, tokenizer_problem

SCRIPT = str(REPO / "03-export-encoder-decoder.py")
NAME = "whisper-base"
EXPECTED = sorted([p.name for precision in PRECISIONS for p in onnx_pair(Path(), NAME, precision)]
                  + [tokenizer_file(Path(), NAME).name])  # fmt: skip


class Run:
    """03 running in the background; its stderr lines are collected as they come."""

    started: list[Run] = []

    def __init__(self, *args, env: dict | None = None):
        self.process = subprocess.Popen([sys.executable, SCRIPT, *map(str, args)], cwd=REPO, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        env={**os.environ, **(env or {})})  # fmt: skip
        Run.started.append(self)
        self.lines: list[str] = []
        self.stdout = ""
        self.ended = False
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._read_stderr, daemon=True),
                         threading.Thread(target=self._read_stdout, daemon=True)]  # fmt: skip
        for reader in self._readers:
            reader.start()

    def _read_stderr(self):
        for line in self.process.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self.ended = True
            self._changed.notify_all()

    def _read_stdout(self):
        self.stdout = self.process.stdout.read()

    def _seen(self, fragment: str) -> bool:
        return any(fragment in line for line in self.lines)

    def wait_for_line(self, fragment: str, timeout: float = 900) -> bool:
        """True once a stderr line contains `fragment` ("" at once); False if the script ended without one."""
        with self._changed:
            assert self._changed.wait_for(lambda: self._seen(fragment) or self.ended, timeout=timeout), self.stderr
            return self._seen(fragment)

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def finish(self, timeout: float = 900) -> int:
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join()
        return code


@pytest.fixture(autouse=True)
def no_run_outlives_its_test():
    """A failed assertion must not leave an export running in the background."""
    yield
    while Run.started:
        run = Run.started.pop()
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()


def link_copy(source: Path, target: Path, skip: tuple[str, ...] = ()) -> Path:
    """The exported files of `source` (not 04's report beside them) in a new folder, as hard links.

    Safe for the shared export: the exporter only ever renames onto its files, never writes into them.
    """
    target.mkdir()
    for name in EXPECTED:
        if not any(s in name for s in skip):
            os.link(source / name, target / name)
    return target


def assert_no_broken_file(folder: Path) -> None:
    """What any run leaves, at any moment: complete files under real names, the rest recognisably stale."""
    for path in folder.iterdir():
        if path.name in EXPECTED:
            if path.suffix == ".onnx":
                onnx.checker.check_model(str(path))  # loads all of it: a truncated file fails here
            else:
                assert tokenizer_problem(path) is None, path
        else:
            assert path.name == LOCK_NAME or is_stale_temp(path), f"{path.name} is neither a result nor stale"


def assert_complete_export(folder: Path, origin: str) -> None:
    """The seven files of a full export, valid and up to date, and nothing else."""
    assert sorted(p.name for p in folder.iterdir()) == EXPECTED
    assert_no_broken_file(folder)
    for precision in PRECISIONS:
        assert all(is_up_to_date(path, origin) for path in onnx_pair(folder, NAME, precision)), precision


def assert_clean_exit(run: Run, code: int) -> None:
    assert code == 0, run.stderr
    assert "Traceback" not in run.stderr, run.stderr


# --- stopped at random moments (SIGKILL) --------------------------------------------------------

# Moments to kill at: after one of these lines of 03's progress, plus a random delay up to the
# given seconds (about the length of that step here), so kills land anywhere in each step: in
# PyTorch's export, in onnx.save, right after a rename, in the quantizer, in the validation.
KILL_AFTER = [
    ("", 10),  # right from the start: imports, loading the weights, taking the lock
    ("exporting whisper-base_encoder.onnx", 40),
    ("exporting whisper-base_decoder.onnx", 45),
    ("[fp32] done", 3),
    ("-> whisper-base_encoder_fp16.onnx", 6),
    ("-> whisper-base_decoder_fp16.onnx", 6),
    ("-> whisper-base_encoder_int8.onnx", 5),
    ("-> whisper-base_decoder_int8.onnx", 5),
    ("validating", 10),
]


def kill_and_repair(folder: Path, origin: str, rng: random.Random, env: dict) -> str | None:
    """Kill `03 --precision all --force` at a random moment, check what it left, repair with a normal run.

    Returns what happened, or None if the run ended before the chosen moment (nothing to repair).
    """
    line, max_delay = rng.choice(KILL_AFTER)
    delay = rng.uniform(0, max_delay)
    run = Run("--precision", "all", "--force", "--output-dir", folder, env=env)
    reached = run.wait_for_line(line)
    time.sleep(delay)
    run.process.kill()
    code = run.finish()
    if code != -signal.SIGKILL:
        assert_clean_exit(run, code)
        assert_complete_export(folder, origin)
        return None
    assert reached, run.stderr
    assert_no_broken_file(folder)
    left = sorted(p.name for p in folder.iterdir() if p.name not in EXPECTED)

    repair = Run("--precision", "all", "--output-dir", folder, env=env)
    assert_clean_exit(repair, repair.finish())
    assert "waiting" not in repair.stderr  # the dead run's lock is taken over at once
    assert repair.stdout.count(".onnx ") == 6, repair.stdout  # the summary table: six files validated
    assert_complete_export(folder, origin)
    return f"killed {delay:.1f} s after {line or 'the start'!r}, leaving {left or 'nothing extra'}"


def fault_trials(folder: Path, origin: str, trials: int, tmp_path: Path) -> None:
    seed = int(os.environ.get("WHISPER_LAB_FAULT_SEED", random.SystemRandom().randrange(2**32)))
    print(f"\nseed {seed} (WHISPER_LAB_FAULT_SEED={seed} repeats these moments)")
    rng = random.Random(seed)
    system_tmp = tmp_path / "system-tmp"  # the scripts' TMPDIR: the runs may leave nothing there either
    system_tmp.mkdir()
    env = {"TMPDIR": str(system_tmp)}
    # ...beyond what merely importing ONNX Runtime leaves (its telemetry session file, .ses)
    subprocess.run([sys.executable, "-c", "import onnxruntime"], env={**os.environ, **env}, check=True)
    baseline = sorted(p.name for p in system_tmp.iterdir())
    kills = 0
    for attempt in range(2 * trials):
        outcome = kill_and_repair(folder, origin, rng, env)
        assert sorted(p.name for p in system_tmp.iterdir()) == baseline
        print(f"run {attempt + 1}: {outcome or 'ended before the chosen moment'}; folder complete")
        kills += outcome is not None
        if kills == trials:
            break
    assert kills == trials


def test_killed_at_random_moments_then_repaired(exported_run, whisper_base, tmp_path):
    out, _ = exported_run
    fault_trials(link_copy(out, tmp_path / "models"), whisper_base.origin, trials=1, tmp_path=tmp_path)


@pytest.mark.slow
def test_killed_at_random_moments_then_repaired_many_times(whisper_base, tmp_path):
    """Kills at random moments, starting from an empty folder: the first repair exports whatever the kill left missing.

    Four trials in the slow suite (each kill and repair is about a minute: ten took 11 of CI's 90 minutes);
    WHISPER_LAB_FAULT_TRIALS=10 for a longer hunt."""
    trials = int(os.environ.get("WHISPER_LAB_FAULT_TRIALS", "4"))
    fault_trials(tmp_path / "models", whisper_base.origin, trials=trials, tmp_path=tmp_path)


# --- Ctrl-C and SIGTERM in the int8 quantizer ---------------------------------------------------


def quantizer_files(folder: Path) -> list[Path]:
    """onnxruntime's quantizer writes <model>-inferred.onnx next to its input model, ours a tmpXXXX.onnx."""
    try:
        return [p for p in folder.rglob("*.onnx") if p.name.startswith("tmp") or p.name.endswith("-inferred.onnx")]
    except FileNotFoundError:  # a folder vanished while we looked
        return []


@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_interrupted_int8_conversion_leaves_nothing(exported_run, whisper_base, tmp_path, sig, code, word):
    """Stopped while the quantizer's scratch files exist: they go with the run, nothing else changes."""
    out, _ = exported_run
    folder = link_copy(out, tmp_path / "models", skip=("_int8",))
    run = Run("--precision", "int8", "--output-dir", folder)
    deadline = time.monotonic() + 900
    while not quantizer_files(folder):
        assert run.process.poll() is None and time.monotonic() < deadline, run.stderr
        time.sleep(0.05)
    run.process.send_signal(sig)
    assert run.finish() == code and word in run.stderr and "Traceback" not in run.stderr, run.stderr
    left = sorted(p.name for p in folder.iterdir())
    assert set(left) <= set(EXPECTED), left  # no scratch folder, no lock, no quantizer files
    assert_no_broken_file(folder)
    assert all(is_up_to_date(p, whisper_base.origin) for p in folder.glob("*.onnx"))


# --- two runs at once ---------------------------------------------------------------------------


def run_two_at_once(folder: Path, *args: str) -> tuple[Run, Run]:
    first = Run(*args, "--output-dir", folder)
    second = Run(*args, "--output-dir", folder)
    for run in (first, second):
        assert_clean_exit(run, run.finish())
    return first, second


def assert_one_waited(first: Run, second: Run) -> Run:
    """Exactly one of the two waited, naming the other's PID; returns the one that waited."""
    waited = [(run, other) for run, other in ((first, second), (second, first)) if "waiting" in run.stderr]
    assert len(waited) == 1, first.stderr + second.stderr
    run, other = waited[0]
    assert f"another run (PID {other.process.pid}) is exporting into" in run.stderr, run.stderr
    return run


def test_two_exports_into_one_folder_take_turns(exported_run, whisper_base, tmp_path):
    """Both need the int8 files: one converts them, the other waits, then finds them up to date."""
    out, _ = exported_run
    folder = link_copy(out, tmp_path / "models", skip=("_int8",))
    first, second = run_two_at_once(folder, "--precision", "int8")
    waiter = assert_one_waited(first, second)
    assert "[int8] up to date, kept" in waiter.stderr
    assert_complete_export(folder, whisper_base.origin)


@pytest.mark.slow
def test_two_forced_int8_exports_into_an_empty_folder(whisper_base, tmp_path):
    """The case that used to break: both export fp32 and quantize, into one new folder, at once."""
    folder = tmp_path / "models"
    first, second = run_two_at_once(folder, "--precision", "int8", "--force")
    assert_one_waited(first, second)
    for run in (first, second):
        assert "[int8] done" in run.stderr  # --force: the second exports again after the first
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(n for n in EXPECTED if "fp16" not in n), names
    assert_no_broken_file(folder)
    assert all(is_up_to_date(p, whisper_base.origin) for p in folder.glob("*.onnx"))


# --- the lock itself ----------------------------------------------------------------------------

HOLDER = """
import sys, time
from whisper_lab.files import folder_lock
with folder_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(600)
"""


def start_holder(folder: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "locked\n"
    return holder


def test_lock_of_a_killed_run_is_taken_over(tmp_path):
    holder = start_holder(tmp_path)
    holder.kill()
    holder.wait()
    assert (tmp_path / LOCK_NAME).read_text().strip() == str(holder.pid)  # left behind, with the dead PID
    waits = []
    with folder_lock(tmp_path, on_wait=waits.append):
        assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())
    assert waits == [] and not (tmp_path / LOCK_NAME).exists()


def test_waiting_for_a_live_holder_names_it(tmp_path):
    holder = start_holder(tmp_path)
    waits = []

    def stop_holder_soon(pid):
        waits.append(pid)
        threading.Timer(1.0, holder.kill).start()

    with folder_lock(tmp_path, on_wait=stop_holder_soon):
        assert holder.poll() is not None  # got the lock only once the holder was gone
    holder.wait()
    assert waits == [holder.pid] and not (tmp_path / LOCK_NAME).exists()
