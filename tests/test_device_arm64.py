"""The device program on emulated ARM64 cores gives the x86 tokens (slow: qemu-user is ~300x slower).

An arm64 Debian chroot with the aarch64 onnxruntime wheel, the same version as
this machine's (.ci/install-arm64.sh pins it). Each case runs whisper_device.py
inside it on the sample speech, on one emulated core, and compares its tokens
with the same program and file on this x86 machine:

    int8 .ort  cortex-a53 (Pi 3: NEON, no dot product)     ARM's int8 kernels differ from x86's
    int8 .ort  cortex-a76 (Pi 5: NEON + asimddp, sdot/udot)  and between these two cores
    fp32 .ort  cortex-a76                                   the float kernels, one core

The fp32 file runs on one core only: onnxruntime's float kernels are the same
NEON code on both (it picks no A76-only instruction for fp32), and one fp32 run
under emulation costs about as much as both int8 runs together.
int8 may differ by at most one token (a near-tie between two tokens that ARM's
and x86's integer paths round apart); fp32 must agree exactly.
"""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
import time

import onnxruntime as ort
import pytest
from conftest import run_script
from end2end_files import built_end2end

from whisper_lab.audio.speech_data import JFK
from whisper_lab.device import arm64
from whisper_lab.device.ort_format import device_files
from whisper_lab.device.prepare import RUNNER_NAME, device_dir

pytestmark = pytest.mark.slow

CASES = [("int8", "cortex-a53"), ("int8", "cortex-a76"), ("fp32", "cortex-a76")]


@pytest.fixture(scope="module")
def staged(exported_run, tmp_path_factory):
    """The device folder (06 --precision all) and the sample speech, in one folder the chroot can see."""
    if not arm64.chroot_ready():
        message = f"no arm64 chroot at {arm64.chroot_root()}: run sudo bash .ci/install-arm64.sh"
        # .ci/run builds it before the slow suite (~3 min: the wheels come from the host's pip)
        pytest.skip(message)
    folder, _ = exported_run
    built = built_end2end(folder, tmp_path_factory.getbasetemp())
    result = run_script("06-prepare-for-device.py", "--precision", "all", "--output-dir", built.folder, timeout=1200)
    assert result.returncode == 0, result.stderr
    device = device_dir(built.folder)
    models = {p: device_files(built.file(p), device).ort for p in ("int8", "fp32")}
    stage = tmp_path_factory.mktemp("arm64_stage")
    arm64.stage(stage, device / RUNNER_NAME, JFK.path, *models.values())
    return stage, {p: m.name for p, m in models.items()}


def x86_run(stage, model: str) -> dict:
    import json

    done = subprocess.run([sys.executable, str(stage / RUNNER_NAME), str(stage / model), str(stage / JFK.path.name),
                           "--json", "--threads", "2"], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def token_edits(a: list[int], b: list[int]) -> list[tuple]:
    return [op for op in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes() if op[0] != "equal"]


@pytest.mark.parametrize("precision,core", CASES)
def test_arm64_core_gives_the_x86_tokens(staged, precision, core):
    stage, models = staged
    here = x86_run(stage, models[precision])
    start = time.perf_counter()
    there = arm64.run_on_core(core, stage, RUNNER_NAME, models[precision], JFK.path.name)
    print(f"\n{precision} on emulated {core}: {time.perf_counter() - start:.0f} s; "
          f"arm64: onnxruntime {there['onnxruntime']}, numpy {there['numpy']}, cpu features: {there['cpu']}\n"
          f"x86: onnxruntime {here['onnxruntime']}, numpy {here['numpy']}, cpu features: {here['cpu']}\n"
          f"arm64 text: {there['text']!r}\nx86 text:   {here['text']!r}")  # fmt: skip
    assert there["onnxruntime"] == here["onnxruntime"] == ort.__version__, "pin the same onnxruntime on both sides"
    # The emulated core is the one asked for: A76 reports the dot-product feature, A53 does not.
    assert ("asimddp" in there["cpu"].split()) == (core == "cortex-a76"), there["cpu"]
    edits = token_edits(here["tokens"], there["tokens"])
    if precision == "fp32":
        assert there["tokens"] == here["tokens"], edits
    else:
        changed = sum(max(i2 - i1, j2 - j1) for _, i1, i2, j1, j2 in edits)
        assert changed <= 1, f"int8 on {core} differs from x86 by {changed} tokens: {edits}"
        if changed:
            print(f"one token differs: {edits} (a near-tie that ARM's and x86's int8 paths round apart)")
