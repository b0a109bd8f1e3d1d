"""Peak memory of one backend, measured alone in a fresh Python process.

    python -m whisper_lab.compare.memory_probe onnx-int8 --model-dir whisper_model_dir --audio samples/jfk.wav

Why a process of its own: memory that a process once took rarely goes back to
the system (allocators keep freed pages for reuse), and several backends in one
process would add up. So the benchmark starts one child per backend, which
imports only what that backend needs, loads it, transcribes the clip, and
reports its peak resident set size (RSS: the RAM actually in use, not reserved
address space). It includes the Python interpreter and the libraries, as a
student's own transcription script would. The last line of stdout is JSON.

Which counter: Linux keeps the peak RSS of the current program in
/proc/self/status as `VmHWM` ("high water mark"). The better-known
`getrusage().ru_maxrss` is no good here: across fork + exec it keeps the
parent's peak, so a child started by a parent holding 800 MB reports at least
800 MB, whatever it does itself. We use ru_maxrss only where there is no /proc.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path


def peak_rss_mb() -> float:
    """High-water mark of this program's resident memory, in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6  # "VmHWM:   123456 kB"
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backend")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--model", default="openai/whisper-base")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--audio", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=2, help="transcriptions after loading (default 2)")
    args = parser.parse_args()

    from ..audio.loading import load_audio
    from ..errors import LabError
    from .backends import BackendUnavailable, load_backend

    audio = load_audio(args.audio)
    start_mb = peak_rss_mb()
    try:
        t0 = time.perf_counter()
        backend = load_backend(args.backend, args.model_dir, args.model, args.threads)
        load_seconds = time.perf_counter() - t0
        loaded_mb = peak_rss_mb()
        text = ""
        for _ in range(args.runs):
            text = backend.transcribe(audio)
    except BackendUnavailable as exc:
        print(json.dumps({"backend": args.backend, "unavailable": str(exc)}))
        return
    except LabError as exc:
        print(json.dumps({"backend": args.backend, "error": str(exc)}))
        sys.exit(1)
    print(json.dumps({"backend": args.backend, "start_mb": start_mb, "loaded_mb": loaded_mb,
                      "peak_mb": peak_rss_mb(), "load_seconds": load_seconds, "text": text}))  # fmt: skip


if __name__ == "__main__":
    main()
