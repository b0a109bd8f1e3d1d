"""01-record-audio-app.py as a student starts it: offline share, https, and bad input."""

from __future__ import annotations

import socket
import ssl

import httpx
import pytest
from conftest import assert_one_line_error, run_script
from cryptography import x509
from recorder_process import SCRIPT, Recorder, free_port

from whisper_lab.recorder.web_access import SHARE_PROBE_SECONDS

START_SECONDS = 60  # only a wait for the server to come up: generous, for a machine shared with other work
# Offline, the share attempt must give up after its own short probe (SHARE_PROBE_SECONDS), not
# after the half minute a firewalled DNS look-up can take. The probe waits on the network, not
# on the CPU, so this bound on the gap between the page's URL and the advice holds on a busy machine.
PROBE_GAP_SECONDS = SHARE_PROBE_SECONDS + 6


def share_service_reachable() -> bool:
    try:
        socket.create_connection(("api.gradio.app", 443), timeout=3).close()
        return True
    except OSError:
        return False


def test_offline_share_prints_local_url_and_fallback_advice_fast(tmp_path):
    env = {}
    if share_service_reachable():
        # This machine is online (a developer's laptop, say): make the share service
        # unreachable for this run, by pointing Gradio at a loopback port nobody listens on.
        env["GRADIO_SHARE_SERVER_ADDRESS"] = f"127.0.0.1:{free_port()}"
    port = free_port()
    # --share is on by default: no flag needed
    recorder = Recorder("--port", str(port), "--output", str(tmp_path / "speech.wav"), env=env)
    try:
        recorder.expect(rf"^Recorder page: http://localhost:{port}\b", timeout=START_SECONDS)
        url_seconds = recorder.lines[-1][0]
        recorder.expect(r"^No public share link: this machine cannot reach Gradio's share service",
                        timeout=PROBE_GAP_SECONDS + 30)
        recorder.expect(rf"ssh -L {port}:localhost:{port} ", timeout=10)
        recorder.expect(r"--https", timeout=10)
        recorder.expect(r"--ssl-certfile cert.pem --ssl-keyfile key.pem", timeout=10)
        gap = recorder.lines[-1][0] - url_seconds
        recorder.expect(r"^Press Ctrl\+C to stop", timeout=10)
        print(f"\nshare advice printed {gap:.1f} s after the local URL:\n{recorder.output}")
        assert gap < PROBE_GAP_SECONDS
        # Gradio's own message would send students looking for a missing frpc binary.
        assert "frpc" not in recorder.output and "Missing file" not in recorder.output
        # ...and the page is still served locally.
        page = httpx.get(f"http://localhost:{port}/", timeout=10)
        assert page.status_code == 200 and "gradio" in page.text.lower()
        assert recorder.proc.poll() is None
    finally:
        recorder.stop()


def test_https_serves_the_page_with_a_self_signed_certificate(tmp_path):
    port = free_port()
    cache = tmp_path / "cache"
    recorder = Recorder("--https", "--port", str(port), "--output", str(tmp_path / "speech.wav"),
                        env={"WHISPER_LAB_CACHE": str(cache)})
    try:
        cert_path = recorder.expect(r"^Self-signed certificate: (.+)$", timeout=START_SECONDS).group(1)
        recorder.expect(rf"^Recorder page: https://localhost:{port}\b", timeout=START_SECONDS)
        # --https is for other machines: every interface, and the page asks for a password.
        recorder.expect(r"^On the network: https://", timeout=5)
        recorder.expect(r"^Password: \S+   \(user name: lab", timeout=5)
        recorder.expect(r"^No public share link asked for: the page is served over https", timeout=5)
        page = httpx.get(f"https://localhost:{port}/", verify=False, timeout=10)
        assert page.status_code == 200

        served = x509.load_pem_x509_certificate(ssl.get_server_certificate(("localhost", port)).encode())
        names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "localhost" in names.get_values_for_type(x509.DNSName)
        assert served.subject == served.issuer  # self-signed
        assert cert_path.startswith(str(cache))
        key = cache / "tls" / "recorder-key.pem"
        assert key.stat().st_mode & 0o077 == 0, "the private key must be readable by its owner only"
    finally:
        recorder.stop()


def test_a_taken_port_is_one_clear_line_before_gradio_loads(tmp_path):
    # A stand-in gradio that cannot be imported: the port must be checked before the
    # seconds of importing Gradio, so the student hears at once.
    (tmp_path / "gradio").mkdir()
    (tmp_path / "gradio" / "__init__.py").write_text("raise ImportError('gradio imported before the port check')\n")
    with socket.socket() as other_program:
        other_program.bind(("127.0.0.1", 0))
        other_program.listen()
        port = other_program.getsockname()[1]
        result = run_script(SCRIPT, "--port", port, "--output", tmp_path / "speech.wav", timeout=60,
                            env={"PYTHONPATH": str(tmp_path)})  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == (f"error: port {port} is already in use (is the recorder already running in "
                             f"another terminal?); stop that program, or choose another port, e.g. --port {port + 1}\n")
    assert result.stdout == ""


@pytest.mark.parametrize("args, message", [
    (["--output", "speech.mp3"], "error: --output speech.mp3: the recorder writes WAV files"),
    (["--output", "/proc/no/such/speech.wav"], "error: --output /proc/no/such/speech.wav: cannot create its folder"),
    (["--ssl-keyfile", "key.pem"], "error: --ssl-keyfile needs --ssl-certfile too"),
    (["--ssl-certfile", "no-such-cert.pem"], "error: --ssl-certfile no-such-cert.pem: no such file"),
    (["--ssl-certfile", "samples/jfk.wav"], "error: cannot use samples/jfk.wav as an https certificate"),
    (["--https", "--ssl-certfile", "cert.pem"], "error: use either --https (self-signed) or --ssl-certfile"),
    (["--port", "70000"], "error: --port 70000: a port is a number from 1 to 65535"),
    (["--host", "no-such-host.invalid"], "error: --host no-such-host.invalid: not an address of this machine"),
    (["--host", "0.0.0.0", "--password", "lab"], "error: --password: use at least 8 characters"),
    (["--password", "long-enough", "--no-password"], "error: use either --password or --no-password, not both"),
])
def test_bad_input_is_one_line_error_without_traceback(args, message):
    result = run_script(SCRIPT, *args, timeout=60)
    assert result.returncode == 1
    assert_one_line_error(result, message)
    assert result.stderr.count("\n") == 1, result.stderr  # nothing but that line
