"""Turn a Comparison into what people read: tables on stdout, report.md, and bar charts beside it.

Every number here comes from the Comparison measured in the same run; nothing
is typed in. The plots use matplotlib's Agg backend (it draws into memory and
writes PNG files, no screen needed, which is what a VM has).
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..audio.speech_data import ALL
from ..export.graph_stats import MB, op_changes
from ..files import atomic_file
from ..tables import markdown_table
from .backends import LABELS, REFERENCE
from .benchmark import CpuShare, speedup
from .comparison import MIN_WER_UTTERANCES, Comparison
from .throughput import EncoderWork

REPORT_NAME = "report.md"
PLOTS = {
    "overview": "report-overview.png",
    "size": "report-size.png",
    "latency": "report-latency.png",
    "wer": "report-wer.png",
    "memory": "report-memory.png",
}
COLORS = {
    "hf-fp32": "#7f7f7f",
    "onnx-fp32": "#1f77b4",
    "onnx-fp16": "#9ecae1",
    "onnx-int8": "#2ca02c",
    "faster-whisper-int8": "#ff7f0e",
    "fp32": "#1f77b4",
    "fp16": "#9ecae1",
    "int8": "#2ca02c",
}
NOISY_SHARE = 0.10  # other processes took more than 10% of the CPU while we timed: say so

LARGE_SET_WORDS = 2000  # below this, one misheard word moves the WER by more than 0.05 points: say so
FW = "faster-whisper-int8"


@dataclass
class Finding:
    """One thing this run shows: the question, the figure, and how to read it."""

    what: str
    measured: str
    meaning: str


# --- numbers -------------------------------------------------------------------------------------


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.1f}"


def _noise_note(share: CpuShare | None, what: str) -> str:
    if share is None:
        return ""
    used = share.others_fraction
    note = f"Other processes used {used:.0%} of the machine's {share.cores} cores during {what}"
    if share.steal > 0.05 * share.wall:
        note += f" (including {share.steal:.1f} CPU s taken by the hypervisor)"
    if used > NOISY_SHARE:
        return note + ": the timings are noisier than usual; run again on an idle machine to confirm them."
    return note + "."


def int8_accuracy(c: Comparison) -> tuple[float, float, float, int, int, int] | None:
    """int8 WER - fp32 WER on the test set with its 95% paired bootstrap interval, and the counts behind it:
    (difference, low, high, fp32 errors, int8 errors, words); None if either backend was not measured."""
    from .wer import paired_difference, utterance_errors, word_count

    if "onnx-int8" not in c.accuracy or "onnx-fp32" not in c.accuracy:
        return None
    refs = [u.text for u in c.utterances]
    errors = {name: [utterance_errors(r, h) for r, h in zip(refs, c.accuracy[name].hypotheses)]
              for name in ("onnx-fp32", "onnx-int8")}  # fmt: skip
    words = [word_count(r) for r in refs]
    difference, low, high = paired_difference(errors["onnx-fp32"], errors["onnx-int8"], words)
    return difference, low, high, sum(errors["onnx-fp32"]), sum(errors["onnx-int8"]), sum(words)


def _encoder_ratios(s) -> list[float]:
    return [a.encoder_per_window / b.encoder_per_window for a, b in zip(s["onnx-int8"].timings, s["onnx-fp32"].timings)]


def findings(c: Comparison) -> list[Finding]:
    out = []
    s, acc, mem = c.speed, c.accuracy, c.memory
    if "onnx-int8" in s and REFERENCE in s:
        median, low, high = speedup(s, "onnx-int8", REFERENCE)
        out.append(Finding("ONNX int8 whole transcription vs HF PyTorch fp32",
                           f"{median:.2f}x faster (rounds: {low:.2f}-{high:.2f}x); "
                           f"{s['onnx-int8'].total:.2f} s vs {s[REFERENCE].total:.2f} s",
                           f"the same words in {1 / median:.0%} of PyTorch's time on this CPU"))  # fmt: skip
    if "onnx-fp16" in s and "onnx-fp32" in s:
        ratio = s["onnx-fp16"].total / s["onnx-fp32"].total
        word = "slower" if ratio > 1 else "faster"
        why = ("a CPU without fp16 arithmetic computes in float32 and pays for the casts" if ratio > 1
               else "this CPU computes fp16 itself")  # fmt: skip
        out.append(Finding("ONNX fp16 vs fp32 speed",
                           f"fp16 {abs(ratio - 1):.0%} {word}: {s['onnx-fp16'].total:.2f} s vs {s['onnx-fp32'].total:.2f} s; "
                           f"encoder {_ms(s['onnx-fp16'].encoder_per_window)} vs {_ms(s['onnx-fp32'].encoder_per_window)} ms",
                           f"fp16 halves the file; {why}"))  # fmt: skip
    few = len(c.utterances) < MIN_WER_UTTERANCES
    int8 = int8_accuracy(c)
    if int8:
        difference, low, high, errors32, errors8, words = int8
        if words < LARGE_SET_WORDS:
            meaning = f"only {words} words: too few to tell a cost from chance (the large set: --utterances all)"
        elif low <= 0 <= high:
            meaning = "no cost that this many words can show: the 95% interval includes 0"
        else:
            meaning = f"int8 costs about {difference * 100:.1f} points on these words"
        out.append(Finding("ONNX int8 WER vs fp32",
                           f"{_pct(acc['onnx-int8'].wer)}% vs {_pct(acc['onnx-fp32'].wer)}% ({difference * 100:+.2f} points, "
                           f"95% interval {low * 100:+.2f} to {high * 100:+.2f}): {errors8} vs {errors32} word errors "
                           f"in {words} words", meaning))  # fmt: skip
    if "onnx-fp16" in acc and "onnx-fp32" in acc:
        delta = acc["onnx-fp16"].wer - acc["onnx-fp32"].wer
        meaning = (f"only {_n(len(c.utterances), 'utterance')}: too few to tell" if few
                   else "fp16 rounds the weights, not the arithmetic: the words barely change")  # fmt: skip
        out.append(Finding("ONNX fp16 WER vs fp32",
                           f"{_pct(acc['onnx-fp16'].wer)}% vs {_pct(acc['onnx-fp32'].wer)}% ({delta * 100:+.1f} points)",
                           meaning))  # fmt: skip
    if "int8" in c.files:
        share = sum(x.size_bytes for x in c.files["int8"].values()) / sum(x.size_bytes for x in c.files["fp32"].values())
        ops = sum((x.op_counts for x in c.files["int8"].values()), start=Counter())
        out.append(Finding("int8 files together vs fp32",
                           f"{share:.1%}; {ops['DynamicQuantizeLinear']} DynamicQuantizeLinear, "
                           f"{ops['MatMulInteger']} MatMulInteger",
                           "the MatMul weights are stored in 8 bits instead of 32; the rest stays float32"))  # fmt: skip
    if "onnx-int8" in s and "onnx-fp32" in s:
        ratios = _encoder_ratios(s)
        vnni = any(f in c.environment.get("cpu features", "") for f in ("avx512_vnni", "avx_vnni", "amx_int8"))
        floor = ""
        if c.throughput:
            work = EncoderWork.whisper()
            floor = (f"; this CPU's floor: {c.throughput.floor_seconds(work, 'int8') / c.throughput.floor_seconds(work, 'fp32'):.2f} "
                     f"(int8 products {c.throughput.int8_speedup:.1f}x float32's rate)")  # fmt: skip
        meaning = ("this CPU has int8 dot-product instructions (VNNI): the float32 attention products are the floor" if vnni
                   else "this CPU has no int8 dot-product instructions (VNNI), see 'The encoder against the machine's limit'")  # fmt: skip
        out.append(Finding("ONNX int8 encoder per 30 s window vs fp32",
                           f"{statistics.median(ratios):.2f} of fp32's time (rounds {min(ratios):.2f}-{max(ratios):.2f}): "
                           f"{_ms(s['onnx-int8'].encoder_per_window)} vs {_ms(s['onnx-fp32'].encoder_per_window)} ms{floor}",
                           meaning))  # fmt: skip
    if "onnx-int8" in s and FW in s:
        ratios = [a.total / b.total for a, b in zip(s["onnx-int8"].timings, s[FW].timings)]
        on_set = ""
        if "onnx-int8" in acc and FW in acc:
            on_set = f"; on the {len(c.utterances)} test utterances {acc['onnx-int8'].total_seconds / acc[FW].total_seconds:.2f}"
        median = statistics.median(ratios)
        out.append(Finding("ONNX int8 whole transcription vs faster-whisper int8",
                           f"{median:.2f} of its time on {c.settings.clip.path.name} (rounds {min(ratios):.2f}-"
                           f"{max(ratios):.2f}): {s['onnx-int8'].total:.2f} s vs {s[FW].total:.2f} s{on_set}",
                           f"plain ONNX ops run {'faster than' if median < 1 else 'slower than'} CTranslate2's "
                           "hand-written int8 kernels here"))  # fmt: skip
    if "onnx-int8" in mem:
        out.append(Finding("ONNX int8 transcription peak memory",
                           f"{mem['onnx-int8'].peak_mb:.0f} MB peak RSS (own process: load + 2 transcriptions)",
                           "what a machine needs free to transcribe with the int8 files"))  # fmt: skip
    if "onnx-int8" in mem and FW in mem:
        ratio = mem["onnx-int8"].peak_mb / mem[FW].peak_mb
        out.append(Finding("ONNX int8 peak memory vs faster-whisper int8",
                           f"{mem['onnx-int8'].peak_mb:.0f} MB vs {mem[FW].peak_mb:.0f} MB ({ratio - 1:+.0%})",
                           "both hold int8 weights; the rest is each runtime's working memory"))  # fmt: skip
    if c.settings.utterances != ALL:  # the large set takes longer by design
        out.append(Finding(f"this report on {c.environment.get('cores', '?')} cores",
                           f"{c.seconds / 60:.1f} min ({_n(len(c.utterances), 'utterance')}, {_n(c.settings.repeats, 'round')})",
                           "more rounds narrow the speed ranges (--repeats)"))  # fmt: skip
    return out


# --- tables --------------------------------------------------------------------------------------


def size_table(c: Comparison) -> str:
    base = sum(s.size_bytes for s in c.files["fp32"].values())
    rows = []
    for precision, parts in c.files.items():
        for part, stats in parts.items():
            rows.append([stats.path.name, precision, f"{stats.size_mb:.1f}",
                         f"{stats.size_bytes / c.files['fp32'][part].size_bytes:.2f}"])  # fmt: skip
    for precision, parts in c.files.items():
        total = sum(s.size_bytes for s in parts.values())
        rows.append([f"**encoder + decoder, {precision}**", precision, f"{total / MB:.1f}", f"{total / base:.2f}"])
    return markdown_table(["file", "precision", "MB", "vs fp32"], rows, align="llrr")


def speed_table(c: Comparison) -> str:
    s, acc, mem = c.speed, c.accuracy, c.memory
    has_ref = REFERENCE in s
    header = ["backend", "encoder ms / 30 s window", "decoder ms / token", "whole clip s"]
    header += ["speed-up vs HF (range)"] if has_ref else []
    header += ["test set s"] + (["speed-up on test set"] if has_ref else []) + ["peak MB"]
    rows = []
    for name, r in s.items():
        row = [LABELS[name], _ms(r.encoder_per_window), f"{r.decoder_per_step * 1000:.1f}", f"{r.total:.2f}"]
        if has_ref:
            median, low, high = speedup(s, name, REFERENCE)
            row.append(f"{median:.2f}x ({low:.2f}-{high:.2f})")
        row.append(f"{acc[name].total_seconds:.1f}" if name in acc else "-")
        if has_ref:
            row.append(f"{acc[REFERENCE].total_seconds / acc[name].total_seconds:.2f}x" if name in acc else "-")
        row.append(f"{mem[name].peak_mb:.0f}" if name in mem else "-")
        rows.append(row)
    return markdown_table(header, rows)


def accuracy_table(c: Comparison) -> str:
    acc = c.accuracy
    rows = []
    for name, r in acc.items():
        vs = f"{(r.wer - acc['onnx-fp32'].wer) * 100:+.1f}" if "onnx-fp32" in acc else "-"
        rows.append([LABELS[name], _pct(r.wer), f"{r.errors} / {r.words}", vs])
    return markdown_table(["backend", "WER %", "word errors / words", "points vs ONNX fp32"], rows)


def memory_table(c: Comparison) -> str:
    rows = [[LABELS[n], f"{m.start_mb:.0f}", f"{m.loaded_mb:.0f}", f"{m.peak_mb:.0f}", f"{m.load_seconds:.1f}"]
            for n, m in c.memory.items()]  # fmt: skip
    return markdown_table(["backend", "Python + audio libs MB", "after loading MB", "peak MB", "load s"], rows)


def structure_table(c: Comparison) -> str:
    rows = []
    for precision, parts in c.files.items():
        for part, stats in parts.items():
            runtime = c.runtime[precision][part]
            base = c.files["fp32"][part]
            changes = ", ".join(op_changes(base.op_counts, stats.op_counts)) if precision != "fp32" else "-"
            dtypes = ", ".join(f"{d} {b / MB:.0f}" for d, b in stats.weight_bytes_by_dtype.most_common() if b >= 0.05 * MB)
            run_dtypes = ", ".join(f"{d} {b / MB:.0f}" for d, b in runtime.weight_bytes_by_dtype.most_common()
                                   if b >= 0.05 * MB)  # fmt: skip
            rows.append([part, precision, len(stats.nodes), len(runtime.nodes), runtime.op_counts.get("Cast", 0),
                         dtypes, run_dtypes, changes])  # fmt: skip
    return markdown_table(["graph", "precision", "nodes", "nodes at run time", "Casts at run time",
                           "weights MB by dtype (file)", "(at run time)", "op types vs fp32 (file)"],
                          rows, align="llrrrlll")  # fmt: skip


def findings_table(c: Comparison) -> str:
    return markdown_table(["what", "measured in this run", "what it means"],
                          [[f.what, f.measured, f.meaning] for f in findings(c)], align="lll")  # fmt: skip


def per_utterance_table(c: Comparison) -> str:
    from .wer import word_count, word_error_rate

    names = list(c.accuracy)
    rows = []
    for i, u in enumerate(c.utterances):
        words = word_count(u.text)
        errors = [round(word_error_rate(u.text, c.accuracy[n].hypotheses[i]) * words) for n in names]
        rows.append([u.id, words, *errors])
    return markdown_table(["utterance", "words", *(f"{LABELS[n]} errors" for n in names)], rows)


def disagreements(c: Comparison, limit: int = 12) -> str:
    """Utterances where the backends did not all write the same (normalized) text, with what each wrote."""
    from .wer import normalize

    lines = []
    for i, u in enumerate(c.utterances):
        texts = {n: c.accuracy[n].hypotheses[i] for n in c.accuracy}
        if len({normalize(t) for t in texts.values()}) <= 1:
            continue
        if len(lines) // (len(texts) + 2) >= limit:
            lines.append(f"... and more (the {limit} first are shown)")
            break
        lines.append(f"- **{u.id}**, reference: {u.text}")
        lines += [f"  - {LABELS[n]}: {t}" for n, t in texts.items()]
        lines.append("")
    return "\n".join(lines) or "All backends wrote the same words for every utterance."


# --- plots ---------------------------------------------------------------------------------------


def _bars(ax, labels: list[str], values: list[float], colors: list[str], title: str, unit: str, fmt: str = "{:.0f}",
          low: list[float] | None = None, high: list[float] | None = None) -> None:  # fmt: skip
    positions = range(len(values))
    errors = None
    if low is not None and high is not None:
        errors = [[v - lo for v, lo in zip(values, low)], [hi - v for v, hi in zip(values, high)]]
    bars = ax.bar(positions, values, color=colors, yerr=errors, capsize=3 if errors else 0, edgecolor="black", linewidth=0.4)
    tops = high if high is not None else values  # labels go above the whiskers, not through them
    for bar, value, top in zip(bars, values, tops):
        ax.annotate(fmt.format(value), (bar.get_x() + bar.get_width() / 2, top),
                    ha="center", va="bottom", fontsize=8, xytext=(0, 3), textcoords="offset points")  # fmt: skip
    ax.set_xticks(list(positions), labels, rotation=20, ha="right", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(unit, fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.margins(y=0.15)
    ax.set_ylim(bottom=0, top=None if max(values + [0]) > 0 else 1)  # all zero (WER of a tiny set): no negative axis
    ax.spines[["top", "right"]].set_visible(False)


def _size_panel(ax, c: Comparison) -> None:
    precisions = list(c.files)
    encoder = [c.files[p]["encoder"].size_bytes / MB for p in precisions]
    decoder = [c.files[p]["decoder"].size_bytes / MB for p in precisions]
    ax.bar(precisions, encoder, color=[COLORS[p] for p in precisions], edgecolor="black", linewidth=0.4, label="encoder")
    ax.bar(precisions, decoder, bottom=encoder, color=[COLORS[p] for p in precisions], edgecolor="black", linewidth=0.4,
           hatch="//", label="decoder")  # fmt: skip
    for i, (e, d) in enumerate(zip(encoder, decoder)):
        ax.annotate(f"{e + d:.0f} MB", (i, e + d), ha="center", va="bottom", fontsize=8, xytext=(0, 2),
                    textcoords="offset points")  # fmt: skip
    ax.set_title("ONNX files on disk (hatched: decoder)", fontsize=10)
    ax.set_ylabel("MB", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.margins(y=0.15)
    ax.spines[["top", "right"]].set_visible(False)


def _speed_panel(ax, c: Comparison, what: str) -> None:
    names = list(c.speed)
    labels, colors = [LABELS[n] for n in names], [COLORS[n] for n in names]
    if what == "total":
        values = [c.speed[n].total for n in names]
        low = [min(t.total for t in c.speed[n].timings) for n in names]
        high = [max(t.total for t in c.speed[n].timings) for n in names]
        title = f"Whole transcription, {c.settings.clip.path.name} ({c.clip_seconds:.0f} s)"
        _bars(ax, labels, values, colors, title, "seconds (median, whiskers: min-max)", "{:.2f}", low, high)
    elif what == "encoder":
        values = [c.speed[n].encoder_per_window * 1000 for n in names]
        _bars(ax, labels, values, colors, "Encoder, per 30 s window", "ms (median)")
    else:
        values = [c.speed[n].decoder_per_step * 1000 for n in names]
        _bars(ax, labels, values, colors, "Decoder, per token", "ms (median)", "{:.1f}")


def _wer_panel(ax, c: Comparison) -> None:
    names = list(c.accuracy)
    _bars(ax, [LABELS[n] for n in names], [c.accuracy[n].wer * 100 for n in names], [COLORS[n] for n in names],
          f"Word error rate, {len(c.utterances)} utterances", "WER %", "{:.1f}")  # fmt: skip


def _memory_panel(ax, c: Comparison) -> None:
    names = list(c.memory)
    _bars(ax, [LABELS[n] for n in names], [c.memory[n].peak_mb for n in names], [COLORS[n] for n in names],
          "Peak memory (RSS), load + transcribe", "MB")  # fmt: skip


def _save(figure, target: Path) -> None:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    with atomic_file(target) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)


def write_plots(c: Comparison, folder: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")  # draw into files; a VM has no screen
    import matplotlib.pyplot as plt

    paths = {key: folder / name for key, name in PLOTS.items()}
    figure, ax = plt.subplots(figsize=(4.5, 3.6))
    _size_panel(ax, c)
    _save(figure, paths["size"])

    figure, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    for ax, what in zip(axes, ("encoder", "decoder", "total")):
        _speed_panel(ax, c, what)
    _save(figure, paths["latency"])

    figure, ax = plt.subplots(figsize=(5, 3.6))
    _wer_panel(ax, c)
    _save(figure, paths["wer"])

    figure, ax = plt.subplots(figsize=(5, 3.6))
    _memory_panel(ax, c)
    _save(figure, paths["memory"])

    figure, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    _size_panel(axes[0][0], c)
    _speed_panel(axes[0][1], c, "total")
    _wer_panel(axes[1][0], c)
    _memory_panel(axes[1][1], c)
    figure.suptitle(f"whisper-base on {c.environment.get('cpu', 'this CPU')}, {c.settings.threads} threads "
                    f"({c.started:%Y-%m-%d})", fontsize=10)  # fmt: skip
    _save(figure, paths["overview"])
    return paths


# --- the report ----------------------------------------------------------------------------------


def _fp16_explanation(c: Comparison) -> str:
    if "fp16" not in c.files or "onnx-fp16" not in c.speed:
        return ""
    enc16 = c.runtime["fp16"]["encoder"]
    dec16 = c.runtime["fp16"]["decoder"]
    s16, s32 = c.speed["onnx-fp16"], c.speed["onnx-fp32"]
    file_casts = c.files["fp16"]["encoder"].op_counts.get("Cast", 0) + c.files["fp16"]["decoder"].op_counts.get("Cast", 0)
    run_casts = enc16.op_counts.get("Cast", 0) + dec16.op_counts.get("Cast", 0)
    run_weights = (enc16.weight_bytes + dec16.weight_bytes) / MB
    file_weights = (c.files["fp16"]["encoder"].weight_bytes + c.files["fp16"]["decoder"].weight_bytes) / MB
    fp16_flag = "has" if "avx512_fp16" in c.environment.get("cpu features", "") else "has no"
    return (
        "### Why fp16 does not run faster here\n\n"
        f"This run: ONNX fp16 took {s16.total:.2f} s for the clip, fp32 {s32.total:.2f} s "
        f"({s16.total / s32.total - 1:+.0%}); encoder {_ms(s16.encoder_per_window)} vs {_ms(s32.encoder_per_window)} ms per window.\n"
        f"This CPU {fp16_flag} float16 arithmetic instructions (AVX512-FP16), and ONNX Runtime's CPU kernels "
        "for MatMul, Softmax, LayerNormalization and Gelu compute in float32. So when it loads the fp16 graph it "
        f"converts instead: the files hold {file_casts} Cast nodes, the graph it runs has {run_casts}; "
        f"the {file_weights:.0f} MB of float16 weights become {run_weights:.0f} MB of weights at run time "
        "(float32 copies, and float16 tables kept for the lookups), and fused kernels such as BiasGelu and "
        "SkipLayerNormalization no longer match between the Casts. fp16 halves the download, not the work: "
        "it pays on GPUs and on CPUs with native float16 math.\n"
    )


def machine_limit(c: Comparison) -> str:
    """The encoder's measured time per window next to the floor this machine's product speed allows."""
    s, tp = c.speed, c.throughput
    precisions = [p for p in ("fp32", "int8") if f"onnx-{p}" in s]
    if tp is None or not precisions:
        return ""
    work = EncoderWork.whisper()
    rows = []
    for p in precisions:
        floor = tp.floor_seconds(work, p)
        measured = s[f"onnx-{p}"].encoder_per_window
        rows.append([f"ONNX {p}", _ms(measured), _ms(floor), f"{floor / measured:.0%}"])
    g = 1e9
    features = c.environment.get("cpu features", "")
    vnni = any(f in features for f in ("avx512_vnni", "avx_vnni", "amx_int8"))
    isa = ("has VNNI: one instruction multiplies and adds four 8-bit pairs, so int8 can reach ~4x float32"
           if vnni else "has no VNNI: int8 products take three AVX2 instructions per step, so int8 reaches ~2x "
           "float32 at best")  # fmt: skip
    lines = [
        "## The encoder against the machine's limit",
        "",
        f"One encoder run on a 30 s window is {work.total / g:.1f} G operations (a multiply-add counts 2): "
        f"linear layers {work.linear / g:.1f} G, attention products {work.attention / g:.1f} G, cross-attention "
        f"K/V {work.cross_kv / g:.1f} G, convolutions {work.convolutions / g:.1f} G. In this run ONNX Runtime "
        f"reached {tp.float32 / g:.0f} G operations/s in float32 and {tp.int8 / g:.0f} G/s in int8 "
        f"({tp.int8_speedup:.1f}x) on one (1500 x 512) @ (512 x 2048) product with {tp.threads} threads "
        "(best of 7 rounds, in turns). This CPU " + isa + ".",
        "",
        markdown_table(["encoder", "measured ms / window", "floor ms", "floor / measured"], rows),
        "",
        "*floor*: the time if every product ran at the measured rate and nothing else took time; for int8, "
        "the linear layers and K/V at the int8 rate, the attention products (two activations: they stay float32) "
        "and the convolutions at the float32 rate. So int8 / fp32 can not go below "
        f"{tp.floor_seconds(work, 'int8') / tp.floor_seconds(work, 'fp32'):.2f} on this machine with these files, "
        f"however fast the rest gets; with every product in int8 it could not go below {1 / tp.int8_speedup:.2f}.",
        "",
    ]
    return "\n".join(lines)


def accuracy_note(c: Comparison) -> str:
    int8 = int8_accuracy(c)
    if not int8:
        return ""
    difference, low, high, errors32, errors8, words = int8
    return (f"int8 vs fp32: {errors8} vs {errors32} word errors in {words} words, {difference * 100:+.2f} points; "
            f"95% paired bootstrap interval {low * 100:+.2f} to {high * 100:+.2f} points (utterances resampled "
            "10,000 times, both backends' errors counted on each resample). One word is "
            f"{100 / words:.2f} points of this set.")  # fmt: skip


def _sweep_link(c: Comparison) -> str:
    """Where int8 hurts, layer group by layer group: a separate, slower measurement (04 --sensitivity)."""
    from ..export.sensitivity import SWEEP_REPORT

    path = c.settings.model_dir / SWEEP_REPORT
    if path.is_file():
        measured = next((line.split(" by ")[0] for line in path.read_text().splitlines()
                         if line.startswith("Measured on")), "at another time")  # fmt: skip
        return (f"Where int8 hurts, layer group by layer group: [{SWEEP_REPORT}]({SWEEP_REPORT}), from "
                f"`python 04-compare-models.py --sensitivity`, a separate run ({measured.lower()}).")
    return "Where int8 hurts, layer group by layer group: run `python 04-compare-models.py --sensitivity`."


def render_markdown(c: Comparison) -> str:
    st = c.settings
    env = c.environment
    parts = [
        "# whisper-base: ONNX precisions and runtimes compared",
        "",
        f"Measured on {c.started:%Y-%m-%d %H:%M %Z} on {env.get('cpu')} ({env.get('cores')} cores, "
        f"{st.threads} threads per backend), in one run of `{st.command or 'python 04-compare-models.py'}` "
        f"that took {c.seconds / 60:.1f} minutes. Every number below comes from that run.",
        "",
        f"![overview]({PLOTS['overview']})",
        "",
        "## What this run shows",
        "",
        findings_table(c),
        "",
    ]
    if c.skipped:
        parts += ["Skipped: " + "; ".join(f"{LABELS[n]}: {why}" for n, why in c.skipped.items()), ""]
    parts += [
        "## Size on disk",
        "",
        size_table(c),
        "",
        f"![size]({PLOTS['size']})",
        "",
        f"## Speed: {st.clip.path.name} ({c.clip_seconds:.1f} s), {_n(st.repeats, 'interleaved round')}",
        "",
        speed_table(c),
        "",
        f"![latency]({PLOTS['latency']})",
        "",
        "- *encoder*: seconds inside the encoder for one 30 s window (every clip is padded to 30 s, so this "
        "does not depend on the clip's length); *decoder*: seconds inside decoder calls divided by the tokens "
        "they produced (for faster-whisper, CTranslate2's whole generate() call, which also picks the tokens); "
        "*whole clip*: audio array in, text out. Medians over the rounds.",
        "- *speed-up vs HF*: median over rounds of (HF PyTorch time / this backend's time) in the same round; "
        "in brackets the lowest and highest round. *test set s*: seconds for all test utterances, transcribed "
        "in turns during the accuracy pass.",
        "- " + _noise_note(c.speed_cpu, "the speed rounds") + " " + _noise_note(c.accuracy_cpu, "the accuracy pass"),
        "",
        _fp16_explanation(c),
        machine_limit(c),
        f"## Accuracy: {_n(len(c.utterances), 'English utterance')}, {next(iter(c.accuracy.values())).words if c.accuracy else 0} words",
        "",
        accuracy_table(c),
        "",
        accuracy_note(c),
        "",
        f"![wer]({PLOTS['wer']})",
        "",
        "Word error rate = (substituted + deleted + inserted words) / reference words, over the whole set, "
        "after Whisper's English text normalizer (transformers' EnglishTextNormalizer: case, punctuation, "
        "number words) on both sides; computed with jiwer.",
        "",
        "Sources, all real speech (`whisper_lab/audio/speech_data.py`: the JFK clip ships in samples/, the rest comes "
        "from Debian packages pinned by URL and SHA-256, fetched once into the cache): " + _sources(c),
        "",
        "## Peak memory",
        "",
        memory_table(c),
        "",
        f"![memory]({PLOTS['memory']})",
        "",
        "Each backend ran alone in a fresh Python process (`python -m whisper_lab.compare.memory_probe BACKEND`): "
        f"import, load the model, transcribe {st.clip.path.name} twice, then read the process's peak resident "
        "memory, `VmHWM` in /proc/self/status (not getrusage's ru_maxrss, which a child inherits from its "
        "parent across fork + exec). It includes the interpreter and libraries (PyTorch and transformers "
        "weigh a few hundred MB before any model), as a standalone transcription script would.",
        "",
        "## What the conversion changed in the graphs",
        "",
        structure_table(c),
        "",
        "'at run time': the graph ONNX Runtime actually executes after its load-time rewrites (fusions such as "
        "DynamicQuantizeMatMul, and Casts for float16). For every op type, node by node, run "
        "`python 04-compare-models.py --diff-precisions fp32 int8` (or `fp32 fp16`).",
        "",
        _sweep_link(c),
        "",
        "## Per utterance",
        "",
        per_utterance_table(c),
        "",
        "### Where the backends wrote different words",
        "",
        disagreements(c),
        "",
        "## Environment",
        "",
        markdown_table(["", "value"], [[k, v] for k, v in env.items()], align="ll"),
        "",
    ]
    return "\n".join(parts)


def _sources(c: Comparison) -> str:
    from ..audio.speech_data import PACKAGES

    counts: dict[str, int] = {}
    for u in c.utterances:
        counts[u.source] = counts.get(u.source, 0) + 1
    described = [f"{source} ({n})" for source, n in counts.items()]
    licences = "; ".join(f"{p.name}: {p.licence}" for p in PACKAGES.values())
    return ", ".join(described) + f". Licences: JFK sample: public domain; {licences}."


def stdout_summary(c: Comparison, report_path: Path) -> str:
    blocks = [
        "Size on disk", size_table(c),
        f"Speed ({c.settings.clip.path.name}, {_n(c.settings.repeats, 'interleaved round')}, medians)", speed_table(c),
        f"Accuracy ({_n(len(c.utterances), 'utterance')})", accuracy_table(c),
        "Peak memory (each backend in its own process)", memory_table(c),
        "What this run shows", findings_table(c),
    ]  # fmt: skip
    out = []
    for title, table in zip(blocks[::2], blocks[1::2]):
        out += [title, table, ""]
    for name, why in c.skipped.items():
        out.append(f"Skipped {LABELS[name]}: {why}")
    for share, what in ((c.speed_cpu, "the speed rounds"), (c.accuracy_cpu, "the accuracy pass")):
        note = _noise_note(share, what)
        if note:
            out.append(note)
    out.append(f"\nReport: {report_path} (plots beside it)")
    return "\n".join(out)


def write_report(c: Comparison, folder: Path) -> Path:
    """report.md and its PNGs into `folder`, each written atomically; returns the report's path."""
    write_plots(c, folder)
    target = folder / REPORT_NAME
    with atomic_file(target) as tmp:
        tmp.write_text(render_markdown(c), encoding="utf-8")
    return target


__all__ = ["write_report", "render_markdown", "stdout_summary", "findings", "PLOTS", "REPORT_NAME"]
