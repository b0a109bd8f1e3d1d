"""Serving a page from the VM to a laptop: the checks and advice the recorder (01) and Netron (04) share.

Both scripts start a small web server on the VM while the student's browser
runs on a laptop. Before starting, we bind a throwaway socket to the address,
so a taken port or a wrong host becomes a one-line error instead of a traceback
from inside the server; after starting, we tell the student how to carry the
port to the laptop over SSH.
"""

from __future__ import annotations

import socket

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
