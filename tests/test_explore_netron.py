"""04 --netron over plain HTTP: Netron's page and one real exported model, the CLI, and every bad input.

What the page does with the model in a real browser is tests/test_explore_netron_browser.py.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, assert_one_line_error, run_script

from whisper_lab.audio.speech_data import JFK
from whisper_lab.onnx_files import onnx_pair

SCRIPT = "04-compare-models.py"


@pytest.fixture(scope="module")
def exported(exported_run):
    """The folder holding all three precisions, exported once per test run by the real script 03."""
    return exported_run[0]


def pair(out, precision):
    return onnx_pair(out, "whisper-base", precision)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def test_netron_serves_the_model_and_stops(exported):
    from whisper_lab.explore.netron_view import serve_model

    model = pair(exported, "int8").encoder
    server = serve_model(model, port=0)
    try:
        status, page = _get(server.url)
        assert status == 200 and b"netron" in page.lower() and f"/data/{model.name}".encode() in page
        status, data = _get(f"{server.url}/data/{model.name}")
        assert status == 200 and data == model.read_bytes()
    finally:
        server.stop()
    for _ in range(100):  # stopping takes a moment: wait until it refuses, at most ~10 s
        try:
            _get(server.url)
        except urllib.error.URLError:
            break
        time.sleep(0.1)
    with pytest.raises(urllib.error.URLError):
        _get(server.url)


def test_page_is_netrons_own_without_its_expiry_date(exported):
    """The served page is the package's index.html, pointing at our model, minus the build date that expires."""
    import netron

    from whisper_lab.explore.netron_server import NetronApp, start_server

    app = NetronApp.installed()
    original = (app.folder / "index.html").read_text(encoding="utf-8")
    assert re.search(r'<meta name="date" content="[^"]+">', original), "Netron's page has no build date any more"
    assert app.built is not None and app.version == netron.__version__
    expires = app.built + timedelta(days=app.EXPIRY_DAYS)
    print(f"\nnetron {app.version}, built {app.built:%Y-%m-%d}: its own page refuses models from {expires:%Y-%m-%d}")

    model = pair(exported, "fp32").encoder
    served = start_server(model, "127.0.0.1", 0)
    try:
        status, page = _get(f"http://127.0.0.1:{served.port}/")
        html = page.decode()
        assert status == 200 and '<meta name="date"' not in html
        assert f'<meta name="version" content="{app.version}">' in html
        assert f'<meta name="file" content="/data/{model.name}">' in html
        # everything else is Netron's page as shipped
        assert re.sub(r'<meta name="(version|date)"[^>]*>\n', "", original) == re.sub(
            r'<meta name="(type|version|file|name)"[^>]*>\n', "", html)  # fmt: skip
        status, script = _get(f"http://127.0.0.1:{served.port}/view.js")
        assert status == 200 and script == (app.folder / "view.js").read_bytes()
    finally:
        served.stop()

    kept = start_server(model, "127.0.0.1", 0, keep_build_date=True)
    try:
        assert '<meta name="date"' in _get(f"http://127.0.0.1:{kept.port}/")[1].decode()
    finally:
        kept.stop()


def test_only_the_model_is_served_not_its_neighbours(exported):
    from whisper_lab.explore.netron_server import start_server

    model = pair(exported, "fp32").encoder
    served = start_server(model, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{served.port}"
    try:
        assert _get(f"{base}/data/{model.name}")[0] == 200
        neighbour = pair(exported, "fp32").decoder.name  # same folder: Netron's own server would hand it out
        assert _get(f"{base}/data/{neighbour}")[0] == 404
        assert _get(f"{base}/data/..%2F{model.parent.name}%2F{model.name}")[0] == 404
        assert _get(f"{base}/server.py")[0] == 404 and _get(f"{base}/")[0] == 200
        assert _get(f"{base}/__pycache__/")[0] == 404  # no folder listings
    finally:
        served.stop()


def test_two_servers_show_two_models(exported):
    """Netron's own server keeps the model in a class attribute: a second one in the process shows the first's."""
    from whisper_lab.explore.netron_server import start_server

    first, second = pair(exported, "fp32").encoder, pair(exported, "int8").encoder
    servers = [start_server(first, "127.0.0.1", 0), start_server(second, "127.0.0.1", 0)]
    try:
        for server, model in zip(servers, (first, second)):
            page = _get(f"http://127.0.0.1:{server.port}/")[1].decode()
            assert f"/data/{model.name}" in page
            status, data = _get(f"http://127.0.0.1:{server.port}/data/{model.name}")
            assert status == 200 and data == model.read_bytes()
    finally:
        for server in servers:
            server.stop()


def test_netron_cli_prints_url_and_forwarding_advice(exported):
    model = pair(exported, "fp16").decoder
    process = subprocess.Popen([sys.executable, str(REPO / SCRIPT), "--netron", str(model), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        first = process.stdout.readline()
        match = re.search(r"at (http://localhost:(\d+))", first)
        assert match, first
        url, port = match.group(1), match.group(2)
        watchdog = threading.Timer(60, process.kill)  # a missing line must fail the test, not hang it
        watchdog.start()
        advice = ""
        while "ssh -L" not in advice and (line := process.stdout.readline()):
            advice += line
        watchdog.cancel()
        assert f"ssh -L {port}:localhost:{port}" in advice and "VS Code" in advice
        assert _get(url)[0] == 200
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0 and "Traceback" not in stderr, stderr
    assert "Netron stopped." in stdout


# --- bad input -----------------------------------------------------------------------------------


def test_netron_port_in_use(exported):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_script(SCRIPT, "--netron", pair(exported, "int8").encoder, "--port", port, timeout=60)
    assert_one_line_error(result, f"port {port}", "in use", "--port")


def test_netron_missing_file(tmp_path):
    assert_one_line_error(run_script(SCRIPT, "--netron", tmp_path / "nope.onnx"), "nope.onnx", "no such file")
    assert_one_line_error(run_script(SCRIPT, "--netron", tmp_path), "is a folder")


def test_netron_refuses_files_that_are_not_onnx(tmp_path):
    # the shipped speech sample: Netron's server would happily serve it
    assert_one_line_error(run_script(SCRIPT, "--netron", JFK.path, "--port", "0", timeout=60),
                          Path(JFK.path).name, "not an ONNX model", ".onnx")  # fmt: skip
    fake = tmp_path / "fake.onnx"
    fake.write_bytes(np.random.default_rng(0).bytes(5000))
    assert_one_line_error(run_script(SCRIPT, "--netron", fake, "--port", "0", timeout=60),
                          "fake.onnx", "cannot read it as an ONNX model")  # fmt: skip


def test_netron_bad_port_and_host(exported):
    model = pair(exported, "int8").encoder
    assert_one_line_error(run_script(SCRIPT, "--netron", model, "--port", "70000"), "--port 70000")
    assert_one_line_error(run_script(SCRIPT, "--netron", model, "--host", "no-such-host.invalid"),
                          "--host no-such-host.invalid", "not an address of this machine")  # fmt: skip
