"""How much RAM does the device program need? The figures of docs/embedded.md.

    python benchmarks/device_memory.py                     # int8 .ort and .onnx, small-board vs default options
    python benchmarks/device_memory.py --rounds 5 --threads 4

Run from the repository folder after `python 06-prepare-for-device.py` (and
`--precision all` to include the fp32 file). Each run is a fresh process of
whisper_device.py that loads a model and transcribes one 30 s clip of real
speech (the sample speech, then LibriVox sentences); it reports its own peak
resident memory (VmHWM) after loading and at the end, and its load time. The
two option sets take turns; the table shows medians and each one's ratio to
onnxruntime's defaults.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from whisper_lab.device.memory import side_by_side, table, thirty_second_clip  # noqa: E402
from whisper_lab.device.ort_format import device_files  # noqa: E402
from whisper_lab.device.prepare import RUNNER_NAME, device_dir  # noqa: E402
from whisper_lab.end2end.pipeline import end2end_file  # noqa: E402
from whisper_lab.errors import LabError, run_cli  # noqa: E402


def cpu_flags() -> str:
    found = set(re.findall(r"\b(avx2|avx512_vnni|amx_int8)\b", Path("/proc/cpuinfo").read_text()))
    return " ".join(sorted(found)) or "none of avx2/avx512_vnni/amx_int8"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=REPO / "whisper_model_dir")
    parser.add_argument("--name", default="whisper-base")
    parser.add_argument("--precision", choices=("int8", "fp32", "all"), default="int8")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="threads for both option sets (default 2)")
    args = parser.parse_args()
    folder = device_dir(args.model_dir)
    models = []
    for precision in (["int8", "fp32"] if args.precision == "all" else [args.precision]):
        onnx = end2end_file(args.model_dir, args.name, precision)
        ort_file = device_files(onnx, folder).ort
        if not ort_file.is_file():
            raise LabError(f"{ort_file} is missing: run python 06-prepare-for-device.py --precision {precision}")
        models += [ort_file, onnx]
    with tempfile.TemporaryDirectory() as tmp:
        clip = thirty_second_clip(Path(tmp) / "clip30.wav")
        results = side_by_side(folder / RUNNER_NAME, models, clip, args.rounds, args.threads)
    print(table(results))
    print(f"host cpu flags: {cpu_flags()}; {args.threads} threads")


if __name__ == "__main__":
    run_cli(main)
