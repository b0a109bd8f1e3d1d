"""How right are the word timestamps, and what do they cost? The figures of docs/word-timestamps.md.

    python benchmarks/word_timestamps.py accuracy              # 60 real utterances: 03 fp32/int8 vs two references
    python benchmarks/word_timestamps.py accuracy --utterances 20
    python benchmarks/word_timestamps.py speed                 # 03 with and without word timestamps, in turns
    python benchmarks/word_timestamps.py speed --compare-with ../main   # this checkout's default path vs another's

Run from the repository folder after
`python 03-export-encoder-decoder.py --precision int8 --word-timestamps` (and the same for fp32).

Two references for when each word starts:

* transformers on the same weights (PyTorch): generate(return_token_timestamps=True),
  the timing behind its pipeline's return_timestamps="word" (02 --word-timestamps);
* a forced alignment by CMU PocketSphinx (PyPI `pocketsphinx`, which ships its
  acoustic model and dictionary): it knows the reference text and finds where each
  word of it is spoken, phone by phone. Utterances with a word missing from its
  dictionary are left out of this comparison.

Words are matched by their spelling (lower case, no punctuation) along the two
word sequences (difflib), so a word one transcriber missed does not shift the rest.
Absolute times mean little on a shared machine: compare the ratios, measured in turns.
"""

from __future__ import annotations

import argparse
import difflib
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from whisper_lab.audio.loading import SAMPLE_RATE, load_audio
from whisper_lab.audio.speech_data import english_test_set, librivox_utterances, JFK
from whisper_lab.errors import run_cli
from whisper_lab.transcribe.onnx_whisper import load_onnx_whisper
from whisper_lab.transcribe.options import DecodingOptions

WORDS = DecodingOptions(word_timestamps=True)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cpu_flags() -> str:
    flags = set(Path("/proc/cpuinfo").read_text().split()) if Path("/proc/cpuinfo").exists() else set()
    shown = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    return ", ".join(shown) + (" (no avx512_vnni)" if "avx512_vnni" not in flags else "")


def spelling(word: str) -> str:
    return re.sub(r"[^a-z0-9']", "", word.lower())


def starts(transcript) -> list[tuple[str, float]]:
    return [(spelling(w.word), w.start) for s in transcript.segments for w in s.words if spelling(w.word)]


def matched_differences(ours: list[tuple[str, float]], reference: list[tuple[str, float]]) -> list[float]:
    """|start difference| of every word the two sequences share, matched in order."""
    matcher = difflib.SequenceMatcher(a=[w for w, _ in ours], b=[w for w, _ in reference], autojunk=False)
    out = []
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            out.append(abs(ours[block.a + k][1] - reference[block.b + k][1]))
    return out


class ForcedAligner:
    """PocketSphinx aligning a known text to the audio: (word, start) per word of the text."""

    def __init__(self):
        from pocketsphinx import Decoder

        self.decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")

    def align(self, audio: np.ndarray, text: str) -> list[tuple[str, float]] | None:
        words = [spelling(w) for w in text.split() if spelling(w)]
        if not words or any(self.decoder.lookup_word(w) is None for w in words):
            return None  # a word outside its dictionary: it cannot align this text
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes()
        self.decoder.set_align_text(" ".join(words))
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, full_utt=True)
        self.decoder.end_utt()
        found = [(re.sub(r"\(\d+\)$", "", s.word), s.start_frame / 100) for s in self.decoder.seg()
                 if not s.word.startswith(("<", "["))]  # fmt: skip
        return found if len(found) == len(words) else None


def summary(label: str, diffs: list[float]) -> str:
    if not diffs:
        return f"{label:32s}  no words matched"
    d = np.array(diffs)
    return (f"{label:32s}  words {len(d):4d}  median {np.median(d):.3f} s  p90 {np.percentile(d, 90):.3f} s  "
            f"within 0.1 s {np.mean(d <= 0.1):5.1%}  within 0.3 s {np.mean(d <= 0.3):5.1%}")  # fmt: skip


def accuracy(args) -> None:
    from whisper_lab.transcribe.hf_whisper import HFWhisper
    from whisper_lab.weights.model_source import resolve_model

    utterances = english_test_set(args.utterances)
    hf = HFWhisper.load(resolve_model())
    onnx = {p: load_onnx_whisper(args.model_dir, "whisper-base", p, word_timestamps=True) for p in ("fp32", "int8")}
    aligner = ForcedAligner()
    diffs: dict[str, list[float]] = {}
    first_word: dict[str, list[float]] = {}
    left_out = 0
    for n, utterance in enumerate(utterances, start=1):
        audio = load_audio(utterance.path)
        timed = {"hf": starts(hf.word_transcript(audio, options=WORDS))}
        for precision, whisper in onnx.items():
            timed[precision] = starts(whisper.transcript(audio, options=WORDS))
        forced = aligner.align(audio, utterance.text)
        left_out += forced is None
        pairs = [("03 fp32 vs transformers", "fp32", timed["hf"]), ("03 int8 vs transformers", "int8", timed["hf"]),
                 ("03 int8 vs 03 fp32", "int8", timed["fp32"])]  # fmt: skip
        if forced:
            pairs += [("03 fp32 vs forced alignment", "fp32", forced), ("03 int8 vs forced alignment", "int8", forced),
                      ("transformers vs forced alignment", "hf", forced)]  # fmt: skip
        for label, ours, reference in pairs:
            d = matched_differences(timed[ours], reference)
            diffs.setdefault(label, []).extend(d)
            if d and timed[ours] and reference and timed[ours][0][0] == reference[0][0]:
                first_word.setdefault(label, []).append(d[0])
        log(f"[{n}/{len(utterances)}] {utterance.id}: {len(timed['fp32'])} words"
            + ("" if forced else " (no forced alignment: a word outside PocketSphinx's dictionary)"))  # fmt: skip
    print(f"\nStart-time differences of matched words, {len(utterances)} utterances "
          f"(forced alignment on {len(utterances) - left_out}); CPU: {cpu_flags()}")
    for label, d in diffs.items():
        print(summary(label, d))
    print("\nfirst word of each utterance only:")
    for label, d in first_word.items():
        print(summary(label, d))
    fp32_median = np.median(diffs["03 fp32 vs transformers"])
    int8_median = np.median(diffs["03 int8 vs transformers"])
    print(f"\nint8 median - fp32 median (vs transformers): {int8_median - fp32_median:+.3f} s")


def speed(args) -> None:
    clips = [JFK, *librivox_utterances()[:4]]
    audios = [load_audio(u.path) for u in clips]
    seconds = sum(len(a) for a in audios) / SAMPLE_RATE
    if args.compare_with:
        return compare_checkouts(args, clips)
    plain = load_onnx_whisper(args.model_dir, "whisper-base", args.precision)
    words = load_onnx_whisper(args.model_dir, "whisper-base", args.precision, word_timestamps=True)
    runs = {"word timestamps off": (plain, DecodingOptions()), "word timestamps on": (words, WORDS)}
    times: dict[str, list[float]] = {label: [] for label in runs}
    for whisper, options in runs.values():  # warm-up
        whisper.transcript(audios[0], options=options)
    for round_ in range(args.rounds):
        for label, (whisper, options) in runs.items():
            start = time.perf_counter()
            for audio in audios:
                whisper.transcript(audio, options=options)
            times[label].append(time.perf_counter() - start)
        log(f"round {round_ + 1}/{args.rounds}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
    off, on = (statistics.median(times[k]) for k in runs)
    print(f"{len(clips)} clips, {seconds:.0f} s of speech, {args.precision}, median of {args.rounds} rounds in turns; "
          f"CPU: {cpu_flags()}")  # fmt: skip
    print(f"word timestamps off  {off:.2f} s\nword timestamps on   {on:.2f} s\nratio on / off       {on / off:.3f}")


CHILD = """
import sys, time
sys.path.insert(0, sys.argv[1])
from whisper_lab.audio.loading import load_audio
from whisper_lab.transcribe.onnx_whisper import load_onnx_whisper
whisper = load_onnx_whisper(sys.argv[2], "whisper-base", sys.argv[3])
audios = [load_audio(p) for p in sys.argv[4:]]
whisper.transcript(audios[0])
start = time.perf_counter()
for audio in audios:
    whisper.transcript(audio)
print(time.perf_counter() - start)
"""


def compare_checkouts(args, clips) -> None:
    """This checkout's default path (word timestamps off) against another checkout's, same files, in turns."""
    checkouts = {"this checkout": REPO, f"{args.compare_with}": Path(args.compare_with).resolve()}
    times: dict[str, list[float]] = {label: [] for label in checkouts}
    for round_ in range(args.rounds):
        for label, root in checkouts.items():
            out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(Path(args.model_dir).resolve()),
                                  args.precision, *[str(u.path) for u in clips]],
                                 check=True, capture_output=True, text=True, cwd=root)  # fmt: skip
            times[label].append(float(out.stdout.strip().splitlines()[-1]))
        log(f"round {round_ + 1}/{args.rounds}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
    mine, other = (statistics.median(v) for v in times.values())
    print(f"{len(clips)} clips, {args.precision}, default files, median of {args.rounds} rounds in turns; CPU: {cpu_flags()}")
    print(f"this checkout {mine:.2f} s, {args.compare_with} {other:.2f} s, ratio {mine / other:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("accuracy", "speed"))
    parser.add_argument("--utterances", type=int, default=60)
    parser.add_argument("--model-dir", type=Path, default=REPO / "whisper_model_dir")
    parser.add_argument("--precision", default="fp32", help="for speed (default fp32)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--compare-with", metavar="REPO", help="speed: another checkout of the lab, same ONNX files")
    args = parser.parse_args()
    accuracy(args) if args.what == "accuracy" else speed(args)


if __name__ == "__main__":
    run_cli(main)
