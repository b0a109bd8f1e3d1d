"""The decoding flags and the output that scripts 02 and 03 --transcribe share.

Both print

    Transcription:

    the text            (or, with --timestamps, one `[start --> end]  text` line per segment)

on stdout; notes (no speech found, a clip too short for a word) go to stderr,
so that the transcript can be piped on as it is. With --word-timestamps each
segment line is followed by its words, one per line. `--output-format
txt|srt|vtt|json` writes the transcript in that format instead (subtitles.py),
on stdout or, with `--output FILE`, into that file (complete or not at all).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from ..audio.loading import LENGTH_LIMIT_HELP
from ..errors import LabError
from ..files import atomic_file
from .options import DecodingOptions, options_from_flags
from .segments import Segment, Transcript, timestamp_line
from .subtitles import FORMATS, render


def add_decoding_flags(parser: argparse.ArgumentParser) -> None:
    # the longest audio the scripts read, said where a student looks first
    parser.epilog = f"{parser.epilog}\n\n{LENGTH_LIMIT_HELP}" if parser.epilog else LENGTH_LIMIT_HELP
    parser.add_argument("--beam-size", type=int, metavar="N",
                        help="keep the N likeliest transcripts while decoding (beam search, 5 is usual); "
                             "slower, sometimes more accurate (default: greedy)")  # fmt: skip
    parser.add_argument("--timestamps", action="store_true",
                        help="print one segment per line with its start and end time")  # fmt: skip
    parser.add_argument("--no-fallback", action="store_true",
                        help="plain greedy decoding without Whisper's safeguards (no temperature fallback, "
                             "no silence skipping, no previous-text prompt): shows what they fix")  # fmt: skip
    parser.add_argument("--word-timestamps", action="store_true",
                        help="a start and end time for every word, read from where the decoder's alignment "
                             "heads look in the audio (subtitles then show the words as they are spoken)")  # fmt: skip
    parser.add_argument("--output-format", choices=FORMATS,
                        help="write the transcript as plain text, SubRip or WebVTT subtitles, or JSON with "
                             "segments and words (default: the 'Transcription:' printout)")  # fmt: skip
    parser.add_argument("--output", type=Path, metavar="FILE",
                        help="write the transcript into FILE instead of stdout (its format from "
                             "--output-format, else from the name: .txt .srt .vtt .json)")  # fmt: skip


def decoding_options(args: argparse.Namespace) -> DecodingOptions:
    options = options_from_flags(args.no_fallback, args.beam_size, args.timestamps)
    return replace(options, word_timestamps=args.word_timestamps)


def output_format(args: argparse.Namespace) -> str | None:
    """The format asked for (None: the printout), checked before any work: a bad --output fails at once."""
    fmt = args.output_format
    if args.output is None:
        return fmt
    if fmt is None:
        fmt = args.output.suffix.lower().lstrip(".")
        if fmt not in FORMATS:
            raise LabError(f"--output {args.output}: say which format with --output-format "
                           f"({', '.join(FORMATS)}), or name the file .txt, .srt, .vtt or .json")  # fmt: skip
    folder = args.output.parent
    if args.output.is_dir():
        raise LabError(f"--output {args.output} is a folder; give a file name such as {args.output / ('speech.' + fmt)}")
    if not folder.is_dir():
        raise LabError(f"--output {args.output}: the folder {folder} does not exist; create it or choose another")
    if not os.access(folder, os.W_OK):
        raise LabError(f"--output {args.output}: cannot write into {folder}; choose another folder")
    return fmt


def word_line(word) -> str:
    """`    [00:00.520 --> 00:00.840]  so`: a word under its segment's line."""
    return "    " + timestamp_line(Segment(word.start, word.end, word.word.strip(), []))


def print_transcript(transcript: Transcript, timestamps: bool) -> None:
    print("Transcription:")
    print()
    words = any(segment.words for segment in transcript.segments)
    if (timestamps or words) and transcript.segments:
        for segment in transcript.segments:
            print(timestamp_line(segment))
            for word in segment.words:
                print(word_line(word))
    else:
        print(transcript.text)
    sys.stdout.flush()
    if transcript.note:
        print(f"note: {transcript.note}", file=sys.stderr, flush=True)


def write_transcript(transcript: Transcript, args: argparse.Namespace, fmt: str | None, duration: float) -> None:
    """The printout (no format asked), or the transcript in `fmt` on stdout or into --output."""
    if fmt is None:
        print_transcript(transcript, args.timestamps)
        return
    text = render(transcript, fmt, duration, args.language)
    if args.output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        try:
            with atomic_file(args.output) as tmp:
                tmp.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise LabError(f"cannot write {args.output} ({exc.strerror}); choose another --output") from exc
        print(f"wrote {args.output} ({fmt})", file=sys.stderr, flush=True)
    if transcript.note:
        print(f"note: {transcript.note}", file=sys.stderr, flush=True)
