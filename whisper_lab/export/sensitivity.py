"""Where int8 hurts: quantize everything but one layer group, and see how much closer to fp32 that gets.

A word error rate needs thousands of words to show a difference of half a point,
far too slow to repeat for each of ~30 layer groups. So the sweep compares
*probabilities* instead, with teacher forcing: for each utterance, the fp32
model's own transcript is fed to the decoder in one call, and at every position
we compare the next-token distribution of the model under test with fp32's:

    KL     Kullback-Leibler divergence KL(fp32 || test), in millinats per token:
           0 when the two agree exactly; grows with every probability moved
    flips  positions where the most likely token differs from fp32's: the
           places where greedy decoding would start writing different words

Row "all int8" is the int8 graphs as shipped; each group row keeps that one
group in float32 and everything else int8, so "share of the error" says how
much of all-int8's KL that group causes. A group worth keeping in float is one
with a large share for few megabytes. The "one more in int8" rows quantize
something the shipped files keep float (attention products, convolutions) or
use one scale per matrix instead of per column, to show what that would cost.
"""

from __future__ import annotations

import datetime
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..onnx_files import ExportedPair, onnx_pair
from .precision import DEFAULT_FLOAT_GROUPS, layer_groups, quantize_int8


@dataclass
class Variant:
    name: str
    part: str  # "encoder", "decoder" or "both": which graph differs from the shipped int8
    options: dict  # keyword arguments of quantize_int8
    float_mb: float = 0.0  # extra MB on disk when this group stays float32


@dataclass
class SweepRow:
    variant: Variant
    kl_mnats: float  # mean KL(fp32 || variant) per token, in millinats
    flips: int
    positions: int
    seconds: float  # quantize + measure, for the log


def _softmax_log(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    return logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)


class TeacherForcing:
    """fp32's transcripts of the utterances, and its token distributions along them, to compare against."""

    def __init__(self, fp32: ExportedPair, utterances, threads: int | None = None, log: Callable[[str], None] = print):
        from ..audio.loading import load_audio
        from ..audio.log_mel import log_mel_spectrogram
        from ..transcribe.onnx_whisper import OnnxWhisper

        self.threads = threads
        reference = OnnxWhisper(*fp32, threads=threads)
        self.spec = reference.spec
        self.mels, self.feeds = [], []
        for utterance in utterances:
            mel = log_mel_spectrogram(load_audio(utterance.path), self.spec.n_mels)
            prompt = reference.prompt("en", "transcribe", timestamps=False)
            tokens = reference.decode_window(mel, prompt, timestamps=False)
            self.mels.append(mel)
            # prompt + transcript in, so the logits predict transcript tokens and <|endoftext|>
            self.feeds.append((prompt + tokens, len(prompt) - 1))
        self.reference_logprobs = self._logprobs(reference, [reference.encode(m[None]) for m in self.mels])
        log(f"  fp32 reference: {len(self.mels)} utterances, {self.positions} token positions")

    @property
    def positions(self) -> int:
        return sum(len(tokens) - first for tokens, first in self.feeds)

    def _logprobs(self, whisper, encoded) -> list[np.ndarray]:
        out = []
        for (tokens, first), (cross_k, cross_v) in zip(self.feeds, encoded):
            cache = whisper.empty_cache()
            logits, _, _ = whisper.decoder_step([tokens], cache, cache, cross_k, cross_v)
            out.append(_softmax_log(logits[0, first:]))
        return out

    def encoded(self, whisper) -> list:
        return [whisper.encode(m[None]) for m in self.mels]

    def compare(self, whisper, encoded=None) -> tuple[float, int]:
        """(mean KL(fp32 || whisper) in millinats per token, positions whose top token differs)."""
        test = self._logprobs(whisper, encoded if encoded is not None else self.encoded(whisper))
        kl, flips = 0.0, 0
        for ref, own in zip(self.reference_logprobs, test):
            kl += float((np.exp(ref) * (ref - own)).sum())
            flips += int((ref.argmax(-1) != own.argmax(-1)).sum())
        return 1000 * kl / self.positions, flips


def sweep_variants(fp32: ExportedPair) -> list[Variant]:
    """'all int8', one row per layer group kept float, and the 'one more in int8' rows."""
    rows = [Variant("all int8 (as shipped)", "both", {})]
    for part, path in (("encoder", fp32.encoder), ("decoder", fp32.decoder)):
        groups = layer_groups(path)
        sizes = _float_megabytes(path, groups)
        for group in groups:
            if group in DEFAULT_FLOAT_GROUPS or group == "encoder convolutions":
                continue
            rows.append(Variant(f"{group} in float", part, {"float_groups": (*DEFAULT_FLOAT_GROUPS, group)}, sizes[group]))
    rows += [
        Variant("one scale per matrix (per tensor)", "both", {"per_channel": False}),
        Variant("attention products in int8 too", "both", {"attention": True}),
        Variant("convolutions in int8 too", "encoder", {"convolutions": True}),
    ]
    return rows


def _float_megabytes(path: Path, groups: dict[str, list[str]]) -> dict[str, float]:
    """MB a group adds when kept float32 instead of int8: 3 bytes per weight."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    sizes = {i.name: numpy_helper.to_array(i).size for i in model.graph.initializer}
    by_node = {n.name: n for n in model.graph.node}
    out = {}
    for group, names in groups.items():  # a weight read twice (the token table) counts once
        weights = {i for name in names for i in by_node[name].input if sizes.get(i, 0) > 4096}
        out[group] = sum(3 * sizes[i] for i in weights) / 1e6
    return out


def _make_variant(variant: Variant, fp32_path: Path, shipped_path: Path, target: Path) -> None:
    """The shipped int8 graph with one group's weight products put back in float32; quantize_int8 for the rest.

    Putting a group back is the same graph quantize_int8(float_groups=...) writes (every
    product is quantized on its own), in a second instead of minutes: the MatMulInteger
    chain of each of the group's MatMuls gives way to the fp32 MatMul, and what only it
    used (a DynamicQuantizeLinear, int8 weights, scales) goes away.
    """
    groups = variant.options.get("float_groups", ())
    others = {k: v for k, v in variant.options.items() if k != "float_groups"}
    new = [g for g in groups if g not in DEFAULT_FLOAT_GROUPS]
    if others or len(new) != 1 or new[0] == "token table":
        quantize_int8(fp32_path, target, **variant.options)
        return
    import onnx

    from .onnx_export import save_onnx

    fp32 = onnx.load(str(fp32_path))
    model = onnx.load(str(shipped_path))
    names = set(layer_groups(fp32_path)[new[0]])
    originals = {n.name: n for n in fp32.graph.node if n.name in names}
    quantized_outputs = {f"{n}_quant": originals[n] for n in names}
    nodes = []
    for node in model.graph.node:
        if node.name in quantized_outputs:  # MatMulInteger -> the float MatMul, in its place
            nodes.append(quantized_outputs[node.name])
        elif not any(node.name.startswith(f"{n}_quant") for n in names):
            nodes.append(node)
    # the Cast and the two Muls behind each removed MatMulInteger now feed nothing: drop every dead node
    outputs = {o.name for o in model.graph.output}
    while True:
        used = {i for n in nodes for i in n.input} | outputs
        alive = [n for n in nodes if any(o in used for o in n.output)]
        if len(alive) == len(nodes):
            break
        nodes = alive
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    used = {i for n in nodes for i in n.input}
    kept = [i for i in model.graph.initializer if i.name in used]
    have = {i.name for i in kept}
    kept += [i for i in fp32.graph.initializer if i.name in used and i.name not in have]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    save_onnx(model, target)


@dataclass
class Sweep:
    rows: list[SweepRow]
    utterances: int
    positions: int
    started: datetime.datetime
    seconds: float

    def table(self) -> str:
        from ..tables import markdown_table

        base = self.rows[0].kl_mnats
        table = []
        for r in self.rows:
            share = f"{(base - r.kl_mnats) / base:+.0%}" if r is not self.rows[0] and base > 0 else "-"
            table.append([r.variant.name, f"{r.kl_mnats:.2f}", f"{r.flips}", share,
                          f"{r.variant.float_mb:.1f}" if r.variant.float_mb else "-"])  # fmt: skip
        return markdown_table(["variant", "KL vs fp32 (mnat/token)", f"top-token flips (of {self.positions})",
                               "share of all-int8's KL removed", "MB more on disk"], table, align="lrrrr")  # fmt: skip


def run_sweep(model_dir: Path, model_name: str, utterances, threads: int | None = None,
              log: Callable[[str], None] = print) -> Sweep:  # fmt: skip
    """Measure every variant of `sweep_variants` against fp32 on `utterances`."""
    from ..transcribe.onnx_whisper import OnnxWhisper

    started, clock = datetime.datetime.now().astimezone(), time.perf_counter()
    fp32, shipped = onnx_pair(model_dir, model_name, "fp32"), onnx_pair(model_dir, model_name, "int8")
    log("  transcribing the utterances with fp32 ...")
    forcing = TeacherForcing(fp32, utterances, threads, log)
    shipped_whisper = OnnxWhisper(*shipped, threads=threads)
    shipped_encoded = forcing.encoded(shipped_whisper)  # decoder rows reuse the shipped encoder's output
    rows = []
    with tempfile.TemporaryDirectory(prefix="int8-sweep-") as folder:
        work = Path(folder)  # the variants live here, next to a link to the tokenizer, and vanish afterwards
        tokenizer = model_dir / f"{model_name}_tokenizer.json"
        (work / tokenizer.name).symlink_to(tokenizer.resolve())
        for variant in sweep_variants(fp32):
            start = time.perf_counter()
            encoder, decoder = shipped.encoder, shipped.decoder
            if variant.part in ("encoder", "both") and variant.options:
                encoder = work / shipped.encoder.name
                _make_variant(variant, fp32.encoder, shipped.encoder, encoder)
            if variant.part in ("decoder", "both") and variant.options:
                decoder = work / shipped.decoder.name
                _make_variant(variant, fp32.decoder, shipped.decoder, decoder)
            whisper = OnnxWhisper(encoder, decoder, threads=threads)
            kl, flips = forcing.compare(whisper, shipped_encoded if encoder == shipped.encoder else None)
            rows.append(SweepRow(variant, kl, flips, forcing.positions, time.perf_counter() - start))
            log(f"  {variant.name:40s} KL {kl:7.2f} mnat/token, {flips} flips ({time.perf_counter() - start:.0f} s)")
    return Sweep(rows, len(utterances), forcing.positions, started, time.perf_counter() - clock)


SWEEP_REPORT = "sensitivity.md"


def write_sweep(sweep: Sweep, folder: Path, command: str) -> Path:
    """sensitivity.md into `folder`, written atomically; returns its path."""
    from ..files import atomic_file

    text = "\n".join([
        "# Where int8 hurts: a layer-group sensitivity sweep",
        "",
        f"Measured on {sweep.started:%Y-%m-%d %H:%M %Z} by `{command}` in {sweep.seconds / 60:.0f} minutes: "
        f"{sweep.utterances} utterances, {sweep.positions} token positions (fp32's own transcripts, teacher-forced).",
        "",
        sweep.table(),
        "",
        *__doc__.split("\n\n", 1)[1].split("\n"),
    ])  # fmt: skip
    target = folder / SWEEP_REPORT
    with atomic_file(target) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return target
