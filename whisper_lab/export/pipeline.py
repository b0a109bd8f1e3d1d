"""The whole export job of script 03: fp32 graphs, smaller precisions, checks, a summary table.

fp16 and int8 are derived from the fp32 files (not from PyTorch), so fp32 is
always exported first. Files that are already up to date (same export code,
same source weights) are kept unless `force` is set. With `attention`, each
precision also gets the decoder that outputs its alignment heads' attention
(`..._decoder_attention.onnx`, for word timestamps), made the same way.

Runs on one output folder take turns (a lock file), and each works in its own
scratch folder inside it; finished files are renamed into place, so whatever
moment a run is stopped at, every file under its real name is complete.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LabError
from ..files import atomic_file, folder_lock, scratch_dir
from ..onnx_files import (
    PRECISIONS,
    ExportedPair,
    attention_decoder_file,
    data_files,
    foreign_reason,
    is_up_to_date,
    link_onnx,
    onnx_pair,
    onnx_size,
    replace_onnx,
    stale_reason,
    tokenizer_file,
    tokenizer_problem,
)
from .graph_stats import GraphStats, graph_stats, op_changes
from .onnx_export import export_attention_decoder, export_fp32
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
    attention_decoder: Path | None = None  # the decoder variant with the alignment heads' attention, if asked for


def ensure_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".write-test.{os.getpid()}.", suffix=".tmp"):
            pass  # named like every temporary file of the lab (see files.py)
    except OSError as exc:
        raise LabError(f"cannot write to {folder} ({exc.strerror}); choose another --output-dir") from exc


def _convert(precision: str, fp32: ExportedPair, target: ExportedPair) -> None:
    from .precision import convert_fp16, quantize_int8

    convert = convert_fp16 if precision == "fp16" else quantize_int8
    for source, dest in zip(fp32, target):
        log(f"  converting {source.name} -> {dest.name} ...")
        convert(source, dest)


def _stale_reason(pair: ExportedPair, origin: str) -> str | None:
    for path in pair:
        if reason := stale_reason(path, origin):
            return reason if reason == "missing" else f"{path.name}: {reason}"
    return None


def _linked_copy(pair: ExportedPair, folder: Path) -> ExportedPair:
    """`pair` seen from inside `folder`, as hard links (a copy where links are not allowed).

    The int8 quantizer writes a scratch `<name>-inferred.onnx` next to its input
    model: converting from these links puts it in our scratch folder, not beside
    the real files where another run would trip over it.
    """
    return ExportedPair(link_onnx(pair.encoder, folder), link_onnx(pair.decoder, folder))  # side files too


def _publish(finished: ExportedPair, target: ExportedPair) -> None:
    """Rename finished files (and their side files) from the scratch folder onto their real names."""
    for source, dest in zip(finished, target):
        replace_onnx(source, dest)


def _write_tokenizer(whisper, path: Path, force: bool) -> None:
    """Write the tokenizer (atomically) unless the file already holds exactly this model's tokenizer."""
    from tokenizers import Tokenizer

    wanted = whisper.processor.tokenizer.backend_tokenizer
    if not force:
        problem = tokenizer_problem(path)
        if problem is None and Tokenizer.from_file(str(path)).to_str() == wanted.to_str():
            return
        if problem not in (None, "missing"):
            log(f"{path.name} is {problem}; writing it again")
    with atomic_file(path) as tmp:
        wanted.save(str(tmp))


# What older versions of this exporter could leave behind when interrupted: the int8
# quantizer's scratch files and temporary names without a PID. Removed under the lock.
def _graph_files(folder: Path, name: str) -> list[Path]:
    """Every graph an export of `name` may write into `folder`: the pairs and the attention decoders."""
    return [p for precision in PRECISIONS
            for p in (*onnx_pair(folder, name, precision), attention_decoder_file(folder, name, precision))]  # fmt: skip


def _leftover_patterns(name: str) -> list[re.Pattern]:
    contract = "|".join(re.escape(p.name) for p in _graph_files(Path(), name))
    return [re.compile(r"^tmp[a-z0-9_]{8}\.onnx$"),
            re.compile(rf"^{re.escape(name)}_(encoder|decoder)-inferred\.onnx$"),
            re.compile(rf"^\.({contract}|{re.escape(tokenizer_file(Path(), name).name)})\.[a-z0-9_]{{8}}\.tmp$")]  # fmt: skip


def _orphan_side_files(output_dir: Path, name: str) -> list[Path]:
    """Side files of `name`'s graphs that no .onnx points at: a run killed between writing one and the switch."""
    graphs = _graph_files(output_dir, name)
    graph_names = "|".join(re.escape(p.name) for p in graphs)
    sides = [p for p in output_dir.iterdir() if re.match(rf"^({graph_names})\.[0-9a-f]{{8}}\.data$", p.name)]
    used = {side for graph in graphs for side in data_files(graph)}
    return [p for p in sides if p not in used]


def remove_leftovers(output_dir: Path, name: str) -> None:
    patterns = _leftover_patterns(name)
    leftovers = [p for p in output_dir.iterdir() if p.is_file() and any(rx.match(p.name) for rx in patterns)]
    leftovers += _orphan_side_files(output_dir, name)
    for path in leftovers:
        path.unlink(missing_ok=True)
    if leftovers:
        log(f"removed what an interrupted export left in {output_dir}: {', '.join(p.name for p in leftovers)}")


def refuse_foreign(output_dir: Path, name: str, precisions: list[str], attention: bool = False,
                   force: bool = False) -> None:  # fmt: skip
    """Refuse, before writing anything, to replace a file under a lab name that this lab did not export.

    Another model's graph saved as whisper-base_encoder.onnx, or the encoder and decoder
    swapped, would otherwise run (and fail deep inside the decoder) or be overwritten
    without a word; an older or damaged export of the lab is simply exported again.
    `force` writes over foreign files, but not over a folder or a device under a lab name.
    """
    for precision in dict.fromkeys(["fp32", *precisions]):  # the smaller precisions are made from fp32
        files = [*onnx_pair(Path(output_dir), name, precision)]
        if attention:
            files.append(attention_decoder_file(Path(output_dir), name, precision))
        for path in files:
            reason = foreign_reason(path)
            if reason and (not force or not path.is_file()):
                if not path.is_file():
                    raise LabError(f"{path}: {reason}")
                raise LabError(f"{path}: {reason}; move it away, or replace it with this lab's export: "
                               f"python 03-export-encoder-decoder.py --precision {precision} --force")  # fmt: skip


def export_precisions(source, output_dir: Path, precisions: list[str], force: bool = False,
                      attention: bool = False) -> list[PrecisionResult]:  # fmt: skip
    """Export (or reuse) fp32, then the requested smaller precisions; returns one result per precision.

    `attention`: also the attention decoder of each precision (for word timestamps).

    One run at a time per output folder (a second one waits), and everything not
    finished lives in the run's private scratch folder: a run that is killed at
    any moment leaves either the old file or the new, complete one under each name.
    """
    refuse_foreign(output_dir, source.name, precisions, attention, force)
    ensure_writable(output_dir)

    def waiting(pid: int | None) -> None:
        holder = f" (PID {pid})" if pid else ""
        log(f"another run{holder} is exporting into {output_dir}; waiting for it to finish (Ctrl-C to stop) ...")

    with folder_lock(output_dir, on_wait=waiting), scratch_dir(output_dir, "export") as scratch:
        remove_leftovers(output_dir, source.name)
        return _export(source, output_dir, scratch, precisions, force, attention)


def _export(source, output_dir: Path, scratch: Path, precisions: list[str], force: bool,
            attention: bool = False) -> list[PrecisionResult]:  # fmt: skip
    from ..transcribe.hf_whisper import HFWhisper

    wanted = ["fp32"] + [p for p in precisions if p != "fp32"]
    pairs = {p: onnx_pair(output_dir, source.name, p) for p in wanted}
    reasons = {p: "--force" if force else _stale_reason(pairs[p], source.origin) for p in wanted}
    stale = {p for p in wanted if reasons[p]}
    if "fp32" in stale:
        stale |= set(wanted)  # the smaller precisions are made from the fp32 files

    whisper = HFWhisper.load(source, attn_implementation="eager")  # eager: plain ops, nothing frozen by tracing
    # Written before the ONNX files: a run killed in between leaves ONNX files that still
    # name their old source weights, so the next run from these weights exports them again.
    _write_tokenizer(whisper, tokenizer_file(output_dir, source.name), force)
    results = []
    for precision in wanted:
        seconds = None
        if precision in stale:
            if reasons[precision] not in (None, "missing", "--force"):
                log(f"[{precision}] {reasons[precision]}")
            log(f"[{precision}] {source.name}: {'exporting from PyTorch' if precision == 'fp32' else 'converting'}")
            start = time.perf_counter()
            finished = onnx_pair(scratch, source.name, precision)
            if precision == "fp32":
                export_fp32(whisper.model, whisper.processor, source, finished, log=log)
            else:
                _convert(precision, _linked_copy(pairs["fp32"], scratch / "fp32"), finished)
            _publish(finished, pairs[precision])
            seconds = time.perf_counter() - start
            log(f"[{precision}] done in {seconds:.0f} s")
        else:
            log(f"[{precision}] up to date, kept (use --force to export again)")
        results.append(PrecisionResult(precision, pairs[precision], seconds))
    if attention:
        _export_attention_decoders(whisper, source, output_dir, scratch, results, force or "fp32" in stale)

    validate(whisper, results)
    return results


def _export_attention_decoders(whisper, source, output_dir: Path, scratch: Path, results: list[PrecisionResult],
                               force: bool) -> None:  # fmt: skip
    """The decoder with its alignment heads' attention, for each precision of `results` (fp32 first)."""
    for result in results:
        target = attention_decoder_file(output_dir, source.name, result.precision)
        result.attention_decoder = target
        if not force and stale_reason(target, source.origin) is None:
            log(f"[{result.precision}] {target.name} up to date, kept")
            continue
        log(f"[{result.precision}] {target.name}: {'exporting from PyTorch' if result.precision == 'fp32' else 'converting'}")
        finished = attention_decoder_file(scratch, source.name, result.precision)
        if result.precision == "fp32":
            export_attention_decoder(whisper.model, whisper.processor, source, finished, log=log)
        else:
            from .precision import convert_fp16, quantize_int8

            fp32 = link_onnx(attention_decoder_file(output_dir, source.name, "fp32"), scratch / "fp32-attention")
            (convert_fp16 if result.precision == "fp16" else quantize_int8)(fp32, finished)
        replace_onnx(finished, target)


def validate(whisper, results: list[PrecisionResult]) -> None:
    """Compare every exported pair with PyTorch on the sample speech; fp32 must agree to rounding."""
    from ..audio.loading import load_audio
    from ..audio.log_mel import log_mel_spectrogram
    from ..audio.speech_data import JFK
    from ..transcribe.onnx_whisper import OnnxWhisper

    log("validating against PyTorch on the sample speech ...")
    mel = log_mel_spectrogram(load_audio(JFK.path), whisper.model.config.num_mel_bins)[None]
    prompt = whisper.prompt_tokens("en", "transcribe", timestamps=False)
    reference = pytorch_reference(whisper.model, mel, prompt)
    for result in results:
        result.validation = compare_with_reference(OnnxWhisper(*result.pair), reference)
        result.stats = {"encoder": graph_stats(result.pair.encoder), "decoder": graph_stats(result.pair.decoder)}
        if result.attention_decoder is not None:
            # the same decoder with one more output: its logits must be the plain decoder's
            check = compare_with_reference(OnnxWhisper(result.pair.encoder, result.attention_decoder), reference)
            if check.logits_max_diff > 2 * result.validation.logits_max_diff + 1e-3:
                raise LabError(f"{result.attention_decoder.name} differs from {result.pair.decoder.name} "
                               f"({check.logits_max_diff:.1e} vs {result.validation.logits_max_diff:.1e} from "
                               "PyTorch); this is a bug, please report it")  # fmt: skip
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
    attention = [r.attention_decoder for r in results if r.attention_decoder is not None]
    if attention:
        lines.append("for --word-timestamps: " + ", ".join(f"{p.name} ({onnx_size(p) / 1e6:.1f} MB)" for p in attention)
                     + ": the decoder plus one output, its alignment heads' attention")  # fmt: skip
    return "\n".join(lines)


PRECISION_NOTES = {
    "fp16": "fp16: half the bytes, but not faster on a CPU: most of ONNX Runtime's CPU kernels exist only "
    "for float32, so at load time it wraps those ops in Casts and computes in float32 anyway.",
    "int8": "int8: weights stored as int8 with a scale; DynamicQuantizeLinear measures each activation's "
    "range at run time and converts it to int8, so MatMulInteger multiplies int8 by int8 (a fast CPU path); "
    "the two convolutions stay float.",
}


def files_ready(output_dir: Path, model_name: str, precision: str, origin: str | None = None,
                attention: bool = False) -> bool:  # fmt: skip
    """Both files of `precision` (and its attention decoder, if asked) were written by this exporter
    version (from `origin`'s weights, if given), and the tokenizer beside them is readable."""
    files = [*onnx_pair(output_dir, model_name, precision)]
    if attention:
        files.append(attention_decoder_file(output_dir, model_name, precision))
    return all(is_up_to_date(f, origin) for f in files) and tokenizer_problem(tokenizer_file(output_dir, model_name)) is None


__all__ = ["PRECISIONS", "export_precisions", "summary_table", "files_ready"]
