"""`05 --serve`: the static page of web/ and the one-file models, over plain HTTP from the VM.

The page does everything in the browser: it records or opens audio, turns it
into 16 kHz mono samples, and runs the int8 file with onnxruntime-web (ONNX
Runtime compiled to WebAssembly). The server only hands out files, and only
these: the page's own files, the three files of onnxruntime-web it loads, and
the end-to-end .onnx files. Nothing can be sent to it: it answers GET and HEAD,
and every other method is refused.

Two response headers make the page "cross-origin isolated" (COOP + COEP), the
condition under which browsers allow SharedArrayBuffer, which onnxruntime-web
needs to compute with several threads.

We listen on 127.0.0.1 by default: the browser on your laptop reaches the page
through a forwarded port, and http://localhost is a secure context, so the
page may use the microphone there.
"""

from __future__ import annotations

import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .. import serving
from ..errors import LabError
from ..onnx_files import read_metadata

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
ORT_DIST = WEB_DIR / "node_modules" / "onnxruntime-web" / "dist"
# The wasm build of onnxruntime-web: the ES module, its worker/loader module and the WebAssembly binary.
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
PAGE_FILES = ("index.html", "app.js", "audio.js", "host.js", "worker.js", "style.css")
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000
RUNNING = "05 --serve"  # what probably holds a taken port
# From each model's metadata into config.json: the host loop's token ids, and what to tell a stale file by.
PAGE_METADATA = ("timestamp_begin", "eot", "end2end_version", "multilingual", "model_name", "precision")
INT_KEYS = ("timestamp_begin", "eot", "multilingual")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
         ".css": "text/css", ".wasm": "application/wasm", ".onnx": "application/octet-stream",
         ".json": "application/json"}  # fmt: skip


def check_page_installed() -> None:
    missing = [name for name in ORT_FILES if not (ORT_DIST / name).is_file()]
    if missing:
        raise LabError(f"onnxruntime-web is not installed in {WEB_DIR} (missing {missing[0]}); "
                       "install it with: bash .ci/install-web.sh   (runs `npm ci` in web/)")  # fmt: skip


class _Handler(SimpleHTTPRequestHandler):
    """GET/HEAD of a fixed set of files; everything else is 404 (unknown path) or 501 (other methods)."""

    def __init__(self, *args, routes: dict[str, Path], config: bytes, **kwargs):
        self.routes, self.config = routes, config
        super().__init__(*args, directory=str(WEB_DIR), **kwargs)

    def translate_path(self, path: str) -> str:
        target = self.routes.get(path.split("?", 1)[0].split("#", 1)[0])
        return str(target) if target else str(WEB_DIR / "does-not-exist")

    def guess_type(self, path) -> str:
        return TYPES.get(Path(path).suffix, "application/octet-stream")

    def do_GET(self):  # http.server calls do_<METHOD>
        if self.path.split("?", 1)[0] == "/config.json":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(self.config)))
            self.end_headers()
            self.wfile.write(self.config)
            return
        super().do_GET()

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-cache")  # revalidate: a rebuilt model is picked up at once
        super().end_headers()

    def log_message(self, format, *args):  # http.server's signature
        pass  # one line per file would bury the advice printed at the start


def check_can_listen(host: str, port: int) -> None:
    """Before a long build: would the server get this address? (serving.py's bind probe, as 01 and Netron)"""
    serving.check_can_listen(host, port, running=RUNNING, default_port=DEFAULT_PORT, any_port=True)


def page_config(models: list[Path]) -> dict:
    """config.json: the models to offer, and what the page's host loop needs from each file's metadata.

    timestamp_begin: the first timestamp token (segments and seeking); eot: <|endoftext|>. Read
    with onnx from the served files themselves (graph and metadata only, not a session).
    """
    metadata = {}
    for model in models:
        try:
            meta = read_metadata(model)
        except Exception as exc:  # onnx raises its own DecodeError for a damaged file
            raise LabError(f"{model}: cannot read it as ONNX ({str(exc)[:120]}); build it again with "
                           "05-export-end-to-end.py --force") from exc  # fmt: skip
        metadata[model.name] = {key: (int(meta[key]) if key in INT_KEYS else meta[key]) for key in PAGE_METADATA if key in meta}
    return {"models": [m.name for m in models], "default": models[0].name, "metadata": metadata}


class PageServer:
    """The page and the models, served from a background thread."""

    def __init__(self, models: list[Path], host: str = DEFAULT_HOST, port: int = DEFAULT_PORT):
        check_page_installed()
        routes = {"/": WEB_DIR / "index.html", **{f"/{name}": WEB_DIR / name for name in PAGE_FILES}}
        routes |= {f"/ort/{name}": ORT_DIST / name for name in ORT_FILES}
        routes |= {f"/models/{m.name}": m for m in models}
        config = json.dumps(page_config(models)).encode()
        try:  # http.server binds here, in our code: its errors become one line too
            self.httpd = ThreadingHTTPServer((host, port), partial(_Handler, routes=routes, config=config))
        except (OSError, OverflowError) as exc:
            raise serving.listen_error(exc, host, port, RUNNING, DEFAULT_PORT, any_port=True) from exc
        self.host, self.port = host, self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return serving.page_url(self.host, self.port)

    def advice(self) -> str:
        lines = [f"The page is at {self.url}  (Ctrl-C to stop)", "",
                 "On this machine, open that address. From your laptop, forward the port first:",
                 *serving.forwarding_advice(self.port),
                 "The microphone works on http://localhost (a secure context); the audio never leaves the browser."]  # fmt: skip
        return "\n".join(lines)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
