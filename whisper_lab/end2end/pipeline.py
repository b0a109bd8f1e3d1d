"""The job of script 05: the exported pair first (if missing), then one end-to-end file per precision.

    whisper-base_end2end.onnx        from whisper-base_encoder.onnx      + _decoder.onnx       (fp32)
    whisper-base_end2end_int8.onnx   from whisper-base_encoder_int8.onnx + _decoder_int8.onnx  (int8)

A file is kept if it was built by this version of the code, from exactly the
pair now on disk (their SHA-256 are in its metadata) and with the same front
end: when 03 exports the pair again, or quantizes it differently, 05 follows.
Each new file is checked against the pair it came from on the sample speech.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabError
from ..onnx_files import ExportedPair, onnx_pair, onnx_size, read_metadata
from .assemble import END2END_VERSION, Origin
from .front_end import numpy_features

PRECISIONS = ("fp32", "int8")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def end2end_file(output_dir: Path, model_name: str, precision: str) -> Path:
    """whisper-base_end2end.onnx (fp32) / whisper-base_end2end_int8.onnx, next to the pair."""
    suffix = "" if precision == "fp32" else f"_{precision}"
    return Path(output_dir) / f"{model_name}_end2end{suffix}.onnx"


def is_built(path: Path, origin: Origin) -> bool:
    """True if `path` was built by this code from exactly the pair and front end of `origin`."""
    try:
        meta = read_metadata(path)
    except Exception:  # noqa: BLE001 - missing or damaged (any error of onnx.load): build it (again)
        return False
    return meta.get("end2end_version") == END2END_VERSION and all(meta.get(k) == v for k, v in origin.metadata().items())


@dataclass
class Built:
    precision: str
    path: Path
    pair: ExportedPair
    seconds: float | None  # None: the file was up to date and kept
    sample_tokens: list[int] | None = None  # the one file's tokens on the sample speech
    pair_tokens: list[int] | None = None  # the two-graph greedy decoder's, fed the same features


def ensure_pairs(model: str, output_dir: Path, precisions: list[str]) -> None:
    """Export the encoder/decoder pairs that are missing or out of date, as 03 --transcribe does."""
    from ..export.pipeline import ensure_writable, export_precisions, files_ready
    from ..weights.model_source import model_name, resolve_model

    ensure_writable(output_dir)
    missing = [p for p in precisions if not files_ready(output_dir, model_name(model), p)]
    if missing:
        log(f"exporting the encoder and decoder first ({', '.join(missing)}) ...")
        export_precisions(resolve_model(model), output_dir, missing)


def build(output_dir: Path, name: str, precision: str, force: bool = False) -> Built:
    """Build (or keep) the end-to-end file of one precision from its pair; check it on the sample."""
    from ..export.onnx_export import save_onnx
    from ..transcribe.onnx_whisper import OnnxWhisper
    from .assemble import build_end2end

    pair = onnx_pair(Path(output_dir), name, precision)
    target = end2end_file(output_dir, name, precision)
    origin = Origin.of(pair)
    if not force and is_built(target, origin):
        log(f"[{precision}] {target.name} is up to date, kept (use --force to build again)")
        return Built(precision, target, pair, None)
    log(f"[{precision}] building {target.name} from {pair.encoder.name} + {pair.decoder.name} ...")
    start = time.perf_counter()
    whisper = OnnxWhisper(*pair)
    model = build_end2end(whisper, pair, origin)
    save_onnx(model, target)  # onnx.checker, then a temporary name renamed into place
    del model
    built = Built(precision, target, pair, time.perf_counter() - start)
    try:
        check_on_sample(built, whisper)
    except BaseException:
        target.unlink(missing_ok=True)  # a file that failed its check must not be kept as up to date
        raise
    return built


def check_on_sample(built: Built, whisper) -> None:
    """Tokens of the new file vs the two-graph greedy decoder on the sample speech; fp32 must agree."""
    from ..audio.loading import load_audio
    from ..audio.speech_data import JFK
    from .session import EndToEnd

    audio = load_audio(JFK.path)
    mel = numpy_features(audio, n_mels=whisper.spec.n_mels)
    generated = whisper.decode_window(mel, whisper.prompt("en", "transcribe", timestamps=False), timestamps=False)
    built.pair_tokens = [t for t in generated if t < whisper.spec.eot]
    built.sample_tokens = EndToEnd(built.path).window(audio).tokens
    if built.precision == "fp32" and built.sample_tokens != built.pair_tokens:
        raise LabError(f"{built.path.name} decodes the sample speech differently from the two-graph decoder "
                       f"({built.sample_tokens} vs {built.pair_tokens}); this is a bug, please report it")  # fmt: skip


def build_precisions(model: str, output_dir: Path, precisions: list[str], force: bool = False) -> list[Built]:
    """The one file of each precision; `force` builds it again (03 --force exports the pair again)."""
    from ..weights.model_source import model_name

    ensure_pairs(model, output_dir, precisions)
    return [build(output_dir, model_name(model), p, force) for p in precisions]


def summary_table(results: list[Built]) -> str:
    """File, its size next to the pair's, and whether it decodes the sample as the pair does."""
    from ..tables import markdown_table

    rows = []
    for r in results:
        one, pair = onnx_size(r.path), sum(onnx_size(p) for p in r.pair)  # side files included
        if r.sample_tokens is None:
            check = "- (kept)"
        elif r.sample_tokens == r.pair_tokens:
            check = f"same {len(r.sample_tokens)} tokens"
        else:
            check = f"differs: {len(r.sample_tokens)} vs {len(r.pair_tokens)} tokens"
        rows.append((r.path.name, f"{one / 1e6:.1f}", f"{pair / 1e6:.1f}", f"+{(one - pair) / 1e6:.1f}",
                     check, "kept" if r.seconds is None else f"{r.seconds:.0f} s"))  # fmt: skip
    table = markdown_table(("file", "MB", "encoder + decoder MB", "added MB", "sample speech vs the pair", "time"),
                           rows, align="lrrrll")  # fmt: skip
    return table + ("\n\nadded: the front end's DFT and mel matrices, the token byte table, "
                    "the suppression masks, the loop's small constants")  # fmt: skip
