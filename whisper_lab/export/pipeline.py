"""The whole export job of script 03: fp32 graphs, smaller precisions, checks, a summary table.

fp16 and int8 are derived from the fp32 files (not from PyTorch), so fp32 is
always exported first. Files that are already up to date (same export code,
same source weights) are kept unless `force` is set.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LabError
from ..onnx_files import PRECISIONS, ExportedPair, is_up_to_date, onnx_pair, tokenizer_file
from .graph_stats import GraphStats, graph_stats, op_changes
from .onnx_export import export_fp32
from .validate import FP32_TOLERANCE, Validation, compare_with_reference, pytorch_reference


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class PrecisionResult:
    precision: str
    pair: ExportedPair
    seconds: float | None  # None: the files were already up to date
    validation: Validation | None = None
    stats: dict[str, GraphStats] = field(default_factory=dict)  # "encoder"/"decoder" -> stats


def ensure_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise LabError(f"cannot write to {folder} ({exc.strerror}); choose another --output-dir") from exc


def _convert(precision: str, fp32: ExportedPair, target: ExportedPair) -> None:
    from .precision import convert_fp16, quantize_int8

    convert = convert_fp16 if precision == "fp16" else quantize_int8
    for source, dest in zip(fp32, target):
        log(f"  converting {source.name} -> {dest.name} ...")
        convert(source, dest)


def export_precisions(source, output_dir: Path, precisions: list[str], force: bool = False) -> list[PrecisionResult]:
    """Export (or reuse) fp32, then the requested smaller precisions; returns one result per precision."""
    from ..transcribe.hf_whisper import HFWhisper

    ensure_writable(output_dir)
    wanted = ["fp32"] + [p for p in precisions if p != "fp32"]
    pairs = {p: onnx_pair(output_dir, source.name, p) for p in wanted}
    stale = {p for p in wanted if force or not all(is_up_to_date(f, source.origin) for f in pairs[p])}
    if "fp32" in stale:
        stale |= set(wanted)  # the smaller precisions are made from the fp32 files

    whisper = HFWhisper.load(source, attn_implementation="eager")  # eager: plain ops, nothing frozen by tracing
    results = []
    for precision in wanted:
        seconds = None
        if precision in stale:
            log(f"[{precision}] {source.name}: {'exporting from PyTorch' if precision == 'fp32' else 'converting'}")
            start = time.perf_counter()
            if precision == "fp32":
                export_fp32(whisper.model, whisper.processor, source, pairs["fp32"], log=log)
            else:
                _convert(precision, pairs["fp32"], pairs[precision])
            seconds = time.perf_counter() - start
            log(f"[{precision}] done in {seconds:.0f} s")
        else:
            log(f"[{precision}] up to date, kept (use --force to export again)")
        results.append(PrecisionResult(precision, pairs[precision], seconds))

    tokenizer_target = tokenizer_file(output_dir, source.name)
    if force or not tokenizer_target.is_file():
        whisper.processor.tokenizer.backend_tokenizer.save(str(tokenizer_target))

    validate(whisper, results)
    return results


def validate(whisper, results: list[PrecisionResult]) -> None:
    """Compare every exported pair with PyTorch on the sample speech; fp32 must agree to rounding."""
    from ..audio.loading import load_audio
    from ..audio.log_mel import log_mel_spectrogram
    from ..audio.speech_data import JFK
    from ..transcribe.onnx_whisper import OnnxWhisper

    log("validating against PyTorch on the sample speech ...")
    mel = log_mel_spectrogram(load_audio(JFK.path), whisper.model.config.num_mel_bins)[None]
    generation = whisper.model.generation_config
    prompt = [whisper.model.config.decoder_start_token_id, generation.lang_to_id["<|en|>"],
              generation.task_to_id["transcribe"], generation.no_timestamps_token_id]  # fmt: skip
    reference = pytorch_reference(whisper.model, mel, prompt)
    for result in results:
        result.validation = compare_with_reference(OnnxWhisper(*result.pair), reference)
        result.stats = {"encoder": graph_stats(result.pair.encoder), "decoder": graph_stats(result.pair.decoder)}
    worst = results[0].validation.worst_relative_diff
    if worst > FP32_TOLERANCE:
        raise LabError(f"the fp32 export differs from PyTorch by {worst:.1e} of the largest value "
                       f"(> {FP32_TOLERANCE:g}); this is a bug, please report it")  # fmt: skip


def summary_table(results: list[PrecisionResult]) -> str:
    """File, size, ratio to fp32, validation difference, op types added/removed, export time."""
    base = results[0]
    rows = [("file", "MB", "vs fp32", "max diff", "time", "op types vs fp32")]
    for r in results:
        for part in ("encoder", "decoder"):
            stats, base_stats = r.stats[part], base.stats[part]
            diff = r.validation.encoder_max_diff if part == "encoder" else r.validation.logits_max_diff
            changes = ", ".join(op_changes(base_stats.op_counts, stats.op_counts)) or "-"
            rows.append((stats.path.name, f"{stats.size_mb:.1f}", f"{stats.size_bytes / base_stats.size_bytes:.2f}",
                         f"{diff:.1e}", "kept" if r.seconds is None else f"{r.seconds:.0f} s", changes))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths)) + "  " + row[5] for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    total = {r.precision: sum(s.size_bytes for s in r.stats.values()) for r in results}
    lines.append("")
    lines.append("encoder + decoder: " + ", ".join(
        f"{p} {t / 1e6:.0f} MB ({t / total['fp32']:.0%})" for p, t in total.items()))  # fmt: skip
    lines.append("max diff: encoder = largest |cross_k/v difference|, decoder = largest |logit difference| "
                 "on the first step, vs PyTorch fp32, on samples/jfk.wav")  # fmt: skip
    lines += [PRECISION_NOTES[r.precision] for r in results if r.precision in PRECISION_NOTES]
    return "\n".join(lines)


PRECISION_NOTES = {
    "fp16": "fp16: half the bytes, but not faster on a CPU: most of ONNX Runtime's CPU kernels exist only "
    "for float32, so at load time it wraps those ops in Casts and computes in float32 anyway.",
    "int8": "int8: weights stored as int8 with a scale; DynamicQuantizeLinear measures each activation's "
    "range at run time and converts it to int8, so MatMulInteger multiplies int8 by int8 (a fast CPU path); "
    "the two convolutions stay float.",
}


def files_ready(output_dir: Path, model_name: str, precision: str) -> bool:
    """Both files of `precision` exist and were written by this exporter version, and the tokenizer too."""
    pair = onnx_pair(output_dir, model_name, precision)
    return all(is_up_to_date(f) for f in pair) and tokenizer_file(output_dir, model_name).is_file()


__all__ = ["PRECISIONS", "export_precisions", "summary_table", "files_ready"]
