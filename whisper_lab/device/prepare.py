"""The job of script 06: one folder holding everything a device needs, checked on the sample speech.

    whisper_model_dir/device/
        whisper-base_end2end_int8.ort                        the model (ORT format)
        whisper-base_end2end_int8.required_operators.config  for a reduced-operator build
        whisper-base_end2end_int8.ort.json                   what it was made from, by which onnxruntime
        whisper_device.py                                    the program (runner.py)

The one-file models come from 05 (built first if missing). Each new .ort is
run next to its .onnx on the sample speech, through the device program itself:
it must give the same tokens, since it is the same graph, only optimized ahead.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabError
from ..files import atomic_file
from .ort_format import DeviceFiles, OpsCheck, convert, device_files, is_prepared, write_stamp

RUNNER_NAME = "whisper_device.py"
PRECISIONS = ("fp32", "int8")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def device_dir(output_dir: Path) -> Path:
    return Path(output_dir) / "device"


@dataclass
class Prepared:
    precision: str
    onnx: Path
    files: DeviceFiles
    check: OpsCheck | None  # None: kept from an earlier run
    seconds: float | None
    onnx_tokens: list[int] | None = None
    ort_tokens: list[int] | None = None


def sample_tokens(model: Path) -> list[int]:
    """The sample speech through the device program (small-board options), as a board would run it."""
    from ..audio.speech_data import JFK
    from . import runner

    session = runner.load(str(model), runner.small_board_options())
    return runner.transcribe(session, runner.read_wav(str(JFK.path)))["tokens"]


def copy_runner(folder: Path) -> Path:
    target = folder / RUNNER_NAME
    with atomic_file(target) as tmp:
        shutil.copyfile(Path(__file__).with_name("runner.py"), tmp)
    return target


def prepare(output_dir: Path, name: str, precision: str, force: bool = False) -> Prepared:
    from ..end2end.pipeline import end2end_file

    source = end2end_file(output_dir, name, precision)
    folder = device_dir(output_dir)
    files = device_files(source, folder)
    if not force and is_prepared(source, files):
        copy_runner(folder)  # the program may be newer than the model
        log(f"[{precision}] {files.ort.name} is up to date, kept (use --force to convert again)")
        return Prepared(precision, source, files, None, None)
    log(f"[{precision}] converting {source.name} to ORT format ...")
    start = time.perf_counter()
    files, check = convert(source, folder)
    prepared = Prepared(precision, source, files, check, time.perf_counter() - start)
    copy_runner(folder)
    prepared.onnx_tokens, prepared.ort_tokens = sample_tokens(source), sample_tokens(files.ort)
    if prepared.ort_tokens != prepared.onnx_tokens:  # no stamp: the next run converts again
        raise LabError(f"{files.ort.name} decodes the sample speech differently from {source.name} "
                       f"({prepared.ort_tokens} vs {prepared.onnx_tokens}); this is a bug, please report it")  # fmt: skip
    write_stamp(source, files)
    return prepared


def prepare_precisions(model: str, output_dir: Path, precisions: list[str], force: bool = False) -> list[Prepared]:
    from ..end2end.pipeline import build_precisions
    from ..weights.model_source import model_name

    build_precisions(model, output_dir, precisions)  # the one files first (kept when up to date)
    return [prepare(output_dir, model_name(model), p, force) for p in precisions]


def summary_table(results: list[Prepared]) -> str:
    from ..onnx_files import onnx_size
    from ..tables import markdown_table

    rows = []
    for r in results:
        if r.check is None:
            ops, same = "- (kept)", "- (kept)"
        else:
            ops = (f"{r.check.config_ops} listed = {r.check.graph_ops} in the graph "
                   f"({r.check.loop_body_ops} only in the Loop body)")  # fmt: skip
            same = f"same {len(r.ort_tokens)} tokens" if r.ort_tokens == r.onnx_tokens else "differs"
        rows.append((r.files.ort.name, f"{r.files.ort.stat().st_size / 1e6:.1f}", f"{onnx_size(r.onnx) / 1e6:.1f}",
                     ops, same, "kept" if r.seconds is None else f"{r.seconds:.0f} s"))  # fmt: skip
    return markdown_table((".ort file", "MB", ".onnx MB", "operators in the config", "sample: .ort vs .onnx", "time"),
                          rows, align="lrrlll")  # fmt: skip
