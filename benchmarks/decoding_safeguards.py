"""What Whisper's safeguards change, measured side by side in one run: every figure of the README's
"When Whisper makes things up" section comes from this script.

    python benchmarks/decoding_safeguards.py short       # clean speech: front ends, WER, time per clip, fallbacks
    python benchmarks/decoding_safeguards.py short --utterances all --skip-faster-whisper   # the large set
    python benchmarks/decoding_safeguards.py frontend    # non-speech, plain greedy: the two front ends
    python benchmarks/decoding_safeguards.py nonspeech   # noise, hum, speech + quiet noise: invented words
    python benchmarks/decoding_safeguards.py long        # over 5 minutes of real speech: loops, dropped words

Run from the repository folder after `python 03-export-encoder-decoder.py --precision all`.
Absolute times mean little on a shared machine: compare the ratios, measured in turns.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from whisper_lab.audio.loading import load_audio
from whisper_lab.audio.log_mel import encoder_input, log_mel_spectrogram
from whisper_lab.audio.speech_data import english_test_set, librivox_utterances
from whisper_lab.compare.wer import word_count, word_error_rate
from whisper_lab.errors import LabError, run_cli
from whisper_lab.tables import markdown_table
from whisper_lab.transcribe import trial_audio
from whisper_lab.transcribe.onnx_whisper import load_onnx_whisper
from whisper_lab.transcribe.options import DecodingOptions

PLAIN = DecodingOptions.plain_greedy()
SAFE = DecodingOptions()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def onnx(args, precision: str):
    return load_onnx_whisper(args.model_dir, "whisper-base", precision, threads=args.threads)


def hf(args):
    import torch

    from whisper_lab.transcribe.hf_whisper import HFWhisper
    from whisper_lab.weights.model_source import resolve_model

    torch.set_num_threads(args.threads)
    return HFWhisper.load(resolve_model())


def faster_whisper(args):
    from faster_whisper import WhisperModel

    from whisper_lab.weights.faster_whisper_model import ctranslate2_model_dir

    model = WhisperModel(str(ctranslate2_model_dir()), device="cpu", compute_type="int8", cpu_threads=args.threads)

    def transcribe(audio: np.ndarray) -> str:  # faster-whisper's default settings (beam 5, fallback, ...)
        segments, _ = model.transcribe(audio, language="en")
        return " ".join(s.text.strip() for s in segments).strip()

    return transcribe


def today_greedy(whisper, audio: np.ndarray) -> str:
    """The lab's decoder before the safeguards: Hugging Face's audio padding, one greedy pass."""
    prompt = whisper.prompt("en", "transcribe", timestamps=False)
    return whisper.text(whisper.decode_window(log_mel_spectrogram(audio), prompt, timestamps=False))


# --- short clean speech and the front end ---------------------------------------------------------


def zero_padded_greedy(whisper, audio: np.ndarray) -> str:
    """Plain greedy, fed the log-mel zero-padded to 3000 frames (OpenAI's front end, now the lab's)."""
    prompt = whisper.prompt("en", "transcribe", timestamps=False)
    return whisper.text(whisper.decode_window(encoder_input(audio), prompt, timestamps=False))


def short(args) -> None:
    """Clip by clip, in turns: today's greedy, greedy on the zero-padded front end, the new default.

    The first two differ only in the features (the front-end decision), the last two
    only in the safeguards; time per clip compares today's greedy with the new default.
    """
    utterances = english_test_set(args.utterances)
    audios = [load_audio(u.path) for u in utterances]
    refs = [u.text for u in utterances]
    rows = []
    for precision in args.precisions:
        whisper = onnx(args, precision)
        variants = {"today": partial(today_greedy, whisper), "zero-pad": partial(zero_padded_greedy, whisper),
                    "now": whisper.transcript}  # fmt: skip
        today_greedy(whisper, audios[0])  # warm-up
        seconds = dict.fromkeys(variants, 0.0)
        hyps = {name: [] for name in variants}
        fired = skipped = 0
        for round_ in range(args.repeats):
            for i, audio in enumerate(audios):
                names = list(variants)
                shift = (i + round_) % len(names)  # every variant goes first as often as the others
                for name in names[shift:] + names[:shift]:
                    start = time.perf_counter()
                    result = variants[name](audio)
                    seconds[name] += time.perf_counter() - start
                    if name == "now":
                        fired += result.fallbacks if round_ == 0 else 0
                        skipped += result.skipped if round_ == 0 else 0
                        result = result.text
                    if round_ == 0:
                        hyps[name].append(result)
                if (i + 1) % 50 == 0:  # the large set takes the better part of an hour per precision
                    log(f"ONNX {precision}, round {round_ + 1}: {i + 1} of {len(audios)} clips")
        n = len(audios) * args.repeats
        wer = {name: f"{word_error_rate(refs, hyps[name]):.3f}" for name in variants}
        rows.append([f"ONNX {precision}", wer["today"], wer["zero-pad"], wer["now"],
                     f"{1000 * seconds['today'] / n:.0f}", f"{1000 * seconds['now'] / n:.0f}",
                     f"{seconds['now'] / seconds['today']:.3f}", f"{fired} / {len(audios)}", f"{skipped}"])  # fmt: skip
        log(" | ".join(rows[-1]))
    if not args.skip_faster_whisper:
        transcribe = faster_whisper(args)
        rows.append(["faster-whisper (defaults)", "", "", f"{word_error_rate(refs, [transcribe(a) for a in audios]):.3f}",
                     "", "", "", "", ""])  # fmt: skip
    words = sum(word_count(r) for r in refs)
    print(f"Clean speech, {len(utterances)} utterances ({words} words), {args.repeats} round(s), variants in turns.\n"
          "WER: today = plain greedy on Hugging Face's padded audio; zero-pad = plain greedy on the zero-padded\n"
          "log-mel; now = the new default (zero-padded log-mel + safeguards). Time: now vs today, per clip.\n")  # fmt: skip
    print(markdown_table(["decoder", "WER today", "WER zero-pad", "WER now", "ms/clip today", "ms/clip now",
                          "time now/today", "fallback fired", "windows skipped"], rows))  # fmt: skip


# --- non-speech -------------------------------------------------------------------------------------


def nonspeech_clips() -> list[tuple[str, np.ndarray, str]]:
    sentence = librivox_utterances()[0]
    return [
        ("white noise, 5 s", trial_audio.white_noise(5.0), ""),
        ("hum and tones, 12 s", trial_audio.hum_and_tones(12.0), ""),
        ("a sentence, then 10 s of quiet noise", trial_audio.speech_then_noise(load_audio(sentence.path)),
         sentence.text),
    ]  # fmt: skip


def invented(reference: str, text: str) -> str:
    """Words beyond the reference: all of them for non-speech, else the WER against the sentence."""
    if not reference:
        words = word_count(text)
        return f"{words} word{'' if words == 1 else 's'}"
    return f"WER {word_error_rate(reference, text):.2f}, {word_count(text) - word_count(reference):+d} words"


def nonspeech(args) -> None:
    clips = nonspeech_clips()
    rows = []
    backends = [(f"03 ONNX {p}", lambda p=p: onnx(args, p)) for p in ("fp32", "fp16", "int8")]
    backends.insert(0, ("02 Hugging Face", lambda: hf(args)))
    for label, load in backends:
        whisper = load()
        for name, audio, reference in clips:
            before = whisper.transcribe(audio, options=PLAIN)
            after = whisper.transcribe(audio, options=SAFE)
            rows.append([label, name, invented(reference, before), invented(reference, after), repr(after[:60])])
            log(f"{label} / {name}: before {before[:80]!r} after {after[:80]!r}")
    if not args.skip_faster_whisper:
        transcribe = faster_whisper(args)
        for name, audio, reference in clips:
            text = transcribe(audio)
            rows.append(["faster-whisper (defaults)", name, "-", invented(reference, text), repr(text[:60])])
    print("Non-speech: words written where nothing (more) was said; before = --no-fallback, now = default\n")
    print(markdown_table(["transcriber", "clip", "before", "now", "text now"], rows, "lllll"))


def greedy_window(whisper, mel: np.ndarray) -> tuple[str, float]:
    """Plain greedy on one window's features: the text, and P(no speech) at the first step."""
    decoded = whisper.greedy_window(mel, whisper.prompt("en", "transcribe", timestamps=False), timestamps=False)
    return whisper.text(decoded.tokens), decoded.no_speech_prob


def frontend(args) -> None:
    """Plain greedy on non-speech, fed each front end: which one invents less, and which one the
    no-speech rule (P(no speech) > 0.6) can catch."""
    clips = nonspeech_clips()
    clips[2:2] = [(f"hum and tones, 12 s, seed {seed}", trial_audio.hum_and_tones(12.0, seed=seed), "")
                  for seed in range(1, 5)]  # fmt: skip
    rows = []
    for precision in args.precisions:
        whisper = onnx(args, precision)
        for name, audio, reference in clips:
            (today, p_today), (zero, p_zero) = (greedy_window(whisper, log_mel_spectrogram(audio)),
                                                greedy_window(whisper, encoder_input(audio)))  # fmt: skip
            rows.append([f"ONNX {precision}", name, invented(reference, today), invented(reference, zero),
                         f"{p_today:.2f}", f"{p_zero:.2f}", repr(today[:40]), repr(zero[:40])])  # fmt: skip
            log(" | ".join(rows[-1]))
    print("Front end on non-speech, plain greedy (no safeguards): Hugging Face's padded audio (HF) vs the\n"
          "zero-padded log-mel (zeros); P(no speech) at the first step, which the safeguards compare with 0.6\n")
    print(markdown_table(["decoder", "clip", "HF", "zeros", "P(no speech) HF", "P(no speech) zeros",
                          "text, HF", "text, zeros"], rows, "llllrrll"))  # fmt: skip


# --- long recording ---------------------------------------------------------------------------------


def long(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        reference, seconds = trial_audio.long_recording(Path(tmp) / "long.wav", args.min_seconds)
        audio = load_audio(Path(tmp) / "long.wav")
    ref_words = word_count(reference)
    ref_repeat, _ = trial_audio.longest_repeat(reference)
    rows = []

    def row(label: str, text: str, elapsed: float, extra: str = "") -> None:
        repeat, phrase = trial_audio.longest_repeat(text)
        rows.append([label, f"{word_count(text)} ({word_count(text) / ref_words:.1%})",
                     f"{word_error_rate(reference, text):.3f}", f"{repeat} ({phrase[:30]!r})", f"{elapsed:.0f}", extra])  # fmt: skip
        log(" | ".join(rows[-1]))

    candidates = []
    for p in args.precisions:
        candidates.append((f"03 ONNX {p}", lambda p=p: onnx(args, p), SAFE))
        if args.before:
            candidates.append((f"03 ONNX {p} --no-fallback", lambda p=p: onnx(args, p), PLAIN))
    if not args.skip_faster_whisper:
        candidates.append(("faster-whisper (defaults)", lambda: faster_whisper(args), None))
    if not args.skip_hf:
        candidates.append(("02 Hugging Face", lambda: hf(args), SAFE))
        if args.before:
            candidates.append(("02 Hugging Face --no-fallback", lambda: hf(args), PLAIN))
    for label, load, options in candidates:
        log(f"{label} ...")
        whisper = load()
        start = time.perf_counter()
        if options is None:
            text, extra = whisper(audio), ""
        else:
            t = whisper.transcript(audio, options=options)
            text = t.text
            extra = f"{t.fallbacks} fallback, {t.skipped} skipped of {t.windows} windows" if t.windows else ""
        row(label, text, time.perf_counter() - start, extra)
    print(f"Long recording: {seconds / 60:.1f} min of real speech, {ref_words} reference words "
          f"(longest repeat in the reference: {ref_repeat})\n")  # fmt: skip
    print(markdown_table(["transcriber", "words (of reference)", "WER", "longest repeat", "seconds", "safeguards"],
                         rows, "lrrrrl"))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("short", "frontend", "nonspeech", "long"))
    parser.add_argument("--model-dir", type=Path, default=REPO / "whisper_model_dir")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("WHISPER_LAB_THREADS") or 2))
    parser.add_argument("--utterances", type=lambda t: t if t == "all" else int(t), default=30,
                        help="short: size of the test set, or 'all' for the large set (362 utterances)")
    parser.add_argument("--repeats", type=int, default=1, help="short: rounds over the test set")
    parser.add_argument("--precisions", nargs="*", default=["fp32", "int8"], help="short, frontend, long")
    parser.add_argument("--min-seconds", type=float, default=330.0, help="long: length of the recording")
    parser.add_argument("--before", action="store_true", help="long: also decode with --no-fallback")
    parser.add_argument("--skip-hf", action="store_true", help="long: leave out 02")
    parser.add_argument("--skip-faster-whisper", action="store_true")
    args = parser.parse_args()
    if not (args.model_dir / "whisper-base_decoder.onnx").is_file():
        raise LabError(f"no ONNX files in {args.model_dir}; run: python 03-export-encoder-decoder.py --precision all")
    {"short": short, "frontend": frontend, "nonspeech": nonspeech, "long": long}[args.what](args)


if __name__ == "__main__":
    run_cli(main)
