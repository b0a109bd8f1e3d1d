"""Transcribe a WAV file with the lab's one-file Whisper model, on a small board.

    python3 whisper_device.py whisper-base_end2end_int8.ort speech.wav
    python3 whisper_device.py MODEL WAV --stats        # + load time, peak memory, onnxruntime version
    python3 whisper_device.py MODEL WAV --json         # tokens, text and figures as one JSON line

This file is the whole program a device needs, next to the model: it imports
only onnxruntime, numpy and the standard library (`wave` reads the audio), so
`pip install onnxruntime numpy` is the only set-up, on a Raspberry Pi as on a
laptop. It runs the .onnx file or the .ort file that 06-prepare-for-device.py
writes. The model holds the front end, the decoding loop and the byte table,
so this script only reads samples, fills the model's inputs and prints bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import wave

import numpy as np

SAMPLE_RATE = 16_000
MAX_SAMPLES = 30 * SAMPLE_RATE  # the model reads one 30 s window


def small_board_options(threads: int | None = None):
    """Session options for a board with little RAM and few cores.

    - threads: one per core and no more (the default pool also spins, which a
      board's 4 cores notice); no inter-op pool, the graph runs in sequence.
    - no memory arena: the arena keeps every block it ever grew, so peak
      memory stays at the largest step's; without it freed tensors go back to
      the allocator.
    - no memory pattern: the pattern pre-plans one big buffer per input shape,
      which for a model whose loop grows its tensors step by step costs more
      than it saves.
    - no weight prepacking: at load, onnxruntime makes a second copy of every
      weight matrix in its kernels' tile layout; without it the kernels pack
      tiles as they go (a little slower), and the int8 file's 30 s window
      peaks near 300 MB instead of 360 (docs/embedded.md has the measurements).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.disable_prepacking", "1")
    options.log_severity_level = 3  # not the notice that language and task are overridable defaults
    return options


def default_options(threads: int | None = None):
    """onnxruntime's defaults (only the thread count and the log level set), for comparison."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return options


def load(path: str, options):
    """A session for a .ort or .onnx file (onnxruntime tells them apart by their content)."""
    import onnxruntime as ort

    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def read_wav(path: str) -> np.ndarray:
    """16-bit PCM WAV -> float32 mono at 16 kHz (other rates resampled linearly, fine for speech)."""
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: {8 * w.getsampwidth()}-bit samples; save it as 16-bit PCM WAV")
        channels, rate = w.getnchannels(), w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    audio = pcm.reshape(-1, channels).mean(axis=1).astype(np.float32) / 32768.0
    if rate != SAMPLE_RATE:
        n = int(len(audio) * SAMPLE_RATE / rate)
        audio = np.interp(np.arange(n) * (rate / SAMPLE_RATE), np.arange(len(audio)), audio).astype(np.float32)
    return audio


_DTYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
           "tensor(bool)": np.bool_, "tensor(uint8)": np.uint8}  # fmt: skip


def model_feeds(session, audio: np.ndarray, **given) -> dict:
    """The inputs of one run, read from the model itself.

    `audio` feeds the input named audio; `given` feeds inputs by name (language=...).
    Every other input the model requires gets a neutral default from its type:
    a scalar 0 (0 = off / greedy / no seed) or an empty tensor where a dimension is
    free (no previous prompt). Inputs with a default inside the model (language,
    task) are only fed when given. So a model with more inputs still runs here.
    """
    feeds = {"audio": np.ascontiguousarray(audio[:MAX_SAMPLES], dtype=np.float32)}
    known = {i.name: i for i in session.get_inputs()} | {i.name: i for i in session.get_overridable_initializers()}
    for name, value in given.items():
        if name not in known:
            raise ValueError(f"the model has no input {name!r} (it has {', '.join(known)})")
        feeds[name] = np.asarray(value, dtype=_DTYPES.get(known[name].type, np.int64))
    for spec in session.get_inputs():
        if spec.name not in feeds:
            shape = [d if isinstance(d, int) else 0 for d in spec.shape]
            feeds[spec.name] = np.zeros(shape, dtype=_DTYPES.get(spec.type, np.float32))
    return feeds


def language_id(session, code: str) -> int:
    """'de' or '<|de|>' -> the language token id, from the model's own metadata."""
    table = json.loads(session.get_modelmeta().custom_metadata_map.get("lang_to_id", "{}"))
    token = code if code.startswith("<|") else f"<|{code}|>"
    if token not in table:
        raise ValueError(f"unknown language {code!r}; use a code such as en, de, fr")
    return table[token]


def transcribe(session, audio: np.ndarray, language: str | None = None) -> dict:
    given = {"language": language_id(session, language)} if language else {}
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, model_feeds(session, audio, **given))))
    return {"tokens": outputs["tokens"].tolist(), "text": bytes(outputs["text"]).decode("utf-8", errors="replace")}


def peak_rss_mb() -> float | None:
    """This program's peak resident memory (VmHWM) in MB; None where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return None


def cpu_features() -> str:
    """What the int8 kernels depend on: dot product / i8mm on ARM, AVX2 / VNNI on x86."""
    try:
        with open("/proc/cpuinfo") as f:
            words = set(f.read().split())
    except OSError:
        return "unknown"
    wanted = ("asimd", "asimddp", "i8mm", "sve", "avx2", "avx512_vnni", "avx_vnni", "amx_int8")
    return " ".join(w for w in wanted if w in words) or "none of " + " ".join(wanted)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the one-file model, .ort or .onnx")
    parser.add_argument("wav", help="16-bit PCM WAV (any rate, mono or stereo); the first 30 s are read")
    parser.add_argument("--language", help="spoken language code, e.g. de (default: the model's, English)")
    parser.add_argument("--threads", type=int, help="threads (default: one per core)")
    parser.add_argument("--default-options", action="store_true",
                        help="onnxruntime's default session options instead of the small-board ones")
    parser.add_argument("--stats", action="store_true", help="print load time, peak memory and versions")
    parser.add_argument("--json", action="store_true", help="print one JSON line: tokens, text, figures")
    args = parser.parse_args()
    for path in (args.model, args.wav):
        if not os.path.isfile(path):
            print(f"error: {path}: no such file", file=sys.stderr)
            return 1
    try:
        audio = read_wav(args.wav)
        import onnxruntime as ort

        start = time.perf_counter()
        options = (default_options if args.default_options else small_board_options)(args.threads)
        session = load(args.model, options)
        load_seconds, loaded_mb = time.perf_counter() - start, peak_rss_mb()
        start = time.perf_counter()
        result = transcribe(session, audio, args.language)
        run_seconds = time.perf_counter() - start
    except (ValueError, wave.Error, EOFError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # onnxruntime's own error types: a damaged or foreign model file
        print(f"error: {args.model}: onnxruntime cannot run it ({str(exc).splitlines()[0][:200]})", file=sys.stderr)
        return 1
    stats = {"onnxruntime": ort.__version__, "numpy": np.__version__, "cpu": cpu_features(),
             "options": "default" if args.default_options else "small-board", "audio_seconds": len(audio) / SAMPLE_RATE,
             "load_seconds": load_seconds, "loaded_mb": loaded_mb, "run_seconds": run_seconds, "peak_mb": peak_rss_mb()}  # fmt: skip
    if args.json:
        print(json.dumps({**result, **stats}))
        return 0
    print(result["text"].strip())
    if args.stats:
        mb = lambda v: "?" if v is None else f"{v:.0f} MB"  # noqa: E731
        print(f"onnxruntime {stats['onnxruntime']} ({stats['options']} options, cpu: {stats['cpu']}); "
              f"load {load_seconds:.1f} s, peak {mb(loaded_mb)} after load; {len(audio) / SAMPLE_RATE:.1f} s "
              f"of audio in {run_seconds:.1f} s, peak {mb(stats['peak_mb'])}", file=sys.stderr)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
