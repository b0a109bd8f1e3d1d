"""The decoding flags and the output that scripts 02 and 03 --transcribe share.

Both print

    Transcription:

    the text            (or, with --timestamps, one `[start --> end]  text` line per segment)

on stdout; notes (no speech found, a clip too short for a word) go to stderr,
so that the transcript can be piped on as it is.
"""

from __future__ import annotations

import argparse
import sys

from .options import DecodingOptions, options_from_flags
from .segments import Transcript, timestamp_line


def add_decoding_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--beam-size", type=int, metavar="N",
                        help="keep the N likeliest transcripts while decoding (beam search, 5 is usual); "
                             "slower, sometimes more accurate (default: greedy)")  # fmt: skip
    parser.add_argument("--timestamps", action="store_true",
                        help="print one segment per line with its start and end time")  # fmt: skip
    parser.add_argument("--no-fallback", action="store_true",
                        help="plain greedy decoding without Whisper's safeguards (no temperature fallback, "
                             "no silence skipping, no previous-text prompt): shows what they fix")  # fmt: skip


def decoding_options(args: argparse.Namespace) -> DecodingOptions:
    return options_from_flags(args.no_fallback, args.beam_size, args.timestamps)


def print_transcript(transcript: Transcript, timestamps: bool) -> None:
    print("Transcription:")
    print()
    if timestamps and transcript.segments:
        for segment in transcript.segments:
            print(timestamp_line(segment))
    else:
        print(transcript.text)
    sys.stdout.flush()
    if transcript.note:
        print(f"note: {transcript.note}", file=sys.stderr, flush=True)
