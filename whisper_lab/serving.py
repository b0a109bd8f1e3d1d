"""Serving a page from the VM to a laptop: the checks and advice the recorder (01), Netron (04) and step 9's page (05) share.

Both scripts start a small web server on the VM while the student's browser
runs on a laptop. Before starting, we bind a throwaway socket to the address,
so a taken port or a wrong host becomes a one-line error instead of a traceback
from inside the server; after starting, we tell the student how to carry the
port to the laptop over SSH.
"""

from __future__ import annotations

import errno
import socket

from .errors import LabError

# Listening on one of these means every interface of the machine.
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def probe_bind(host: str, port: int) -> None:
    """Bind a throwaway socket to host:port, as a web server would; raises what bind() raises.

    Used before starting a server, so that a taken port or a wrong host becomes a one-line
    error here instead of a traceback from inside Gradio or Netron.
    """
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # The same option web servers set: a port left in TIME_WAIT by a previous
        # run is free to reuse, a port some program listens on is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)


def forwarding_advice(port: int) -> list[str]:
    """How to reach a page served on the VM from a laptop: forward the port over SSH."""
    return [
        f"  VS Code (Remote-SSH) forwards it for you: see its PORTS tab, or 'Forward a Port' -> {port}.",
        f"  From a terminal on your laptop:  ssh -L {port}:localhost:{port} <user>@<vm-address>",
        f"  Then open http://localhost:{port} on your laptop.",
    ]


def page_url(host: str, port: int, scheme: str = "http") -> str:
    """The address to open on this machine (or through a forwarded port) for a server on host:port."""
    # "localhost": the name the forwarding advice uses, and one browsers trust with the microphone.
    host = "localhost" if host in (*WILDCARD_HOSTS, "127.0.0.1") else host
    if ":" in host:  # an IPv6 address goes in brackets in a URL
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def listen_error(exc: OSError | OverflowError, host: str, port: int, running: str, default_port: int,
                 any_port: bool = False) -> LabError:  # fmt: skip
    """Why a server cannot listen on host:port, and what to do, in one line.

    running: what probably holds a taken port ("the recorder"); any_port: --port 0 means any free port.
    """
    if isinstance(exc, OverflowError) or not (0 if any_port else 1) <= port <= 65535:  # bind() overflows > 65535
        zero = "0 = any free port" if any_port else f"default {default_port}"
        return LabError(f"--port {port}: a port is a number from 1 to 65535 ({zero})")
    if isinstance(exc, socket.gaierror):
        return LabError(f"--host {host}: not an address of this machine ({exc.strerror})")
    if isinstance(exc, PermissionError):
        return LabError(f"port {port} needs administrator rights; use a port above 1023, e.g. --port {default_port}")
    if exc.errno == errno.EADDRINUSE:
        free = ", or --port 0 for any free one" if any_port else ""
        return LabError(f"port {port} is already in use (is {running} already running in another terminal?); "
                        f"stop that program, or choose another port, e.g. --port {port + 1}{free}")  # fmt: skip
    return LabError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); check --host")


def check_can_listen(host: str, port: int, running: str, default_port: int, any_port: bool = False) -> None:
    """Fail now, in one line, if a server could not listen on host:port (rather than deep inside it)."""
    try:
        if not (0 if any_port else 1) <= port <= 65535:
            raise OverflowError(port)
        probe_bind(host, port)
    except (OSError, OverflowError) as exc:  # socket.gaierror (unknown host) is an OSError too
        raise listen_error(exc, host, port, running, default_port, any_port) from exc
