"""7-bit or 8-bit int8 weights: word error rate and encoder output error against fp32, side by side.

    python benchmarks/int8_weight_bits.py                      # the large test set (362 utterances)
    python benchmarks/int8_weight_bits.py --utterances 30      # a quick look

The lab's int8 files keep weights in 7 bits (reduce_range): on x86 CPUs without
VNNI, ONNX Runtime's u8 x s8 kernel (vpmaddubsw) sums two products into 16 bits
and clips at 32767, which full-range weights can reach. This script makes the
8-bit variant next to the shipped files and decodes every utterance with fp32,
int8 (7-bit) and int8 (8-bit), with the lab's default decoding (as
tests/test_int8_accuracy.py does), in one run. The result holds for
the CPU it runs on only: it prints that CPU's int8 instructions first.

Run from the repository folder after `python 03-export-encoder-decoder.py --precision all`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from whisper_lab.audio.loading import load_audio
from whisper_lab.audio.log_mel import encoder_input
from whisper_lab.audio.speech_data import english_test_set
from whisper_lab.compare.throughput import this_cpu
from whisper_lab.compare.wer import paired_difference, utterance_errors, word_count
from whisper_lab.errors import LabError, run_cli
from whisper_lab.export.precision import quantize_int8
from whisper_lab.onnx_files import onnx_pair
from whisper_lab.tables import markdown_table
from whisper_lab.transcribe.onnx_whisper import OnnxWhisper

def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=REPO / "whisper_model_dir")
    parser.add_argument("--utterances", default="all", help="how many of the test set, or 'all' (default)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    count = args.utterances if args.utterances == "all" else int(args.utterances)
    fp32, int8 = onnx_pair(args.model_dir, "whisper-base", "fp32"), onnx_pair(args.model_dir, "whisper-base", "int8")
    for path in (*fp32, *int8):
        if not Path(path).is_file():
            raise LabError(f"{path} is missing; run python 03-export-encoder-decoder.py --precision all "
                           f"--output-dir {args.model_dir}")  # fmt: skip
    print(f"cpu: {this_cpu().describe()}")
    with tempfile.TemporaryDirectory(dir=args.model_dir) as folder:
        full = []
        for part in ("encoder", "decoder"):  # the 8-bit variant, beside the shipped files (same tokenizer)
            target = Path(folder) / Path(getattr(int8, part)).name
            log(f"quantizing the {part} with full-range (8-bit) weights ...")
            quantize_int8(getattr(fp32, part), target, reduce_range=False)
            full.append(target)
        (Path(folder) / "whisper-base_tokenizer.json").symlink_to(Path(fp32.encoder).parent / "whisper-base_tokenizer.json")
        models = {"fp32": OnnxWhisper(*fp32, threads=args.threads),
                  "int8 7-bit (shipped)": OnnxWhisper(*int8, threads=args.threads),
                  "int8 8-bit": OnnxWhisper(*full, threads=args.threads)}  # fmt: skip
        chosen = english_test_set(count)
        errors = {name: [] for name in models}
        encoder_error = {name: [] for name in models}
        for i, utterance in enumerate(chosen, 1):
            audio = load_audio(utterance.path)
            mel = encoder_input(audio)[None]
            reference_k = models["fp32"].encode(mel)[0]
            for name, whisper in models.items():
                errors[name].append(utterance_errors(utterance.text, whisper.transcribe(audio)))
                if name != "fp32":  # the cross-attention keys every decoder step reads, relative to fp32's
                    k = whisper.encode(mel)[0]
                    encoder_error[name].append(float(np.linalg.norm(k - reference_k) / np.linalg.norm(reference_k)))
            if i % 20 == 0:
                so_far = sum(word_count(u.text) for u in chosen[:i])
                log(f"{i}/{len(chosen)} utterances, {so_far} words; errors so far: "
                    + ", ".join(f"{name} {sum(e)}" for name, e in errors.items()))
    words = [word_count(u.text) for u in chosen]
    rows = []
    for name in models:
        wer = sum(errors[name]) / sum(words)
        if name == "fp32":
            rows.append([name, f"{wer:.2%}", "", "", ""])
            continue
        difference, low, high = paired_difference(errors["fp32"], errors[name], words)
        rel = np.array(encoder_error[name])
        rows.append([name, f"{wer:.2%}", f"{difference * 100:+.2f} ({low * 100:+.2f} to {high * 100:+.2f})",
                     f"{rel.mean():.4f}", f"{rel.max():.4f}"])  # fmt: skip
    print(f"{len(chosen)} utterances, {sum(words)} words, default decoding, {args.threads} threads\n")
    print(markdown_table(["model", "WER", "minus fp32, points (95% interval)", "encoder K error, mean",
                          "encoder K error, max"], rows))  # fmt: skip
    print("\nencoder K error: |K - K_fp32| / |K_fp32| of the cross-attention keys, per utterance")


if __name__ == "__main__":
    run_cli(main)
