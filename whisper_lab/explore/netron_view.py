"""Netron, served from the VM itself: look inside an ONNX file without downloading it anywhere.

Netron (the `netron` package on PyPI) is a model viewer that runs in the
browser; its Python package carries the whole web app and a small HTTP server
that hands the browser the app and the one model file. Nothing is fetched from
the internet. The server runs on the VM, the browser on your laptop, so the
port has to reach the laptop: SSH port forwarding carries the laptop's
localhost:PORT to the VM's localhost:PORT (VS Code's Remote-SSH does this by
itself when a program opens a port, see its PORTS tab).

We listen on 127.0.0.1 by default: only this machine and forwarded ports can
reach it. `--host 0.0.0.0` opens it to the network, which also serves the
other files in the model's folder to anyone who can reach the VM.
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabError
from ..serving import WILDCARD_HOSTS, forwarding_advice, probe_bind

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080  # Netron's own default


@dataclass
class NetronServer:
    model: Path
    host: str
    port: int

    @property
    def url(self) -> str:
        host = "localhost" if self.host in (*WILDCARD_HOSTS, "127.0.0.1") else self.host
        return f"http://{host}:{self.port}"

    def alive(self) -> bool:
        import netron

        return netron.status((self.host, self.port))

    def stop(self) -> None:
        import netron

        netron.stop((self.host, self.port))


def _check_can_listen(host: str, port: int) -> None:
    """Fail early, in one line, if we cannot listen there (netron's own errors are less clear)."""
    if not 0 <= port <= 65535:
        raise LabError(f"--port {port}: a port is a number from 1 to 65535 (0 = any free port)")
    try:
        probe_bind(host, port)
    except OSError as exc:  # socket.gaierror (unknown host) is an OSError too
        if exc.errno == errno.EADDRINUSE:
            raise LabError(f"port {port} on {host} is in use (another Netron?); "
                           "choose another with --port, or --port 0 for any free one") from exc  # fmt: skip
        raise LabError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); check --host") from exc


def serve_model(model: Path, host: str = DEFAULT_HOST, port: int | None = DEFAULT_PORT) -> NetronServer:
    """Start Netron's server for `model` in a background thread; port 0 or None = any free port."""
    model = Path(model)
    if model.is_dir():
        raise LabError(f"{model}: is a folder; give one model file, e.g. {model / 'whisper-base_encoder_int8.onnx'}")
    if not model.is_file():
        raise LabError(f"{model}: no such file" + ("" if model.parent.is_dir() else f" (no folder {model.parent})"))
    try:
        import netron
    except ImportError as exc:
        raise LabError("netron is not installed; pip install -r requirements.txt") from exc
    _check_can_listen(host, port or 0)
    # netron logs 'Serving ... at ...' through the root logger; we print our own, clearer lines
    logging.getLogger("netron.server").setLevel(logging.WARNING)
    if not logging.getLogger().hasHandlers():
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        bound_host, bound_port = netron.serve(str(model), address=(host, port or 0), browse=False)
    except OSError as exc:
        raise LabError(f"cannot serve on {host}:{port} ({exc.strerror or exc}); try another --port or --host") from exc
    return NetronServer(model, bound_host, bound_port)


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
