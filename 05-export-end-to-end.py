"""Step 9 of the lab: Whisper as one ONNX file, audio in, text out, running in the browser.

    python 05-export-end-to-end.py                        # whisper_model_dir/whisper-base_end2end_int8.onnx
    python 05-export-end-to-end.py --precision all        # + whisper-base_end2end.onnx (fp32)
    python 05-export-end-to-end.py --transcribe speech.wav [--timestamps]
    python 05-export-end-to-end.py --serve                # the page that transcribes in your browser
    python 05-export-end-to-end.py --benchmark            # the one file vs the two-graph path, side by side

The file is built from the encoder and decoder that 03 exports (exported first
if missing) and holds everything between the samples and the text: the log-mel
front end as two MatMuls, the decoding loop of one 30 s window as an ONNX Loop
whose body is the one-step decoder, and the token -> bytes table. Standard ONNX
ops only, so onnxruntime-web runs it in a browser; open it in Netron to see the
three parts. A recording of any length is a short loop around it
(whisper_lab/end2end/host.py): window after window, with Whisper's safeguards.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from whisper_lab.audio.loading import load_audio
from whisper_lab.end2end.host import stderr_progress
from whisper_lab.end2end.pipeline import PRECISIONS, build_precisions, end2end_file, summary_table
from whisper_lab.end2end.session import EndToEnd
from whisper_lab.end2end.web_server import DEFAULT_PORT
from whisper_lab.errors import LabError, run_cli
from whisper_lab.onnx_files import threads_from_environment
from whisper_lab.transcribe.cli import print_transcript
from whisper_lab.transcribe.languages import check_prompt_of_checkpoint
from whisper_lab.weights.model_source import DEFAULT_MODEL, check_whisper, model_name, resolve_model

HERE = Path(__file__).resolve().parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Build Whisper as one ONNX file (audio in, text out) and run it.")
    parser.add_argument("--precision", choices=[*PRECISIONS, "all"], default="int8",
                        help="int8 (default, the file the web page loads), fp32, or both")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"hub id or local checkpoint folder (default: {DEFAULT_MODEL}, works offline)")
    parser.add_argument("--output-dir", type=Path, default=HERE / "whisper_model_dir",
                        help="where 03's files are and the end-to-end file goes (default: whisper_model_dir)")
    parser.add_argument("--force", action="store_true",
                        help="build the one file again even if it is up to date (03 --force exports the pair again)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--transcribe", type=Path, metavar="AUDIO",
                        help="transcribe this file (any length) with the one-file model of --precision")
    action.add_argument("--serve", action="store_true",
                        help="serve the web page that transcribes in the browser with the int8 file")
    action.add_argument("--benchmark", action="store_true",
                        help="time the one file against the two-graph greedy path on the same clips, side by side")
    parser.add_argument("--language", default="en", help="spoken language for --transcribe (default: en)")
    parser.add_argument("--task", choices=("transcribe", "translate"), default="transcribe", help="for --transcribe")
    parser.add_argument("--timestamps", action="store_true",
                        help="for --transcribe: print each segment as [start --> end]  text, as 03 does")
    parser.add_argument("--host", default="127.0.0.1", help="for --serve: address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"for --serve (default: {DEFAULT_PORT})")
    parser.add_argument("--clips", type=int, default=10, help="for --benchmark: how many real clips (default: 10)")
    parser.add_argument("--rounds", type=int, default=3, help="for --benchmark: rounds over the clips (default: 3)")
    return parser.parse_args()


def transcribe(args, precisions: list[str]) -> None:
    audio = load_audio(args.transcribe)  # fail on a bad file before any long build
    source = resolve_model(args.model)  # and on a bad --language, before minutes of building
    check_prompt_of_checkpoint(source.path, args.language, args.task, source.name)
    threads = threads_from_environment()
    build_precisions(args.model, args.output_dir, precisions, force=args.force)
    for precision in precisions:
        model = EndToEnd(end2end_file(args.output_dir, model_name(args.model), precision), threads=threads)
        result = model.transcribe(audio, language=args.language, task=args.task, timestamps=args.timestamps,
                                  progress=stderr_progress)  # fmt: skip
        if len(precisions) > 1:
            print(f"[{precision}]", file=sys.stderr)
        print_transcript(result, args.timestamps)


def serve(args) -> None:
    from whisper_lab.end2end.web_server import PageServer, check_can_listen, check_page_installed

    check_page_installed()  # both before a build that can take minutes
    check_can_listen(args.host, args.port)
    results = build_precisions(args.model, args.output_dir, ["int8"], force=args.force)
    server = PageServer([r.path for r in results], host=args.host, port=args.port)
    print(server.advice(), flush=True)
    # Ctrl-C (and a polite kill) stop the server cleanly, even when started from a shell that ignores Ctrl-C.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def main() -> None:
    args = parse_args()
    precisions = list(PRECISIONS) if args.precision == "all" else [args.precision]
    if Path(args.model).expanduser().is_dir():  # before files of the same name are taken for its export
        check_whisper(Path(args.model).expanduser())
    if args.clips < 1 or args.rounds < 1:
        raise LabError("--clips and --rounds need at least 1")
    if args.transcribe:
        return transcribe(args, precisions)
    if args.serve:
        return serve(args)
    if args.benchmark:
        from whisper_lab.end2end.benchmark import run_benchmark

        build_precisions(args.model, args.output_dir, precisions, force=args.force)
        return print(run_benchmark(args.output_dir, model_name(args.model), precisions, args.clips, args.rounds,
                                   threads_from_environment()))  # fmt: skip
    results = build_precisions(args.model, args.output_dir, precisions, force=args.force)
    print(summary_table(results))
    print(f"\nRun it in the browser: python {Path(__file__).name} --serve    "
          f"Look inside: python 04-compare-models.py --netron {results[-1].path}")


if __name__ == "__main__":
    run_cli(main)
