"""Step 10 of the lab: the one-file model made ready for a small board (a Raspberry Pi, ARM64).

    python 06-prepare-for-device.py                      # whisper_model_dir/device/ (int8)
    python 06-prepare-for-device.py --precision all      # + the fp32 file
    python 06-prepare-for-device.py --transcribe speech.wav   # run the device program here, with its figures

It writes, into whisper_model_dir/device/, the folder to copy to the board:
the model in ONNX Runtime's ORT format (optimized ahead, loadable by the
minimal builds), the required_operators.config a reduced-operator build of
ONNX Runtime needs (checked against every op of the graph, Loop body included),
and whisper_device.py, a program that needs only onnxruntime and numpy.
The one-file models come from 05 (built first if missing).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from whisper_lab.device.prepare import PRECISIONS, RUNNER_NAME, device_dir, prepare_precisions, summary_table
from whisper_lab.errors import LabError, run_cli
from whisper_lab.weights.model_source import DEFAULT_MODEL, check_whisper

HERE = Path(__file__).resolve().parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Prepare the one-file Whisper model for a small ARM board.")
    parser.add_argument("--precision", choices=[*PRECISIONS, "all"], default="int8",
                        help="int8 (default, the file for a board), fp32, or both")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"hub id or local checkpoint folder (default: {DEFAULT_MODEL}, works offline)")
    parser.add_argument("--output-dir", type=Path, default=HERE / "whisper_model_dir",
                        help="where 05's files are; the device files go to its device/ folder (default: whisper_model_dir)")
    parser.add_argument("--force", action="store_true", help="convert again even if the .ort file is up to date")
    parser.add_argument("--transcribe", type=Path, metavar="WAV",
                        help="then run the device program on this WAV file here, with its load time and peak memory")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    precisions = list(PRECISIONS) if args.precision == "all" else [args.precision]
    if Path(args.model).expanduser().is_dir():
        check_whisper(Path(args.model).expanduser())
    if args.transcribe and not args.transcribe.is_file():
        raise LabError(f"{args.transcribe}: no such file")
    results = prepare_precisions(args.model, args.output_dir, precisions, force=args.force)
    print(summary_table(results))
    folder = device_dir(args.output_dir)
    print(f"\nCopy {folder} to the board, then there: pip install onnxruntime numpy; "
          f"python3 {RUNNER_NAME} {results[-1].files.ort.name} speech.wav")
    if args.transcribe:
        for r in results:
            print(f"\n[{r.precision}] python3 {RUNNER_NAME} {r.files.ort.name} {args.transcribe} --stats", flush=True)
            done = subprocess.run([sys.executable, str(folder / RUNNER_NAME), str(r.files.ort), str(args.transcribe),
                                   "--stats"])  # fmt: skip
            if done.returncode:
                return done.returncode


if __name__ == "__main__":
    run_cli(main)
