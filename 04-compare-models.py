"""Steps 5-8 of the lab: look inside the ONNX files, diff their structure, measure size, speed and accuracy.

    python 04-compare-models.py                          # full report: whisper_model_dir/report.md + PNGs
    python 04-compare-models.py --netron whisper_model_dir/whisper-base_encoder_int8.onnx
    python 04-compare-models.py --pictures                 # Netron's drawings of the graphs: whisper_model_dir/pictures/
    python 04-compare-models.py --attention samples/jfk.wav   # where the decoder listens: whisper_model_dir/attention-jfk.png
    python 04-compare-models.py --diff-precisions fp32 int8
    python 04-compare-models.py --diff whisper_model_dir/whisper-base_decoder.onnx whisper_model_dir/whisper-base_decoder_fp16.onnx
    python 04-compare-models.py --utterances 20 --repeats 3 --backends hf-fp32 onnx-int8
    python 04-compare-models.py --utterances all --backends onnx-fp32 onnx-int8   # the large set: int8's accuracy
    python 04-compare-models.py --sensitivity        # where int8 hurts, layer group by layer group

The report compares HF PyTorch fp32 (script 02's path), our ONNX graphs at
fp32/fp16/int8 (script 03's files; run 03 with --precision all first) and, if
installed, faster-whisper int8 on the same weights. It takes about 4 minutes
on 2 cores; the first run also downloads the test speech from Debian (three
packages, once, into the cache).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from whisper_lab.compare.backends import BACKENDS
from whisper_lab.errors import LabError, run_cli
from whisper_lab.onnx_files import PRECISIONS
from whisper_lab.weights.model_source import DEFAULT_MODEL, model_name

STARTED = time.perf_counter()  # the report states its own run time (the heavy imports come later, inside)
HERE = Path(__file__).resolve().parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Explore and compare the exported Whisper models: Netron, structural diff, "
                    "and a size/speed/accuracy/memory report with plots.",
        epilog="With no mode option, writes the full report. Models come from 03-export-encoder-decoder.py "
               "--precision all; this script does not export.",
    )  # fmt: skip
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--netron", type=Path, metavar="FILE",
                      help="serve FILE (an .onnx file) in Netron on this machine and print the URL to open")
    mode.add_argument("--pictures", action="store_true",
                      help="draw the graph regions steps 5 and 8 talk about with Netron in a headless Chromium, "
                           "as PNGs in MODEL_DIR/pictures (needs bash install.sh --test)")
    mode.add_argument("--attention", type=Path, metavar="AUDIO",
                      help="draw where the decoder's alignment heads look while it writes each word of AUDIO "
                           "(its first 30 s) over the log-mel, as MODEL_DIR/attention-<name>.png; needs "
                           "03-export-encoder-decoder.py --word-timestamps")
    mode.add_argument("--diff", type=Path, nargs=2, metavar=("A.onnx", "B.onnx"),
                      help="structural diff of two ONNX files: op types, bytes by dtype, largest weights, attention blocks")
    mode.add_argument("--diff-precisions", nargs=2, choices=PRECISIONS, metavar=("P1", "P2"),
                      help=f"structural diff of the encoder and decoder between two precisions ({', '.join(PRECISIONS)})")
    mode.add_argument("--sensitivity", action="store_true",
                      help="int8 sensitivity sweep: quantize all but one layer group, compare with fp32 on the "
                           "test utterances (writes sensitivity.md into --model-dir; ~15 minutes)")
    parser.add_argument("--model-dir", type=Path, default=HERE / "whisper_model_dir",
                        help="where 03 wrote the .onnx files; the report goes here too (default: whisper_model_dir)")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"the model 03 exported, for the HF backend and the file names (default: {DEFAULT_MODEL})")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS), metavar="NAME",
                        help=f"backends to measure (default: all): {' '.join(BACKENDS)}")
    parser.add_argument("--utterances", type=utterance_count, default=30,
                        help="English test utterances for the word error rate (default 30; 20 or more to judge "
                             "the accuracy targets; 'all': the large set of 362 utterances, 2,766 words, which "
                             "can resolve half a point of WER; roughly 10 minutes for onnx-fp32 + onnx-int8 on an idle 2-core machine)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timing rounds on the sample clip (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per backend (default 2)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="--netron: address to listen on (default 127.0.0.1: this machine and forwarded ports)")
    parser.add_argument("--port", type=int, default=8080, help="--netron: port (default 8080; 0 = any free port)")
    return parser.parse_args()


def utterance_count(text: str) -> int | str:
    from whisper_lab.audio.speech_data import ALL

    if text == ALL:
        return ALL
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or '{ALL}', not {text!r}") from None


def netron(args: argparse.Namespace) -> None:
    from whisper_lab.explore.netron_view import access_advice, serve_model, wait_until_interrupted

    server = serve_model(args.netron, host=args.host, port=args.port)
    print(access_advice(server), flush=True)
    wait_until_interrupted(server)
    print("Netron stopped.")


def pictures(args: argparse.Namespace) -> None:
    from whisper_lab.compare.comparison import check_exported
    from whisper_lab.explore.pictures import PICTURES, missing_font_note, render_pictures

    name = model_name(args.model)
    check_exported(args.model_dir, name, list(PRECISIONS))
    if note := missing_font_note():
        print(note, file=sys.stderr)
    out = args.model_dir / "pictures"
    written = render_pictures(args.model_dir, name, out, log=lambda line: print(line, flush=True))
    shows = {picture.name: picture.shows for picture in PICTURES}
    print(f"\nWrote {len(written)} pictures into {out}:")
    for path in written:
        print(f"  {path.name:36} {shows[path.stem]}")


def attention(args: argparse.Namespace) -> None:
    from whisper_lab.explore.attention_picture import draw_attention

    picture = draw_attention(args.attention, args.model_dir, model_name(args.model))
    print(f"Transcription: {picture.text}")
    note = " (the first 30 s window of the recording)" if picture.clipped else ""
    print(f"Wrote {picture.path}: {picture.seconds:.1f} s of audio{note}, one row per token, the DTW path in red")


def diff(pairs: list[tuple[Path, Path]]) -> None:
    from whisper_lab.explore.graph_diff import check_onnx_file, diff_graphs, format_diff

    for a, b in pairs:  # check every file before the slow part
        check_onnx_file(a)
        check_onnx_file(b)
    for i, (a, b) in enumerate(pairs):
        print(("\n" if i else "") + format_diff(diff_graphs(a, b)))


def report(args: argparse.Namespace) -> None:
    from whisper_lab.compare.comparison import Settings, run_comparison
    from whisper_lab.compare.report import stdout_summary, write_report

    settings = Settings(
        model_dir=args.model_dir, model=args.model, model_name=model_name(args.model),
        backends=tuple(dict.fromkeys(args.backends)), utterances=args.utterances, repeats=args.repeats,
        threads=args.threads, command=shlex.join(["python", Path(sys.argv[0]).name, *sys.argv[1:]]),
    )  # fmt: skip
    comparison = run_comparison(settings)
    comparison.seconds = time.perf_counter() - STARTED
    path = write_report(comparison, args.model_dir)
    print(stdout_summary(comparison, path))


def sensitivity(args: argparse.Namespace) -> None:
    from whisper_lab.audio.speech_data import english_test_set
    from whisper_lab.compare.comparison import check_exported
    from whisper_lab.export.sensitivity import run_sweep, write_sweep

    name = model_name(args.model)
    check_exported(args.model_dir, name, ["fp32", "int8"])
    utterances = english_test_set(args.utterances)
    print(f"Sensitivity sweep on {len(utterances)} utterances ...", file=sys.stderr, flush=True)
    sweep = run_sweep(args.model_dir, name, utterances, threads=args.threads, log=lambda m: print(m, file=sys.stderr, flush=True))
    path = write_sweep(sweep, args.model_dir, shlex.join(["python", Path(sys.argv[0]).name, *sys.argv[1:]]))
    print(sweep.table())
    print(f"\nReport: {path}")


def main() -> None:
    args = parse_args()
    if args.sensitivity:
        sensitivity(args)
    elif args.netron:
        netron(args)
    elif args.pictures:
        pictures(args)
    elif args.attention:
        attention(args)
    elif args.diff:
        diff([tuple(args.diff)])
    elif args.diff_precisions:
        from whisper_lab.compare.comparison import check_exported
        from whisper_lab.onnx_files import onnx_pair

        first, second = args.diff_precisions
        if first == second:
            raise LabError(f"--diff-precisions {first} {second}: choose two different precisions")
        name = model_name(args.model)
        check_exported(args.model_dir, name, [first, second])
        a, b = onnx_pair(args.model_dir, name, first), onnx_pair(args.model_dir, name, second)
        diff([(a.encoder, b.encoder), (a.decoder, b.decoder)])
    else:
        report(args)


if __name__ == "__main__":
    run_cli(main)
