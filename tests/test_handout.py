"""The README is the handout: every command a student is told to type runs as written.

The commands are read from the README's bash blocks. By default each one is
checked against its script's --help (the script exists, every flag it uses is
one the script takes); the slow test runs them all, in the handout's order, in
a fresh folder where samples/jfk.wav stands in for the student's recording,
servers included (started, their address awaited, stopped with Ctrl-C), and
prints how long each step's commands took: the run time behind the time
estimates in the step titles.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

# The quick start's and the tests' commands set up the environment: CI runs them as they are (.ci/run).
SETUP = ("python3 -m venv", ". .venv/bin/activate && bash install.sh --test")
# A server prints its address, then runs until Ctrl-C.
SERVERS = {"01-record-audio-app.py": "Recorder page:", "--netron": "Netron is showing", "--serve": "The page is at"}


def handout_python() -> list[tuple[str, str]]:
    """(step title, code) for every python block of the README."""
    blocks = re.findall(r"^(#+ [^\n]*)$|^```python\n(.*?)^```$", (REPO / "README.md").read_text(), flags=re.M | re.S)
    step, found = "", []
    for title, code in blocks:
        step = title.lstrip("# ").strip() if title else step
        if code:
            found.append((step, code))
    return found


def handout_commands() -> list[tuple[str, str]]:
    """(step title, command) for every command of the README's bash blocks, in order."""
    step, commands, in_bash = "", [], False
    for line in (REPO / "README.md").read_text().splitlines():
        if line.startswith("#") and not in_bash:
            step = line.lstrip("# ").strip()
        elif line.strip() == "```bash":
            in_bash = True
        elif line.strip().startswith("```"):
            in_bash = False
        elif in_bash and line.strip():
            command = re.sub(r"\s+#.*$", "", line).strip()  # the comment after a command
            if not command.startswith(SETUP):
                commands.append((step, command))
    return commands


def _script_and_flags(command: str) -> tuple[str, list[str]] | None:
    words = shlex.split(command)
    if words[:1] != ["python"] or len(words) < 2 or not words[1].endswith(".py"):
        return None
    return words[1], [w.split("=")[0] for w in words[2:] if w.startswith("--")]


def test_the_handout_has_commands_for_every_step():
    readme = (REPO / "README.md").read_text()
    steps = set(re.findall(r"^### (Step \d+ –[^\n]*)\n(?:(?!^### ).)*?^```bash$", readme, flags=re.M | re.S))
    assert {f"Step {n}" for n in range(1, 10)} <= {s.split(" –")[0] for s in steps}


@pytest.mark.parametrize("script", sorted({s for _, c in handout_commands() if (s := (_script_and_flags(c) or [None])[0])}))
def test_every_flag_in_the_handout_is_one_its_script_takes(script):
    assert (REPO / script).is_file(), f"the README runs {script}, which is not in the repository"
    help_text = subprocess.run([sys.executable, str(REPO / script), "--help"], cwd=REPO, capture_output=True,
                               text=True, timeout=120).stdout  # fmt: skip
    used = {flag for _, c in handout_commands() if (found := _script_and_flags(c)) and found[0] == script
            for flag in found[1]}  # fmt: skip
    unknown = sorted(flag for flag in used if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text))
    assert not unknown, f"{script} --help does not know {unknown}"


def _run_server(command: list[str], ready: str, cwd: Path, env: dict) -> str:
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)  # fmt: skip
    seen = []
    try:
        for line in process.stdout:
            seen.append(line)
            if ready in line:
                break
        assert any(ready in line for line in seen), "".join(seen)
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C, as the handout says
        try:
            rest, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            rest, _ = process.communicate()
    output = "".join(seen) + (rest or "")
    assert "Traceback" not in output, output
    return output


@pytest.mark.slow
def test_a_student_runs_the_handout_from_step_1_to_step_9(tmp_path):
    """Every command in order, as a student types it, in a folder of their own; prints the time per step."""
    for name in ("whisper_lab", "samples", "web", "install.sh", "requirements.txt"):
        (tmp_path / name).symlink_to(REPO / name)
    for script in REPO.glob("0*.py"):
        shutil.copy(script, tmp_path / script.name)
    shutil.copy(REPO / "samples" / "jfk.wav", tmp_path / "speech.wav")  # the recording step 2 would have saved
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    seconds: dict[str, float] = {}
    for step, command in handout_commands():
        if command.startswith(("python3 -m venv", "bash install.sh")):
            continue  # step 1's set-up: the test runs inside the environment it made
        words = shlex.split(command)
        words[0] = sys.executable if words[0] == "python" else words[0]
        start = time.perf_counter()
        ready = next((text for key, text in SERVERS.items() if key in words), None)
        if ready:
            _run_server(words, ready, tmp_path, env)
        else:
            result = subprocess.run(words, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=2400)
            assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
            assert "Traceback" not in result.stderr, f"{command}\n{result.stderr[-3000:]}"
            if "02-whisper-huggingface.py" in command and "noise.wav" not in command:
                assert result.stdout.startswith("Transcription:\n\n") and len(result.stdout.split()) > 3, result.stdout
        seconds[step] = seconds.get(step, 0.0) + time.perf_counter() - start
        print(f"\n  {time.perf_counter() - start:6.0f} s  {command[:100]}", flush=True)
    for step, code in handout_python():
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=600)  # fmt: skip
        assert result.returncode == 0 and result.stdout.strip(), f"{code}\n{result.stderr[-3000:]}"
        seconds[step] = seconds.get(step, 0.0) + time.perf_counter() - start
    print("\nrun time of the handout's commands, per step:")
    for step, s in seconds.items():
        print(f"  {step:<60} {s:6.0f} s")
    print(f"  {'all':<60} {sum(seconds.values()):6.0f} s")
