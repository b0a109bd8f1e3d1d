"""Reaching the page: the port check, the self-signed certificate, and the share probe."""

from __future__ import annotations

import socket

import pytest
from cryptography import x509
from recorder_process import free_port

from whisper_lab.errors import LabError
from whisper_lab.recorder.self_signed_cert import self_signed_cert
from whisper_lab.recorder.web_access import Serving, check_port_free


def test_port_check_refuses_a_listening_port_and_accepts_a_free_one():
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = other.getsockname()[1]
        with pytest.raises(LabError, match=f"port {taken} is already in use"):
            check_port_free("0.0.0.0", taken)  # all interfaces include the one that is taken
    check_port_free("0.0.0.0", free_port())


def test_urls_name_a_host_a_browser_can_open():
    assert Serving("0.0.0.0", 7860, https=False).local_url == "http://localhost:7860"
    assert Serving("127.0.0.1", 7861, https=True).local_url == "https://localhost:7861"
    assert Serving("192.0.2.7", 7861, https=True).local_url == "https://192.0.2.7:7861"
    assert Serving("::1", 7860, https=False).local_url == "http://[::1]:7860"
    assert Serving("127.0.0.1", 7860, https=False).network_url() is None


def test_self_signed_certificate_is_reused_until_the_names_change(tmp_path, monkeypatch):
    monkeypatch.setenv("WHISPER_LAB_CACHE", str(tmp_path))
    cert_path, key_path = self_signed_cert()
    first = cert_path.read_bytes()
    cert = x509.load_pem_x509_certificate(first)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert key_path.stat().st_mode & 0o077 == 0

    # A second start reuses it, so the browser's "proceed anyway" keeps working...
    assert self_signed_cert()[0].read_bytes() == first
    # ...unless the page is now served under a name it does not cover.
    renewed = self_signed_cert(extra_host="recorder.lab.test")[0].read_bytes()
    assert renewed != first
    san = x509.load_pem_x509_certificate(renewed).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert "recorder.lab.test" in san.get_values_for_type(x509.DNSName)
