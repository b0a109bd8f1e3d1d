"""Steps 4 and 6 of the lab: export Whisper's encoder and decoder to ONNX, at three precisions.

    python 03-export-encoder-decoder.py                      # fp32: whisper-base_encoder.onnx, _decoder.onnx
    python 03-export-encoder-decoder.py --precision int8     # + whisper-base_encoder_int8.onnx, ...
    python 03-export-encoder-decoder.py --precision all      # fp32, fp16 and int8
    python 03-export-encoder-decoder.py --precision int8 --transcribe speech.wav
    python 03-export-encoder-decoder.py --transcribe lecture.mp3 --timestamps --beam-size 5
    python 03-export-encoder-decoder.py --transcribe talk.wav --word-timestamps --output talk.vtt

The files land in whisper_model_dir/. Open them in Netron to see:
  encoder  log-mel -> 2 convolutions -> 6 transformer blocks -> LayerNorm
           -> 12 parallel MatMuls: the cross-attention keys and values of the 6 decoder layers
  decoder  tokens + caches -> embeddings -> 6 x (self-attention, cross-attention, MLP) -> logits

Every export is checked: onnx.checker, then ONNX Runtime against PyTorch on the
same speech, and the table at the end shows sizes, differences and which op
types each precision added or removed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from whisper_lab.audio.loading import SAMPLE_RATE, load_audio, long_audio_note
from whisper_lab.errors import LabError, run_cli
from whisper_lab.export.pipeline import PRECISIONS, export_precisions, files_ready, summary_table
from whisper_lab.transcribe.cli import add_decoding_flags, decoding_options, output_format, write_transcript
from whisper_lab.transcribe.languages import check_prompt_of_checkpoint
from whisper_lab.transcribe.onnx_whisper import TASKS, load_onnx_whisper
from whisper_lab.weights.model_source import DEFAULT_MODEL, resolve_model

HERE = Path(__file__).resolve().parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Export Whisper's encoder and decoder to ONNX and check them.")
    parser.add_argument("--precision", choices=[*PRECISIONS, "all"], default="fp32",
                        help="fp32 (default), fp16 (half the size), int8 (a quarter), or all three")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"hub id or local checkpoint folder (default: {DEFAULT_MODEL}, works offline)")
    parser.add_argument("--output-dir", type=Path, default=HERE / "whisper_model_dir",
                        help="where the .onnx files go (default: whisper_model_dir)")
    parser.add_argument("--force", action="store_true", help="export again even if the files are up to date")
    parser.add_argument("--transcribe", type=Path, metavar="AUDIO",
                        help="transcribe this file with the ONNX models of --precision (exported first if missing)")
    parser.add_argument("--language", default="en", help="spoken language for --transcribe (default: en)")
    parser.add_argument("--task", choices=TASKS, default="transcribe", help="for --transcribe")
    add_decoding_flags(parser)  # --beam-size, --timestamps, --no-fallback, --word-timestamps, --output...: for --transcribe
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    precisions = list(PRECISIONS) if args.precision == "all" else [args.precision]

    if args.transcribe:
        options = decoding_options(args)
        fmt = output_format(args)  # a bad --output fails before any long export
        if args.output and len(precisions) > 1:
            raise LabError("--output holds one transcript: choose one --precision (fp32, fp16 or int8)")
        audio = load_audio(args.transcribe)  # fail on a bad file before any long export
        source = resolve_model(args.model)
        check_prompt_of_checkpoint(source.path, args.language, args.task, source.name)  # before a long export
        name = source.name
        # Files of another model with the same short name (another folder called whisper-base)
        # do not count: their recorded source differs, and they are exported again.
        # --word-timestamps: the decoder that also outputs its alignment heads' attention, exported once
        attention = args.word_timestamps
        missing = [p for p in precisions
                   if args.force or not files_ready(args.output_dir, name, p, source.origin, attention)]  # fmt: skip
        if missing:
            export_precisions(source, args.output_dir, missing, force=args.force, attention=attention)
        if note := long_audio_note(audio):
            print(note, file=sys.stderr, flush=True)
        for precision in precisions:
            whisper = load_onnx_whisper(args.output_dir, name, precision, word_timestamps=attention)
            transcript = whisper.transcript(audio, language=args.language, task=args.task, options=options)
            if len(precisions) > 1:
                print(f"[{precision}]", file=sys.stderr)
            write_transcript(transcript, args, fmt, len(audio) / SAMPLE_RATE)
        return

    if args.output or args.output_format:
        raise LabError("--output and --output-format are for --transcribe AUDIO")
    source = resolve_model(args.model)
    results = export_precisions(source, args.output_dir, precisions, force=args.force, attention=args.word_timestamps)
    print(summary_table(results))
    print(f"\nOpen the files in Netron (https://netron.app, or python 04-compare-models.py --netron FILE): "
          f"{args.output_dir}")


if __name__ == "__main__":
    run_cli(main)
