"""The device program on ARM64 without a board: an arm64 Debian chroot under qemu-user emulation.

.ci/arm64/build.sh builds the chroot once (qemu-user-static, mmdebstrap, then
the aarch64 onnxruntime and numpy wheels from PyPI, pinned to the versions of
this machine); .ci/arm64/run.sh runs a Python file inside it on a chosen
emulated core. So the int8 file meets ARM's own int8 kernels: Cortex-A53
(Raspberry Pi 3) has plain NEON, Cortex-A76 (Pi 5) the dot-product
instructions (asimddp) that onnxruntime's int8 MatMul uses when it finds them.

Emulation is roughly 300 times slower than the real core: its times say
nothing about a board, its tokens do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from ..errors import LabError

REPO = Path(__file__).resolve().parents[2]
RUN_SH = REPO / ".ci" / "arm64" / "run.sh"
CORES = ("cortex-a53", "cortex-a76")


def chroot_root() -> Path:
    return Path(os.environ.get("ARM64_ROOT") or Path.home() / ".cache" / "arm64-chroot")


def chroot_ready() -> bool:
    return (chroot_root() / "opt" / "ortvenv" / "bin" / "python").is_file()


def stage(folder: Path, *files: Path) -> list[str]:
    """Put `files` into `folder` (hard links where possible): run.sh shows the chroot one folder only."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for source in files:
        target = folder / Path(source).name
        if not target.exists():
            try:
                os.link(Path(source).resolve(), target)
            except OSError:  # another file system
                shutil.copyfile(source, target)
        names.append(target.name)
    return names


def run_on_core(core: str, folder: Path, runner: str, model: str, wav: str, threads: int = 2,
                timeout: float = 1800) -> dict:  # fmt: skip
    """The runner's JSON line from inside the chroot, on the emulated `core` (names relative to `folder`)."""
    if not chroot_ready():
        raise LabError(f"no arm64 chroot at {chroot_root()}: run sudo bash .ci/install-arm64.sh")
    env = {**os.environ, "QEMU_CPU": core}
    as_root = [] if os.geteuid() == 0 else ["sudo", "--preserve-env=QEMU_CPU,ARM64_ROOT"]  # chroot and mounts
    done = subprocess.run([*as_root, "bash", str(RUN_SH), "-d", str(folder), runner, model, wav, "--json", "--threads", str(threads)],
                          capture_output=True, text=True, timeout=timeout, env=env)  # fmt: skip
    if done.returncode:
        raise LabError(f"the runner failed on emulated {core}: {done.stderr.strip()[-400:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
