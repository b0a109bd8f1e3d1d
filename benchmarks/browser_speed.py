"""The page's session against native ONNX Runtime: the same one-file model, the same clip, the same threads.

    python benchmarks/browser_speed.py                       # int8, 2 threads, the sample and a 30 s clip
    python benchmarks/browser_speed.py --precision int8 fp32 --rounds 3 --split

Both sides run in turn, clip by clip, alternating which goes first, in one run:

    native   onnxruntime (Python), the file 05 builds, intra_op threads = --threads
    worker   headless Chromium, onnxruntime-web (WebAssembly, SIMD, threads = --threads) in a Web
             Worker (web/worker.js, as the live page runs it)
    page     the same, on the page's main thread, the way web/app.js runs it today

--split also times the int8 encoder alone (03's file, on the same log-mel) both ways: the rest of
the time is the decoding Loop, and dividing it by the tokens gives the cost of one step.
--profile writes ONNX Runtime's op-by-op profile of one native run and prints the op types
that take the time. The machine may be busy: only ratios measured side by side mean anything.
Needs Chromium and web/node_modules (see tests/test_end2end_browser.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from whisper_lab.audio.loading import load_audio  # noqa: E402
from whisper_lab.audio.speech_data import JFK, librivox_utterances  # noqa: E402
from whisper_lab.errors import LabError, run_cli  # noqa: E402

LIVE_FILES = ("live.html", "live.js", "worker.js")
THREAD_NOTE = "intra-op threads (native) = WebAssembly threads (browser)"


def cpu_flags() -> str:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = sorted({f for f in ("avx2", "avx512f", "avx512_vnni", "amx_int8") if f" {f}" in text})
    return ", ".join(flags) or "none of avx2/avx512/amx"


def clip_30s() -> np.ndarray:
    """30 s of real speech: the sample, then LibriVox sentences with half-second pauses, cut at 30 s."""
    gap = np.zeros(8000, dtype=np.float32)
    pieces = [load_audio(JFK.path), gap]
    for utterance in librivox_utterances():
        pieces += [load_audio(utterance.path), gap]
    return np.concatenate(pieces)[: 30 * 16_000]


def serve(models: list[Path]):
    """05 --serve's server, with the live page's files routed too (until web_server.PAGE_FILES lists them)."""
    from whisper_lab.end2end import web_server

    web_server.PAGE_FILES = (*web_server.PAGE_FILES, *(f for f in LIVE_FILES if f not in web_server.PAGE_FILES))
    return web_server.PageServer(models, port=0)


def launch_chromium(playwright, fake_microphone: Path | None = None):
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        raise LabError("Chromium is not installed: bash .ci/install-browser.sh")
    flags = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-quic",
             "--autoplay-policy=no-user-gesture-required",
             "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]  # fmt: skip
    if fake_microphone:  # %noloop: play the file once, then silence (the default plays it over and over)
        flags.append(f"--use-file-for-fake-audio-capture={fake_microphone}%noloop")
    return playwright.chromium.launch(executable_path=executable, headless=True, args=flags)


def open_page(browser, server, query: str):
    context = browser.new_context()
    page = context.new_page()
    page.on("console", lambda m: console_lines.append(m.text))
    page.goto(f"http://127.0.0.1:{server.port}/live.html?{query}")
    page.wait_for_function("() => window.whisperLab && (whisperLab.ready || whisperLab.error || whisperLab.config)",
                           timeout=600_000)  # fmt: skip
    return context, page


console_lines: list[str] = []

# In the page: a worker (web/worker.js through live.js's ModelWorker) or a main-thread session as app.js has it.
LOAD_JS = """async ([key, where, url, threads, options]) => {
  const started = performance.now();
  if (where === 'worker') {
    const { ModelWorker } = await import('./live.js');
    const worker = new ModelWorker();
    const info = await worker.load(url, { numThreads: threads, options });
    window.bench = { ...(window.bench || {}), [key]: { worker } };
    return { seconds: (performance.now() - started) / 1000, threads: info.numThreads };
  }
  const ort = await import('./ort/ort.wasm.min.mjs');
  ort.env.wasm.wasmPaths = new URL('./ort/', location.href).href;
  ort.env.wasm.numThreads = threads;
  const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], logSeverityLevel: 3, ...options });
  window.bench = { ...(window.bench || {}), [key]: { session, ort } };
  return { seconds: (performance.now() - started) / 1000, threads: ort.env.wasm.numThreads };
}"""

RUN_JS = """async ([key, name, base64, dims]) => {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const data = new Float32Array(bytes.buffer);
  const { worker, session, ort } = window.bench[key];
  // the one file decodes one window: greedy, no prompt, no timestamps (its other inputs keep their defaults)
  const feeds = { [name]: { type: 'float32', data, dims } };
  if (name === 'audio') {
    feeds.timestamps = { type: 'bool', data: Uint8Array.from([0]), dims: [] };
    feeds.prompt = { type: 'int64', data: new BigInt64Array(0), dims: [0] };
    feeds.temperature = { type: 'float32', data: Float32Array.from([0]), dims: [] };
  }
  if (worker) {
    const started = performance.now();
    const { outputs, seconds } = await worker.run(feeds);
    const wall = (performance.now() - started) / 1000;
    const tokens = outputs.tokens ? Array.from(outputs.tokens.data, Number) : [];
    return { seconds: wall, inRun: seconds, tokens };
  }
  const started = performance.now();
  const tensors = Object.fromEntries(Object.entries(feeds).map(([k, f]) => [k, new ort.Tensor(f.type, f.data, f.dims)]));
  const out = await session.run(tensors);
  const tokens = out.tokens ? Array.from(out.tokens.data, Number) : [];
  return { seconds: (performance.now() - started) / 1000, inRun: null, tokens };
}"""


def greedy_feeds(audio: np.ndarray) -> dict:
    """One window of the one file, decoded as the page's first attempt is: greedy, no prompt, no timestamps."""
    return {"audio": audio, "timestamps": np.array(False), "prompt": np.zeros(0, np.int64),
            "temperature": np.array(0.0, np.float32)}


def b64(audio: np.ndarray) -> str:
    import base64

    return base64.b64encode(np.ascontiguousarray(audio, dtype=np.float32).tobytes()).decode()


def preoptimize(path: Path, folder: Path) -> Path:
    """The file as native ONNX Runtime optimises it at level "extended" (fusions into com.microsoft ops,
    which onnxruntime-web has too; "all" would add layouts only this CPU's kernels read)."""
    import onnxruntime as ort

    target = folder / f"{path.stem}_preoptimized.onnx"
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(target)
    options.log_severity_level = 3
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return target


def profile_table(events: list[dict]) -> tuple[float, dict]:
    """Seconds of model_run, and kernel seconds per (part of the file, op type); the Loop node apart."""
    parts: dict[tuple[str, str], float] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event.get("args", {}).get("op_name", "?")
            part = "Loop (whole)" if op == "Loop" else event["name"].strip("/").split("/")[0]
            parts[(part, op)] = parts.get((part, op), 0.0) + event["dur"] / 1e6
    return sum(e["dur"] for e in events if e.get("name") == "model_run") / 1e6, parts


def native_events(path: Path, audio: np.ndarray, threads: int) -> list[dict]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "profile")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    session.run(None, greedy_feeds(audio))  # warm-up, then the profiled run is the second one
    session.run(None, greedy_feeds(audio))
    profile = Path(session.end_profiling())
    events = json.loads(profile.read_text())
    shutil.rmtree(profile.parent, ignore_errors=True)
    runs = [e for e in events if e.get("name") == "model_run"]
    last = runs[-1]["ts"]
    return [e for e in events if e.get("ts", 0) >= last]


def browser_events(page, path: Path, audio: np.ndarray, threads: int) -> list[dict]:
    """onnxruntime-web's profiler writes its JSON events to the console (with verbose logging on)."""
    options = {"enableProfiling": True, "logSeverityLevel": 0, "logVerbosityLevel": 0}
    page.evaluate(LOAD_JS, ["profiled", "page", f"models/{path.name}", threads, options])
    page.evaluate(RUN_JS, ["profiled", "audio", b64(audio), [len(audio)]])
    console_lines.clear()
    page.evaluate(RUN_JS, ["profiled", "audio", b64(audio), [len(audio)]])
    page.evaluate("window.bench.profiled.session.endProfiling()")
    page.wait_for_timeout(1000)
    events = []
    for line in console_lines:
        line = line.strip().rstrip(",")
        if line.startswith('{"cat"'):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    runs = [e for e in events if e.get("name") == "model_run"]
    return [e for e in events if e.get("ts", 0) >= runs[-1]["ts"]] if runs else events


def profile_report(path: Path, page, audio: np.ndarray, threads: int, top: int = 14) -> str:
    from whisper_lab.tables import markdown_table

    native_run, native = profile_table(native_events(path, audio, threads))
    web_run, web = profile_table(browser_events(page, path, audio, threads))
    rows = []
    for key in sorted(set(native) | set(web), key=lambda k: -web.get(k, 0.0))[:top]:
        n, w = native.get(key, 0.0), web.get(key, 0.0)
        rows.append((*key, f"{n:.2f}", f"{w:.2f}", f"{w / n:.1f}x" if n else "-"))
    table = markdown_table(("part", "op type", "native s", "browser s", "browser / native"), rows)
    return (f"Profiles of one run on {path.name}, {len(audio) / 16000:.0f} s of audio (second run, {threads} threads): "
            f"model_run native {native_run:.2f} s, browser {web_run:.2f} s ({web_run / native_run:.2f}x; the "
            f"browser's profiler and verbose log slow it). 'Loop (whole)' holds the decoder rows.\n{table}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=REPO / "whisper_model_dir",
                        help="where 05 wrote whisper-base_end2end*.onnx (default: whisper_model_dir)")  # fmt: skip
    parser.add_argument("--precision", nargs="+", choices=("int8", "fp32"), default=["int8"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--main-thread", action="store_true", help="also time a session on the page's main thread")
    parser.add_argument("--arena", action="store_true", help="also time a worker with the CPU memory arena and "
                        "memory patterns on (onnxruntime-web turns both off by default)")  # fmt: skip
    parser.add_argument("--split", action="store_true", help="also time the int8 encoder alone, both ways")
    parser.add_argument("--profile", action="store_true", help="print native ONNX Runtime's op-by-op profile")
    parser.add_argument("--options", default="{}", help="JSON session options for onnxruntime-web, e.g. "
                        '\'{"graphOptimizationLevel": "extended"}\'')  # fmt: skip
    parser.add_argument("--preoptimized", action="store_true", help="also time a worker on the file optimised "
                        "ahead of time by native ONNX Runtime (level extended), loaded with optimisation off")  # fmt: skip
    args = parser.parse_args()
    if args.threads < 1 or args.rounds < 1:
        raise LabError("--threads and --rounds need at least 1")
    try:
        web_options = json.loads(args.options)
    except json.JSONDecodeError as exc:
        raise LabError(f"--options: not JSON ({exc})") from exc
    files = {p: args.models_dir / ("whisper-base_end2end.onnx" if p == "fp32" else f"whisper-base_end2end_{p}.onnx")
             for p in args.precision}  # fmt: skip
    encoder = args.models_dir / "whisper-base_encoder_int8.onnx"
    for path in [*files.values(), *([encoder] if args.split else [])]:
        if not path.is_file():
            raise LabError(f"{path}: not found; build it with python 05-export-end-to-end.py --precision all "
                           f"--output-dir {args.models_dir}")  # fmt: skip
    from playwright.sync_api import sync_playwright

    from whisper_lab.end2end.front_end import numpy_features
    from whisper_lab.end2end.session import EndToEnd

    clips = {"jfk.wav (11 s)": load_audio(JFK.path), "30 s clip": clip_30s()}
    ways: dict[str, tuple] = {}  # label -> (native callable, browser key, input name, feature maker)
    scratch = Path(tempfile.mkdtemp(prefix="browser-speed-"))
    optimized = {p: preoptimize(path, scratch) for p, path in files.items()} if args.preoptimized else {}
    server = serve([*files.values(), *optimized.values(), *([encoder] if args.split else [])])
    report = [f"CPU flags: {cpu_flags()}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; "
              f"{args.threads} {THREAD_NOTE}"]  # fmt: skip
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context, page = open_page(browser, server, "idle=1")
        loads = []
        for precision, path in files.items():
            native = EndToEnd(path, threads=args.threads)
            arena = {**web_options, "enableCpuMemArena": True, "enableMemPattern": True}
            sides = [("worker", "worker", web_options), *([("page", "page", web_options)] if args.main_thread else []),
                     *([("worker+arena", "worker", arena)] if args.arena else []),
                     *([("worker+preoptimized", "worker", {**web_options, "graphOptimizationLevel": "disabled"})]
                       if args.preoptimized else [])]  # fmt: skip
            for label, where, side_options in sides:
                key = f"{precision}-{label}"
                served = optimized[precision] if label.endswith("preoptimized") else path
                info = page.evaluate(LOAD_JS, [key, where, f"models/{served.name}", args.threads, side_options])
                loads.append(f"{key}: loaded in {info['seconds']:.1f} s with {info['threads']} threads")
                ways[key] = (lambda a, n=native: n.session.run(None, greedy_feeds(a)), key, "audio", lambda a: a)
        if args.split:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            options.log_severity_level = 3
            enc = ort.InferenceSession(str(encoder), options, providers=["CPUExecutionProvider"])
            name = enc.get_inputs()[0].name
            page.evaluate(LOAD_JS, ["encoder-worker", "worker", f"models/{encoder.name}", args.threads, web_options])
            ways["encoder-worker"] = (lambda f: enc.run(None, {name: f}), "encoder-worker", name,
                                      lambda a: numpy_features(a)[None])  # fmt: skip
        report += loads
        rows = []
        for clip_name, audio in clips.items():
            seconds_of_audio = len(audio) / 16_000
            for key, (native_run, browser_key, input_name, feed) in ways.items():
                x = feed(audio)
                encoded = b64(x)
                native_run(x)  # warm-up both: the first run allocates and prepacks weights
                page.evaluate(RUN_JS, [browser_key, input_name, encoded, list(x.shape)])
                times = {"native": [], "browser": []}
                tokens = None
                for r in range(args.rounds):
                    for side in (("native", "browser") if r % 2 == 0 else ("browser", "native")):
                        if side == "native":
                            started = time.perf_counter()
                            native_run(x)
                            times["native"].append(time.perf_counter() - started)
                        else:
                            result = page.evaluate(RUN_JS, [browser_key, input_name, encoded, list(x.shape)])
                            times["browser"].append(result["seconds"])
                            tokens = len(result["tokens"])
                n, b = statistics.median(times["native"]), statistics.median(times["browser"])
                rows.append((clip_name, key, f"{n:.2f}", f"{b:.2f}", f"{b / n:.2f}x", f"{n / seconds_of_audio:.2f}",
                             f"{b / seconds_of_audio:.2f}", "" if input_name != "audio" else str(tokens)))  # fmt: skip
                print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
        if args.profile:
            page.evaluate("""async () => {  // the timed sessions make way for the profiled one
              for (const v of Object.values(window.bench)) { v.worker?.terminate(); await v.session?.release(); }
              window.bench = {};
            }""")
            for path in files.values():
                report.append(profile_report(path, page, clips["jfk.wav (11 s)"], args.threads))
        context.close()
        browser.close()
    server.stop()
    shutil.rmtree(scratch, ignore_errors=True)
    from whisper_lab.tables import markdown_table

    report.append(markdown_table(("clip", "browser side", "native s", "browser s", "browser / native",
                                  "native RTF", "browser RTF", "tokens"), rows))  # fmt: skip
    report.append(f"median of {args.rounds} rounds, alternating who goes first; RTF = seconds of work per "
                  "second of audio (below 1: faster than real time). encoder-* rows: the int8 encoder "
                  "alone on the clip's log-mel.")  # fmt: skip
    print("\n".join(report))


if __name__ == "__main__":
    run_cli(main)
