"""The checks that must hold on every CPU kind, measured on this one: run it on each machine you have.

    python benchmarks/same_results_checks.py [--model-dir whisper_model_dir] [--skip-hf]

- speech followed by 10 s of quiet noise (4 LibriVox sentences): WER of int8 and fp32 through 03's decoder;
- "five" said 40 times: how many fives the safeguarded int8 and fp32 transcripts keep;
- 02 (transformers) on a reading of over 50 s: the last segment's start and end against the audio's end.

Prints the CPU's int8 instructions first: int8 results may differ between CPU kinds.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from whisper_lab.audio import speech_data
from whisper_lab.audio.loading import load_audio
from whisper_lab.compare.throughput import this_cpu
from whisper_lab.compare.wer import word_error_rate
from whisper_lab.errors import run_cli
from whisper_lab.tables import markdown_table
from whisper_lab.transcribe import trial_audio
from whisper_lab.transcribe.onnx_whisper import load_onnx_whisper


def fives(text: str) -> int:
    return len(re.findall(r"\b(?:5|five)\b", text.lower()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=REPO / "whisper_model_dir")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-hf", action="store_true", help="leave out 02's long reading (the slowest part)")
    args = parser.parse_args()
    print(f"cpu: {this_cpu().describe()}", flush=True)
    models = {p: load_onnx_whisper(args.model_dir, "whisper-base", p, threads=args.threads) for p in ("fp32", "int8")}
    sentences = speech_data.librivox_utterances()[:4]
    clips = [trial_audio.speech_then_noise(load_audio(u.path)) for u in sentences]
    rows = []
    five_audio, said = trial_audio.repeated_word()
    for precision, whisper in models.items():
        wer = word_error_rate([u.text for u in sentences], [whisper.transcribe(c) for c in clips])
        kept = fives(whisper.transcribe(five_audio))
        rows.append([precision, f"{wer:.2%}", f"{kept} of {said}"])
        print(f"{precision}: speech + quiet noise WER {wer:.2%}; fives kept {kept} of {said}", flush=True)
    print(markdown_table(["precision", "WER, speech + quiet noise", "fives kept"], rows))
    if args.skip_hf:
        return
    from whisper_lab.transcribe.hf_whisper import HFWhisper
    from whisper_lab.weights.model_source import resolve_model

    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "long.wav"
        reference = speech_data.write_concatenation([speech_data.JFK, *speech_data.librivox_utterances(),
                                                     *speech_data.cards_utterances()], clip)  # fmt: skip
        audio = load_audio(clip)
    seconds = len(audio) / 16_000
    transcript = HFWhisper.load(resolve_model()).transcript(audio)
    last = transcript.segments[-1]
    print(f"02 on a {seconds:.2f} s reading: {len(transcript.segments)} segments, the last "
          f"{last.start:.2f} --> {last.end:.2f}; WER {word_error_rate(reference, transcript.text):.2%}")


if __name__ == "__main__":
    run_cli(main)
