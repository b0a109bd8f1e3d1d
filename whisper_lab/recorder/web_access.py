"""Getting a browser to the recorder page, with the microphone allowed.

The recorder runs on a VM; the student's browser runs on a laptop. Browsers give
the microphone only to a "secure context": a page served over https, or from
http://localhost (127.0.0.1 counts too). A page at http://<vm-address>:7860 is
neither, and there the Record button silently does nothing. So there are three
ways in, and this module prints which ones work:

1. SSH port forwarding: the laptop's localhost:7860 is carried over SSH to the
   VM's port 7860. The browser sees http://localhost:7860, a secure context.
   VS Code's Remote-SSH does this by itself when a program opens a port.
2. https on the VM: our own certificate (`--ssl-certfile/--ssl-keyfile`) or a
   self-signed one made on the fly (`--https`).
3. Gradio's share link: a public https://....gradio.live address, relayed through
   Gradio's servers. It needs internet access from the VM. Offline, Gradio's
   own message blames a missing "frpc" binary, which sends students hunting for
   a file when the real cause is the network. So we try the share service
   ourselves, with a short time limit, and say what actually went wrong.

Who else can reach the page matters too: it saves whatever it is sent over the
student's speech.wav. Port forwarding and the share link both work with a
server that listens on 127.0.0.1 only, so that is the default, and it needs no
password. Listening on the VM's own address (`--host 0.0.0.0`, or `--https`,
which is for browsers that come to that address) opens the page to the whole
network, so then the page asks for a password: a new one made at each start
and printed with the address, or the student's own (`--password`).
`--no-password` drops it, with a warning, for a network the student trusts.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import secrets
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ..errors import LabError
from ..serving import WILDCARD_HOSTS, check_can_listen, forwarding_advice, listen_error, page_url

# The share service Gradio asks for a tunnel; GRADIO_SHARE_SERVER_ADDRESS points at your own.
GRADIO_SHARE_API = "api.gradio.app"
SHARE_PROBE_SECONDS = 4.0
# The login form asks for a user name as well; one fixed name keeps it simple.
PASSWORD_USER = "lab"
MIN_PASSWORD_LENGTH = 8
# Easy to read aloud and type: no 0/o, 1/l/i. Three groups of four: 59 bits, plenty
# for a page that lives as long as a lab session.
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


class ShareUnavailable(Exception):
    """The public share link could not be had; the message says why, in a few words."""


@dataclass(frozen=True)
class Serving:
    host: str  # the address we listen on; 0.0.0.0 means every interface
    port: int
    https: bool

    @property
    def scheme(self) -> str:
        return "https" if self.https else "http"

    @property
    def local_url(self) -> str:
        return page_url(self.host, self.port, self.scheme)

    def network_url(self) -> str | None:
        """The address other machines use, when we listen on every interface."""
        if self.host in WILDCARD_HOSTS:
            return f"{self.scheme}://{socket.gethostname()}:{self.port}"
        return None  # listening on one address only: local_url already names it


def default_host(https: bool) -> str:
    """127.0.0.1 (this machine, and forwarded ports) unless https is asked for, which is for other machines."""
    return "0.0.0.0" if https else "127.0.0.1"


def is_loopback(host: str) -> bool:
    """Whether `host` means this machine only (127.0.0.1, ::1, localhost), so the network cannot reach it."""
    if host in WILDCARD_HOSTS:
        return False
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def new_password() -> str:
    return "-".join("".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(4)) for _ in range(3))


@dataclass(frozen=True)
class PagePassword:
    password: str | None  # None: no login form
    chosen: bool  # given with --password (so we do not print it back)


def page_password(host: str, given: str | None, no_password: bool) -> PagePassword:
    """The password the page asks for: none on this machine only, else the given one or a new one."""
    if given is not None and no_password:
        raise LabError("use either --password or --no-password, not both")
    if given is not None:
        if len(given) < MIN_PASSWORD_LENGTH:
            raise LabError(f"--password: use at least {MIN_PASSWORD_LENGTH} characters (anyone on the network "
                           "can try passwords); or leave it out and the recorder makes one")
        return PagePassword(given, chosen=True)
    if no_password or is_loopback(host):
        return PagePassword(None, chosen=False)
    return PagePassword(new_password(), chosen=False)


def print_password(access: PagePassword, host: str, port: int, output_name: str) -> None:
    if access.password is not None:
        shown = "the one given with --password" if access.chosen else access.password
        print(f"Password: {shown}   (user name: {PASSWORD_USER}; the page asks for it, "
              "since other machines can reach it)", flush=True)
    elif not is_loopback(host):
        print(f"warning: no password (--no-password): anyone who can reach this machine's port {port} "
              f"can use the recorder and overwrite {output_name}", file=sys.stderr, flush=True)


def check_port_free(host: str, port: int) -> None:
    """Fail now, in one line, if we cannot listen on host:port (rather than deep inside Gradio)."""
    check_can_listen(host, port, running="the recorder", default_port=7860)


def port_taken_message(port: int) -> str:
    return str(listen_error(OSError(errno.EADDRINUSE, "in use"), "", port, "the recorder", 7860))


def tls_files(https: bool, certfile: Path | None, keyfile: Path | None,
              host: str) -> tuple[Path | None, Path | None]:
    """The certificate and key to serve https with, or (None, None) for plain http.

    Given files are checked now (that they load, and belong together), so a typo
    fails here in one line instead of as a traceback from the web server.
    """
    import ssl

    if https and (certfile or keyfile):
        raise LabError("use either --https (self-signed) or --ssl-certfile/--ssl-keyfile, not both")
    if keyfile is not None and certfile is None:
        raise LabError("--ssl-keyfile needs --ssl-certfile too")
    if https:
        from .self_signed_cert import self_signed_cert

        return self_signed_cert(extra_host=host)
    if certfile is None:
        return None, None
    for flag, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        if path is not None and not path.is_file():
            raise LabError(f"{flag} {path}: no such file")
    try:  # a key may also sit in the certificate file itself, hence keyfile=None is allowed
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            str(certfile), str(keyfile) if keyfile else None)
    except (ssl.SSLError, OSError) as exc:
        raise LabError(f"cannot use {certfile} as an https certificate"
                       f"{' with ' + str(keyfile) if keyfile else ''}: {exc}; "
                       "pass a PEM certificate and its private key, or use --https") from exc
    return certfile, keyfile


def _share_service() -> tuple[str, int]:
    custom = os.environ.get("GRADIO_SHARE_SERVER_ADDRESS")
    if custom and ":" in custom:
        host, port = custom.rsplit(":", 1)
        return host, int(port)
    return GRADIO_SHARE_API, 443


def _unreachable(host: str, port: int, seconds: float) -> str | None:
    """Why host:port cannot be reached within `seconds` (None if it can).

    Runs in a thread because a name look-up has no timeout of its own: on a VM
    whose DNS server is firewalled it can hang for half a minute.
    """
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=seconds).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(exc.strerror or str(exc) or type(exc).__name__)

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(seconds)
    return outcome[0] if outcome else f"no answer within {seconds:.0f} s"


def open_share_link(share_token: str, serving: Serving, probe_seconds: float = SHARE_PROBE_SECONDS) -> str:
    """Ask Gradio's share service for a public https URL relayed to our local port."""
    host, port = _share_service()
    reason = _unreachable(host, port, probe_seconds)
    if reason:
        raise ShareUnavailable(f"this machine cannot reach Gradio's share service "
                               f"({host}:{port}: {reason}); it seems to have no internet access")
    from gradio import networking

    local_host = "127.0.0.1" if serving.host in WILDCARD_HOSTS else serving.host
    try:
        url = networking.setup_tunnel(local_host=local_host, local_port=serving.port, share_token=share_token,
                                      share_server_address=None, share_server_tls_certificate=None)
    except Exception as exc:  # noqa: BLE001 - any failure of an optional tunnel must leave the local page up
        raise ShareUnavailable(f"Gradio's share tunnel did not start "
                               f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from exc
    return "https://" + urlparse(url).netloc  # the relay speaks https to browsers, whatever frpc reports


def fallback_advice(serving: Serving, script: str) -> str:
    """What to do when there is no share link: the two ways to a secure context."""
    port = serving.port
    lines = [
        "To record from the browser on your laptop, use one of these:",
        f"  1. Forward port {port} over SSH and use http://localhost:{port}",
        "     (browsers allow the microphone on localhost even without https):",
        *("   " + line for line in forwarding_advice(port)),
        f"  2. Serve https from the VM and open https://<vm-address>:{port}, accepting the browser's warning",
        "     (the page then asks for the password printed at start):",
        f"     python {script} --https        (makes a self-signed certificate)",
        f"     python {script} --ssl-certfile cert.pem --ssl-keyfile key.pem",
    ]
    return "\n".join(lines)
