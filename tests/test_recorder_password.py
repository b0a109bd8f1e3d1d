"""Who can reach the recorder: this machine only by default; anyone else only with the printed password.

The recorder saves whatever it is sent over the student's speech.wav, so a page
reachable from the network must not be open to the network. Each test starts
the real script and talks to it over real sockets: once as the student on the
VM (127.0.0.1), once as another machine would (the VM's own address).
"""

from __future__ import annotations

import re
import socket

import httpx
import pytest
import soundfile as sf
from recorder_process import (
    Recorder,
    api_client,
    free_port,
    save_through_api,
    started,
    this_machines_address,
    upload,
)

from whisper_lab.audio.speech_data import JFK

USER = "lab"


@pytest.fixture
def vm_address() -> str:
    address = this_machines_address()
    if address is None:
        pytest.skip("this machine has no network address besides loopback")
    return address


def start(tmp_path, *args: str) -> tuple[Recorder, int]:
    port = free_port()
    recorder = Recorder("--no-share", "--port", str(port), "--output", str(tmp_path / "speech.wav"), *args)
    started(recorder)
    return recorder, port


def printed_password(recorder: Recorder) -> str:
    match = re.search(rf"^Password: (\S+)   \(user name: {USER}\b", recorder.output, re.MULTILINE)
    assert match, f"no password printed:\n{recorder.output}"
    return match.group(1)


def refused_connection(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=5).close()
        return False
    except ConnectionRefusedError:
        return True


def test_by_default_only_this_machine_reaches_the_page_and_no_password_is_asked(tmp_path, vm_address):
    recorder, port = start(tmp_path)
    try:
        assert refused_connection(vm_address, port), f"the page answers on {vm_address}:{port}"
        assert not re.search(r"^Password:", recorder.output, re.MULTILINE), recorder.output
        local = f"http://127.0.0.1:{port}"
        assert upload(local, JFK.path).status_code == 200
        status, _ = save_through_api(api_client(local), JFK.path)
        assert status.startswith("Saved speech.wav: 11.0 s"), status
    finally:
        recorder.stop()


def test_every_interface_needs_the_password_printed_at_start(tmp_path, vm_address):
    recorder, port = start(tmp_path, "--host", "0.0.0.0")
    try:
        password = printed_password(recorder)
        assert len(password) >= 12
        remote = f"http://{vm_address}:{port}"

        # Without the password: the page is only a login form; nothing else answers.
        anonymous = httpx.Client()
        assert anonymous.get(f"{remote}/config").status_code == 401
        assert upload(remote, JFK.path, anonymous).status_code == 401
        with pytest.raises(Exception, match="(?i)login|auth|401"):
            save_through_api(api_client(remote), JFK.path)
        wrong = anonymous.post(f"{remote}/login", data={"username": USER, "password": password + "x"})
        assert wrong.status_code == 400
        assert not (tmp_path / "speech.wav").exists()

        # With it, from another machine's point of view: upload and save work.
        student = httpx.Client()
        assert student.post(f"{remote}/login", data={"username": USER, "password": password}).status_code == 200
        assert student.get(f"{remote}/config").status_code == 200
        assert upload(remote, JFK.path, student).status_code == 200
        status, _ = save_through_api(api_client(remote, auth=(USER, password)), JFK.path)
        assert status.startswith("Saved speech.wav: 11.0 s"), status
        assert sf.info(tmp_path / "speech.wav").duration == pytest.approx(11.0, abs=0.01)
    finally:
        recorder.stop()


def test_https_on_the_vms_address_needs_the_password_too(tmp_path, vm_address, monkeypatch):
    monkeypatch.setenv("WHISPER_LAB_CACHE", str(tmp_path / "cache"))  # the certificate goes here
    recorder, port = start(tmp_path, "--https")
    try:
        password = printed_password(recorder)
        remote = f"https://{vm_address}:{port}"
        assert httpx.get(f"{remote}/config", verify=False).status_code == 401
        student = httpx.Client(verify=False)
        assert student.post(f"{remote}/login", data={"username": USER, "password": password}).status_code == 200
        assert student.get(f"{remote}/config").status_code == 200
    finally:
        recorder.stop()


def test_a_password_of_ones_own_and_no_password_with_a_warning(tmp_path, vm_address):
    chosen = "correct-horse-battery"
    recorder, port = start(tmp_path, "--host", "0.0.0.0", "--password", chosen)
    try:
        assert chosen not in recorder.output, "a password the student typed is not echoed"
        assert re.search(rf"^Password: the one given with --password   \(user name: {USER}\b",
                         recorder.output, re.MULTILINE), recorder.output
        remote = f"http://{vm_address}:{port}"
        assert httpx.get(f"{remote}/config").status_code == 401
        student = httpx.Client()
        assert student.post(f"{remote}/login", data={"username": USER, "password": chosen}).status_code == 200
        assert upload(remote, JFK.path, student).status_code == 200
    finally:
        recorder.stop()

    recorder, port = start(tmp_path, "--host", "0.0.0.0", "--no-password")
    try:
        assert "warning: no password (--no-password): anyone who can reach this machine's port" in recorder.output
        assert upload(f"http://{vm_address}:{port}", JFK.path).status_code == 200
    finally:
        recorder.stop()
