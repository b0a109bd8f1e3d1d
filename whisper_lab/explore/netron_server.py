"""Netron's own web app and one model file, served by the standard library's HTTP server.

The `netron` package on PyPI carries Netron's complete web app (index.html and
its scripts) next to a small server of its own. We serve the same app files,
byte for byte, with three differences that matter to the lab:

* The page stays usable after its expiry date. Netron's page compares the
  browser's clock with the build date written into index.html and, 180 days
  later, shows only "Please update to the newest version." (netron 9.3.3 was
  built 2026-10-23, so it would stop on 2027-04-21, in the middle of a
  semester). The lab pins a version that reads our files, so we serve the page
  without that build date; the page then takes today as its date, as Netron's
  own development builds do. The version number stays on the page.
* Each server shows its own model. Netron's server keeps the model in a class
  attribute, so a second server in the same process silently shows the first
  one's file; `04 --pictures` needs two at once (fp32 next to int8).
* Only that model is served, not the other files of its folder (Netron's
  server hands out any file next to the model, which matters with
  `--host 0.0.0.0`).

The page finds its model through `<meta name="file" content="/data/NAME">`,
the same contract Netron's own server uses.
"""

from __future__ import annotations

import functools
import http.server
import io
import re
import shutil
import socket
import threading
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path

# index.html carries these two; we write our own version line and leave the date out.
_VERSION_META = re.compile(r'<meta name="version" content="[^"]*">\n?')
_DATE_META = re.compile(r'<meta name="date" content="([^"]*)">\n?')
DATA_PREFIX = "/data/"


@dataclass(frozen=True)
class NetronApp:
    """Where the installed web app lives, its version, and the date its page would expire from."""

    folder: Path
    version: str
    built: datetime | None

    EXPIRY_DAYS = 180  # browser.js: `if (days > 180)` -> "Please update to the newest version."

    @classmethod
    def installed(cls) -> NetronApp:
        import netron

        folder = Path(netron.__file__).resolve().parent
        match = _DATE_META.search((folder / "index.html").read_text(encoding="utf-8"))
        built = None
        if match and match.group(1):
            built = datetime.fromisoformat(match.group(1).replace(" ", "T")).replace(tzinfo=UTC)
        return cls(folder, netron.__version__, built)

    def page(self, model_name: str, keep_build_date: bool = False) -> bytes:
        """index.html pointing at /data/<model_name>; without its build date unless `keep_build_date`."""
        html = (self.folder / "index.html").read_text(encoding="utf-8")
        if not keep_build_date:
            html = _DATE_META.sub("", html)
        metas = [
            '<meta name="type" content="Python">',
            f'<meta name="version" content="{escape(self.version)}">',
            f'<meta name="file" content="{DATA_PREFIX}{escape(urllib.parse.quote(model_name))}">',
            f'<meta name="name" content="{escape(model_name)}">',
        ]
        html, found = _VERSION_META.subn("\n".join(metas) + "\n", html, count=1)
        if not found:  # a future index.html without a version line: the metas still go into <head>
            html = html.replace("<head>", "<head>\n" + "\n".join(metas), 1)
        return html.encode("utf-8")


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files from Netron's folder; the page and the model are ours."""

    def __init__(self, *args, page: bytes, model: Path, **kwargs):
        self.page, self.model = page, model
        super().__init__(*args, **kwargs)

    def send_head(self):
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if path in ("/", "/index.html"):
            return self._send(self.page, "text/html; charset=utf-8")
        if path.startswith(DATA_PREFIX):
            if path[len(DATA_PREFIX):] != self.model.name:
                self.send_error(404)
                return None
            handle = self.model.open("rb")
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(self.model.stat().st_size))
            self.end_headers()
            return handle
        if path.endswith((".py", ".pyc", "/")):  # the app's files, not the package's Python or folder listings
            self.send_error(404)
            return None
        return super().send_head()

    def _send(self, body: bytes, content_type: str):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")  # the page names this server's model
        self.end_headers()
        return io.BytesIO(body)

    def copyfile(self, source, outputfile):
        try:
            shutil.copyfileobj(source, outputfile, 1 << 20)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser closed the tab mid-download: nothing to report

    def log_message(self, format, *args):
        pass  # a request line per file would bury the advice we print


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True  # a browser's open connection must not keep Ctrl-C waiting


@dataclass
class ServedModel:
    """A running server: its address and a way to stop it."""

    host: str
    port: int
    _server: _Server
    _thread: threading.Thread

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_server(model: Path, host: str, port: int, keep_build_date: bool = False) -> ServedModel:
    """Serve Netron's page and `model` at host:port (0 = any free port) from a background thread."""
    model = Path(model).resolve()
    app = NetronApp.installed()
    family = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    server_class = type("_Server", (_Server,), {"address_family": family})
    handler = functools.partial(_Handler, page=app.page(model.name, keep_build_date), model=model,
                                directory=str(app.folder))  # fmt: skip
    server = server_class((host, port), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name=f"netron:{model.name}", daemon=True)  # fmt: skip
    thread.start()
    return ServedModel(host, server.server_address[1], server, thread)
