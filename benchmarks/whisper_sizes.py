"""Every Whisper size through the exporter, with random weights in the real shapes: the README's size table.

    python benchmarks/whisper_sizes.py tiny tiny.en small large-v3-turbo@384
    python benchmarks/whisper_sizes.py large-v3-turbo --precision fp32      # the > 2 GB export (~10-20 min)
    /usr/bin/time -v python benchmarks/whisper_sizes.py large-v3-turbo --precision fp32   # + peak memory

A name is a published size (weights/random_checkpoint.SIZES); `@384` narrows it to
d_model 384 with 6 heads, same layers, vocabulary and mel bands. For each one:
build the checkpoint (random weights, torch.manual_seed(0)), export it with 03's
own pipeline, then print the export time, file sizes per precision (side files
included), the fp32 difference from PyTorch (relative to the largest value, the
quantity 03 holds to 5e-4) and whether ONNX greedy decoding gives PyTorch's tokens.
Random weights decode gibberish: the tokens are compared, not the text.
Times are of this machine at that moment: on shared cores, compare them within one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from whisper_lab.errors import LabError, run_cli  # noqa: E402
from whisper_lab.weights.random_checkpoint import SIZES, WhisperShape  # noqa: E402


def shape_of(name: str) -> WhisperShape:
    size, _, width = name.partition("@")
    if size not in SIZES:
        raise LabError(f"unknown size {size!r}; use one of {', '.join(SIZES)} (optionally @384 for a narrow copy)")
    return SIZES[size].narrower(int(width), int(width) // 64) if width else SIZES[size]


def parameters(shape: WhisperShape) -> int:
    """Parameter count of a WhisperForConditionalGeneration of this shape, without building it."""
    d, ffn = shape.d_model, shape.ffn_dim
    attention = 4 * d * d + 3 * d  # q, k, v, out (k has no bias)
    mlp = 2 * d * ffn + ffn + d
    norms = 2 * d
    encoder = (shape.num_mel_bins * d * 3 + d) + (d * d * 3 + d) + 1500 * d
    encoder += shape.encoder_layers * (attention + mlp + 2 * norms) + norms
    decoder = shape.vocab_size * d + 448 * d + shape.decoder_layers * (2 * attention + mlp + 3 * norms) + norms
    return encoder + decoder


def greedy_tokens_match(source, out_dir: Path) -> str:
    """ONNX fp32 greedy vs PyTorch (transformers' generate, plain greedy) on the sample's features."""
    from whisper_lab.audio.loading import load_audio
    from whisper_lab.audio.log_mel import encoder_input
    from whisper_lab.audio.speech_data import JFK
    from whisper_lab.transcribe.hf_whisper import HFWhisper
    from whisper_lab.transcribe.onnx_whisper import load_onnx_whisper
    from whisper_lab.transcribe.options import DecodingOptions

    onnx = load_onnx_whisper(out_dir, source.name, "fp32")
    features = encoder_input(load_audio(JFK.path), onnx.spec.n_mels)
    ours = onnx.decode_window(features, onnx.prompt("en", "transcribe", False), timestamps=False)
    hf = HFWhisper.load(source, attn_implementation="eager")
    reference = hf.generate_tokens(input_features=features[None], options=DecodingOptions.plain_greedy())
    reference = [t for t in reference if t < onnx.spec.eot][: len(ours)]  # ONNX stops at 224 tokens
    return f"same {len(ours)} tokens" if ours == reference else f"DIFFER ({len(ours)} vs {len(reference)})"


def run(name: str, work: Path, precisions: list[str]) -> list[tuple]:
    from whisper_lab.export.pipeline import export_precisions
    from whisper_lab.onnx_files import onnx_size
    from whisper_lab.weights.model_source import packaged_whisper_base, resolve_model
    from whisper_lab.weights.random_checkpoint import build_random_checkpoint

    shape = shape_of(name)
    folder = work / f"whisper-{name.replace('@', '-d')}-random"
    start = time.perf_counter()
    if not (folder / "model.safetensors").is_file():
        build_random_checkpoint(folder, shape, packaged_whisper_base().path, seed=0, label=name)
    print(f"{name}: checkpoint in {time.perf_counter() - start:.0f} s ({folder})", file=sys.stderr, flush=True)
    source = resolve_model(str(folder))
    out = work / "onnx"
    results = export_precisions(source, out, precisions, force=True)
    match = greedy_tokens_match(source, out)
    rows = []
    for r in results:
        sizes = [onnx_size(p) / 1e6 for p in r.pair]
        sides = sum(1 for p in r.pair for f in p.parent.glob(f"{p.name}.*.data"))
        rows.append((name, f"{parameters(shape) / 1e6:.0f} M", r.precision, f"{r.seconds:.0f} s",
                     f"{sizes[0]:.0f}", f"{sizes[1]:.0f}", f"{sum(sizes):.0f}", str(sides),
                     f"{r.validation.worst_relative_diff:.1e}", match if r.precision == "fp32" else "-"))  # fmt: skip
    return rows


def main() -> None:
    from whisper_lab.tables import markdown_table

    parser = argparse.ArgumentParser(description="Export random-weight Whisper checkpoints of every size.")
    parser.add_argument("sizes", nargs="+", help=f"{', '.join(SIZES)}; name@384 for a narrow copy")
    parser.add_argument("--precision", choices=["fp32", "fp16", "int8", "all"], default="all")
    parser.add_argument("--work", type=Path, help="folder for checkpoints and ONNX files (default: a temporary one)")
    args = parser.parse_args()
    precisions = ["fp32", "fp16", "int8"] if args.precision == "all" else [args.precision]
    for name in args.sizes:
        shape_of(name)  # every name checked before hours of work
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        rows = []
        for name in args.sizes:
            work = (args.work or Path(tmp)) / name
            rows += run(name, work, precisions)
    print(markdown_table(("size", "parameters", "precision", "export", "encoder MB", "decoder MB", "total MB",
                          "side files", "max diff vs PyTorch (relative)", "fp32 greedy tokens vs PyTorch"), rows))  # fmt: skip
    print("\nrandom weights in the published shapes; MB include side files (ONNX external data); "
          "export = seconds for that precision (fp16/int8 are converted from the fp32 files)")


if __name__ == "__main__":
    run_cli(main)
