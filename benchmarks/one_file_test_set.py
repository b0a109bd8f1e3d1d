"""Step 9's one file with its host loop against 03's default decoding, on the large test set.

    python benchmarks/one_file_test_set.py [--model-dir whisper_model_dir] [--precision int8]
                                           [--utterances all] [--earlier FILE]

Decodes every utterance in turns (who goes first alternates): 03's pair with the
safeguards (`OnnxWhisper.transcript`), the one file through its host loop
(`EndToEnd.transcribe`), and, with `--earlier`, a one file of an earlier build
that decodes audio -> text in a single greedy run (feeds only `audio`, as the
one-file models before the host loop did). Prints the corpus WER of each, the
total time and its ratio, and the CPU's int8 instructions: times on a shared
VM vary, ratios measured side by side are what carry over.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from whisper_lab.audio.loading import load_audio
from whisper_lab.audio.speech_data import english_test_set
from whisper_lab.compare.throughput import this_cpu
from whisper_lab.compare.wer import word_error_rate
from whisper_lab.end2end.pipeline import end2end_file
from whisper_lab.end2end.session import EndToEnd
from whisper_lab.errors import run_cli
from whisper_lab.tables import markdown_table
from whisper_lab.transcribe.onnx_whisper import load_onnx_whisper


def earlier_one_file(path: Path, threads: int):
    """A one file that takes only `audio` and returns (tokens, text, ...) in one run."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    required = [i.name for i in session.get_inputs()]
    if required != ["audio"]:
        raise SystemExit(f"{path}: expected a file whose only input is audio, it has {required}")
    return lambda audio: bytes(session.run(["text"], {"audio": audio[:480_000]})[0]).decode("utf-8", "replace").strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=REPO / "whisper_model_dir")
    parser.add_argument("--precision", choices=["fp32", "int8"], default="int8")
    parser.add_argument("--utterances", default="all", help="how many of the 362 (default: all)")
    parser.add_argument("--earlier", type=Path, help="a one file of an earlier build, for the time comparison")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(f"cpu: {this_cpu().describe()}", flush=True)
    count = args.utterances if args.utterances == "all" else int(args.utterances)
    pair = load_onnx_whisper(args.model_dir, "whisper-base", args.precision, threads=args.threads)
    one_file = EndToEnd(end2end_file(args.model_dir, "whisper-base", args.precision), threads=args.threads)
    ways = {"03 default": lambda a: pair.transcript(a).text, "05 host loop": lambda a: one_file.transcribe(a).text}
    if args.earlier:
        ways["earlier one file (one greedy run)"] = earlier_one_file(args.earlier, args.threads)
    utterances = english_test_set(count)
    texts = {key: [] for key in ways}
    seconds = dict.fromkeys(ways, 0.0)
    for run in ways.values():
        run(load_audio(utterances[0].path))  # warm-up: the first run allocates and prepacks weights
    for i, utterance in enumerate(utterances):
        audio = load_audio(utterance.path)
        order = list(ways) if i % 2 == 0 else list(reversed(ways))
        for key in order:
            start = time.perf_counter()
            texts[key].append(ways[key](audio))
            seconds[key] += time.perf_counter() - start
        if (i + 1) % 25 == 0:
            print(f"{i + 1} of {len(utterances)} utterances ...", file=sys.stderr, flush=True)
    references = [u.text for u in utterances]
    base = seconds["05 host loop"]
    rows = [[key, f"{word_error_rate(references, texts[key]):.4f}", f"{seconds[key]:.1f} s",
             f"{seconds[key] / len(utterances):.3f} s", f"{seconds[key] / base:.3f}"] for key in ways]  # fmt: skip
    words = sum(len(r.split()) for r in references)
    print(f"\n{len(utterances)} utterances, {words} words, {args.precision}, {args.threads} threads")
    print(markdown_table(["decoder", "WER", "time", "per clip", "time / 05 host loop"], rows))


if __name__ == "__main__":
    run_cli(main)
