"""End to end in a real browser: record JFK through a fake microphone, save, and let Whisper read it back.

Headless Debian Chromium, driven by Playwright, plays samples/jfk.wav as its
microphone (--use-file-for-fake-audio-capture) and grants the permission
without asking (--use-fake-ui-for-media-stream). Everything else is real: the
recorder script, Gradio's page and upload, our save path, and script 02 with
the real whisper-base weights.

Needs Chromium: `apt-get install chromium chromium-driver` (.ci/install-browser.sh).
Set WHISPER_LAB_SKIP_BROWSER=1 to skip these tests on a machine without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import httpx
import numpy as np
import pytest
import soundfile as sf
from conftest import PYTHON, REPO
from recorder_process import Recorder, free_port

from whisper_lab.audio.speech_data import JFK
from whisper_lab.compare.wer import word_error_rate

pytestmark = pytest.mark.browser

ARTIFACTS = REPO / "test-artifacts"
RECORD_SECONDS = 11.5  # JFK's sentence is 11.0 s; the fake microphone starts it when recording starts
MAX_WER = 0.20
VM_NAME = "lab-vm.test"  # a name that is not localhost, mapped to 127.0.0.1 inside the browser only
CHROMIUM_FLAGS = [
    # Run as root in a container without a display or GPU.
    "--no-sandbox", "--disable-gpu",
    # The closed network: without these Chromium keeps trying (and failing) to reach Google.
    "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    # The fake microphone: a WAV file instead of a device, permission granted automatically.
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    f"--use-file-for-fake-audio-capture={JFK.path}",
    f"--host-resolver-rules=MAP {VM_NAME} 127.0.0.1",
]


def find_chromium() -> str:
    if os.environ.get("WHISPER_LAB_SKIP_BROWSER") == "1":
        pytest.skip("WHISPER_LAB_SKIP_BROWSER=1")
    for candidate in ("chromium", "chromium-browser"):
        if shutil.which(candidate):
            return shutil.which(candidate)
    pytest.fail("Chromium is not installed. Install it with `apt-get install chromium chromium-driver` "
                "(as root; `bash .ci/install-browser.sh` does that), or set WHISPER_LAB_SKIP_BROWSER=1 "
                "to skip the browser tests.", pytrace=False)


@pytest.fixture(scope="module")
def browser():
    chromium = find_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: pip install -r requirements-test.txt", pytrace=False)
    with sync_playwright() as playwright:
        # Playwright drives the system Chromium; its own browser download does not work offline.
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def recorder(tmp_path_factory):
    output = tmp_path_factory.mktemp("recorder") / "speech.wav"
    port = free_port()
    process = Recorder("--no-share", "--port", str(port), "--output", str(output))
    try:
        process.expect(r"^Press Ctrl\+C to stop", timeout=60)
        process.port, process.output_path = port, output
        yield process
    finally:
        process.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    yield page
    context.close()


# The status line's own text. Around it, while an event is running, Gradio draws its
# progress tracker ("processing | 0.1s"), which can still be there as the new text arrives.
STATUS_TEXT = "#status [data-testid='markdown']"


def status_after_save(page) -> str:
    page.locator("#save").click()
    page.wait_for_function(
        f"() => /Saved|Not saved/.test(document.querySelector(\"{STATUS_TEXT}\").innerText)", timeout=30_000)
    return page.inner_text(STATUS_TEXT).strip()


def test_record_save_and_whisper_transcribes_it(page, browser, recorder):
    started = time.monotonic()
    page.goto(f"http://localhost:{recorder.port}/")
    page.wait_for_selector("#recording")
    assert page.evaluate("window.isSecureContext") is True
    assert not page.locator("#insecure-context").is_visible()
    assert page.locator("#save").is_disabled(), "Save Recording must wait for a recording"

    page.locator("#recording").get_by_role("button", name="Record", exact=True).click()
    time.sleep(RECORD_SECONDS)
    # Click Stop and look at the Save button in the same breath (one JavaScript task):
    # the recording cannot have been uploaded yet, so the button must still be off.
    disabled_at_stop = page.evaluate("""() => {
        document.querySelector('#recording button.stop-button').click();
        return document.querySelector('#save').disabled;
    }""")
    assert disabled_at_stop, "Save Recording was clickable before the recording reached the server"
    page.wait_for_function("() => !document.querySelector('#save').disabled", timeout=30_000)
    # Click the moment it turns on, as an impatient student would: the whole recording must be there.
    status = status_after_save(page)
    assert status.startswith("Saved speech.wav: "), status
    page.wait_for_selector("#log-mel img", timeout=60_000)
    page_seconds = time.monotonic() - started
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "recorder-saved.png"), full_page=True)

    # The file is what Whisper wants, and holds speech.
    saved = recorder.output_path
    info = sf.info(saved)
    assert (info.samplerate, info.channels, info.subtype) == (16_000, 1, "PCM_16")
    assert 10.0 < info.duration < 13.0, info.duration
    samples, _ = sf.read(saved, dtype="float32")
    rms_dbfs = 10 * np.log10(np.mean(samples ** 2))
    assert rms_dbfs > -40, f"the recording is nearly silent (RMS {rms_dbfs:.0f} dBFS)"
    assert f"{info.duration:.1f} s" in status

    # The download link serves that same file.
    href = page.locator("#download a[href]").first.get_attribute("href")
    download = httpx.get(httpx.URL(f"http://localhost:{recorder.port}/").join(href), timeout=10)
    assert download.status_code == 200 and download.content == saved.read_bytes()

    # And script 02 hears JFK's sentence in it.
    started_02 = time.monotonic()
    result = subprocess.run([PYTHON, str(REPO / "02-whisper-huggingface.py"), "--audio", str(saved)],
                            cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    transcript = result.stdout.split("Transcription:", 1)[1].strip()
    wer = word_error_rate(JFK.text, transcript)  # jiwer, after Whisper's text normalizer (case, punctuation)
    report = (f"chromium: {browser.version}\nstatus: {status}\ntranscript: {transcript}\n"
              f"WER: {wer:.3f}\nrecord+save+figure: {page_seconds:.1f} s, 02: {time.monotonic() - started_02:.1f} s\n")
    (ARTIFACTS / "browser-test.txt").write_text(report)
    print("\n" + report)
    assert wer <= MAX_WER, f"02 heard {transcript!r} (WER {wer:.0%})"


def test_a_refused_upload_says_why_on_the_page_and_writes_nothing(page, recorder, tmp_path):
    silent = tmp_path / "muted-microphone.wav"
    sf.write(silent, np.zeros((3 * 48_000, 2), dtype=np.int16), 48_000, subtype="PCM_16")
    before = recorder.output_path.read_bytes() if recorder.output_path.exists() else None

    page.goto(f"http://localhost:{recorder.port}/")
    page.locator("#recording").get_by_role("button", name="Upload file").click()
    page.locator("#recording input[type=file]").set_input_files(str(silent))
    page.wait_for_function("() => !document.querySelector('#save').disabled", timeout=30_000)
    status = status_after_save(page)

    assert status.startswith("Not saved: the recording is silent"), status
    after = recorder.output_path.read_bytes() if recorder.output_path.exists() else None
    assert after == before
    assert not page.locator("#download a[href]").count()


def test_plain_http_at_the_vms_address_explains_the_blocked_microphone(page, recorder):
    # What a student sees at http://<vm-address>:7860 without port forwarding.
    page.goto(f"http://{VM_NAME}:{recorder.port}/")
    page.wait_for_selector("#recording")
    assert page.evaluate("window.isSecureContext") is False
    warning = page.locator("#insecure-context")
    warning.wait_for(state="visible", timeout=10_000)
    text = warning.inner_text()
    assert f"http://{VM_NAME}:{recorder.port}" in text
    assert f"ssh -L {recorder.port}:localhost:{recorder.port}" in text and "--https" in text
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "recorder-insecure-context.png"))
