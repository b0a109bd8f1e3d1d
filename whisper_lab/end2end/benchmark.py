"""`05 --benchmark`: is one file as fast as the two graphs with a Python loop around them?

Both paths transcribe the same real clips (the sample speech first, then the
lab's English test set) with the same number of threads:

    two graphs  numpy log-mel -> encoder session -> decoder session once per token,
                suppression and argmax in numpy -> tokenizer (03 --transcribe, greedy)
    one file    one session.run per window -> tokens and UTF-8 text

They take turns clip by clip, in alternating order, for a few rounds, and the
table shows the median round. The machine may be busy with other work, so only
the ratio of two times measured side by side means anything, not the times.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from ..tables import markdown_table
from .pipeline import log


def _two_ways(output_dir: Path, name: str, precision: str, threads: int | None) -> dict:
    """precision -> {"two": transcribe with the pair, "one": with the one file}; each returns (tokens, text)."""
    from ..onnx_files import onnx_pair
    from ..transcribe.onnx_whisper import OnnxWhisper
    from .front_end import numpy_features
    from .pipeline import end2end_file
    from .session import EndToEnd

    pair = OnnxWhisper(*onnx_pair(output_dir, name, precision), threads=threads)
    one_file = EndToEnd(end2end_file(output_dir, name, precision), threads=threads)
    prompt = pair.prompt("en", "transcribe", timestamps=False)

    def two_graphs(audio):
        generated = pair.decode_window(numpy_features(audio, n_mels=pair.spec.n_mels), prompt, timestamps=False)
        return [t for t in generated if t < pair.spec.eot], pair.text(generated)

    def one(audio):  # one window, greedy, as the two graphs above
        result = one_file.window(audio)
        return result.text_tokens, result.text

    return {"two": two_graphs, "one": one}


def _side_by_side(ways: dict, audios: list, rounds: int, label: str) -> tuple[dict, int]:
    """Per way, (wall, CPU) seconds of each round over all clips; and on how many clips the tokens agree."""
    for run in ways.values():
        run(audios[0])  # warm-up: the first run allocates and prepacks weights
    totals = {key: [] for key in ways}
    same = 0
    for round_index in range(rounds):
        log(f"[{label}] round {round_index + 1} of {rounds} over {len(audios)} clips ...")
        sums = {key: [0.0, 0.0] for key in ways}
        for i, audio in enumerate(audios):
            order = list(ways) if (i + round_index) % 2 == 0 else list(reversed(ways))  # alternate who goes first
            outputs = {}
            for key in order:
                wall, cpu = time.perf_counter(), time.process_time()
                outputs[key] = ways[key](audio)
                sums[key][0] += time.perf_counter() - wall
                sums[key][1] += time.process_time() - cpu
            same += round_index == 0 and outputs["one"][0] == outputs["two"][0]
        for key, value in sums.items():
            totals[key].append(value)
    return totals, same


def run_benchmark(output_dir: Path, name: str, precisions: list[str], clips: int, rounds: int,
                  threads: int | None) -> str:  # fmt: skip
    from ..audio.loading import load_audio
    from ..audio.log_mel import N_SAMPLES
    from ..audio.speech_data import english_test_set

    audios = [load_audio(u.path)[:N_SAMPLES] for u in english_test_set(clips)]
    seconds_of_audio = sum(len(a) for a in audios) / 16_000
    rows = []
    for precision in precisions:
        totals, same = _side_by_side(_two_ways(output_dir, name, precision, threads), audios, rounds, precision)
        wall = {key: statistics.median(t[0] for t in rounds_) for key, rounds_ in totals.items()}
        cpu = {key: statistics.median(t[1] for t in rounds_) for key, rounds_ in totals.items()}
        rows.append((precision, len(audios), f"{wall['two']:.2f}", f"{wall['one']:.2f}",
                     f"{wall['one'] / wall['two']:.2f}x", f"{cpu['one'] / cpu['two']:.2f}x",
                     f"{same} of {len(audios)}"))  # fmt: skip
    table = markdown_table(("precision", "clips", "two graphs s", "one file s", "one file / two graphs",
                            "CPU time ratio", "same tokens"), rows)  # fmt: skip
    return (f"{table}\n\n{len(audios)} clips, {seconds_of_audio:.0f} s of speech, {threads or 'default'} threads, "
            f"median of {rounds} rounds; each clip transcribed by both paths in turn, alternating which goes first.\n"
            "Only the ratios mean something on a shared machine; the CPU time ratio counts every thread's work.")
