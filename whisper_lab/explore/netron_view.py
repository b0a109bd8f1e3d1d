"""Netron, served from the VM itself: look inside an ONNX file without downloading it anywhere.

Netron (the `netron` package on PyPI) is a model viewer that runs in the
browser; its Python package carries the whole web app, which netron_server
hands to the browser together with the one model file. Nothing is fetched
from the internet. The server runs on the VM, the browser on your laptop, so the
port has to reach the laptop: SSH port forwarding carries the laptop's
localhost:PORT to the VM's localhost:PORT (VS Code's Remote-SSH does this by
itself when a program opens a port, see its PORTS tab).

We listen on 127.0.0.1 by default: only this machine and forwarded ports can
reach it. `--host 0.0.0.0` opens it to the network: anyone who can reach the
VM can then load the model (only that file, see netron_server).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LabError
from ..serving import WILDCARD_HOSTS, check_can_listen, forwarding_advice, page_url
from .netron_server import ServedModel, start_server

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080  # Netron's own default


@dataclass
class NetronServer:
    model: Path
    host: str
    port: int
    served: ServedModel = field(repr=False)

    @property
    def url(self) -> str:
        return page_url(self.host, self.port)

    def alive(self) -> bool:
        return self.served.alive()

    def stop(self) -> None:
        self.served.stop()


def check_onnx_model(model: Path) -> Path:
    """The one model file to show: it must exist and be an ONNX model (Netron would open far more)."""
    model = Path(model)
    if model.is_dir():
        raise LabError(f"{model}: is a folder; give one model file, e.g. {model / 'whisper-base_encoder_int8.onnx'}")
    if not model.is_file():
        raise LabError(f"{model}: no such file" + ("" if model.parent.is_dir() else f" (no folder {model.parent})"))
    hint = "give one of the .onnx files 03-export-encoder-decoder.py wrote, e.g. whisper_model_dir/whisper-base_encoder.onnx"
    if model.suffix.lower() != ".onnx":
        raise LabError(f"{model}: not an ONNX model (no .onnx ending); {hint}")
    import onnx

    try:  # the graph only: a damaged or foreign file fails here, in one line, not in the student's browser
        onnx.load(str(model), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise LabError(f"{model}: cannot read it as an ONNX model ({type(exc).__name__}); {hint}") from exc
    return model


def serve_model(model: Path, host: str = DEFAULT_HOST, port: int | None = DEFAULT_PORT) -> NetronServer:
    """Start Netron for `model` in a background thread; port 0 or None = any free port."""
    model = check_onnx_model(model)
    try:
        import netron  # noqa: F401  (the web app we serve)
    except ImportError as exc:
        raise LabError("netron is not installed; pip install -r requirements.txt") from exc
    check_can_listen(host, port or 0, running="Netron", default_port=DEFAULT_PORT, any_port=True)
    try:
        served = start_server(model, host, port or 0)
    except OSError as exc:
        raise LabError(f"cannot serve on {host}:{port} ({exc.strerror or exc}); try another --port or --host") from exc
    return NetronServer(model, host, served.port, served)


def access_advice(server: NetronServer) -> str:
    """How to open the page from a laptop, like the recorder (01) explains it."""
    port = server.port
    lines = [
        f"Netron is showing {server.model.name} at {server.url}  (Ctrl-C to stop)",
        "",
        "On this machine, open that address. From your laptop, forward the port first:",
        *forwarding_advice(port),
    ]
    if server.host in WILDCARD_HOSTS:
        lines.append(f"  Or, listening on every interface: http://{socket.gethostname()}:{port} (or the VM's IP address)")
    return "\n".join(lines)


def wait_until_interrupted(server: NetronServer) -> None:
    """Keep serving until Ctrl-C (or until the server stops), then shut it down."""
    try:
        while server.alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
