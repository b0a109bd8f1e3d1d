"""Step 9 in a real browser: the page runs the one-file model with onnxruntime-web, and hears what Python hears.

Headless Debian Chromium, driven by Playwright. The page and the models come
from the lab's own server (the one `05 --serve` starts); every request that
would leave it is blocked, and the test checks that the page only ever
downloaded (GET), never sent anything. The fake microphone plays
samples/jfk.wav. Needs Chromium (.ci/install-browser.sh) and onnxruntime-web
in web/node_modules (.ci/install-web.sh); WHISPER_LAB_SKIP_BROWSER=1 skips.
"""

from __future__ import annotations

import os
import shutil
import time
from urllib.parse import urlparse

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO
from end2end_files import built_end2end
from int8_tolerance import assert_int8_close

from whisper_lab.audio.loading import load_audio
from whisper_lab.audio.speech_data import JFK
from whisper_lab.compare.wer import word_error_rate
from whisper_lab.end2end.session import EndToEnd

pytestmark = pytest.mark.browser

ARTIFACTS = REPO / "test-artifacts"
PAGE_TIMEOUT_MS = 600_000  # loading 290 MB of fp32 model and transcribing, on 2 busy cores


@pytest.fixture(scope="module")
def built(exported_run, tmp_path_factory):
    folder, _ = exported_run
    return built_end2end(folder, tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def server(built):
    from whisper_lab.end2end.web_server import PageServer

    page_server = PageServer([built.file("int8"), built.file("fp32")], port=0)  # int8 first: the page's default
    yield page_server
    page_server.stop()


@pytest.fixture(scope="module")
def chromium():
    if os.environ.get("WHISPER_LAB_SKIP_BROWSER") == "1":
        pytest.skip("WHISPER_LAB_SKIP_BROWSER=1")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        pytest.fail("Chromium is not installed: bash .ci/install-browser.sh (or WHISPER_LAB_SKIP_BROWSER=1)", pytrace=False)
    from playwright.sync_api import sync_playwright

    flags = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-quic",
             # the microphone: samples/jfk.wav, permission granted without asking
             "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
             f"--use-file-for-fake-audio-capture={JFK.path}"]  # fmt: skip
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=flags)
        yield browser
        browser.close()


class Page:
    """One tab on the lab's page, with every request it makes written down (and outside ones blocked)."""

    def __init__(self, chromium, server, query: str = ""):
        self.context = chromium.new_context(viewport={"width": 1000, "height": 800})
        self.origin = urlparse(server.url)._replace(netloc=f"127.0.0.1:{server.port}").geturl()
        self.requests: list[tuple[str, str, bytes | None]] = []
        self.context.route("**/*", self._only_the_lab_server)
        self.page = self.context.new_page()
        self.page.on("request", lambda r: self.requests.append((r.method, r.url, r.post_data_buffer)))
        started = time.monotonic()
        self.page.goto(f"{self.origin}/{query}")
        self.page.wait_for_function("() => window.whisperLab && (whisperLab.ready || whisperLab.error)",
                                    timeout=PAGE_TIMEOUT_MS)  # fmt: skip
        assert self.page.evaluate("whisperLab.error") is None, self.page.evaluate("whisperLab.error")
        self.load_seconds = time.monotonic() - started

    def _only_the_lab_server(self, route):
        url = route.request.url
        if url.startswith((self.origin, "data:", "blob:")):
            route.continue_()
        else:
            route.abort()

    def transcribe_file(self, path) -> dict:
        self.page.evaluate("whisperLab.result = null; whisperLab.error = null")
        self.page.set_input_files("#file", str(path))
        return self.wait_for_result()

    def wait_for_result(self) -> dict:
        self.page.wait_for_function("() => !whisperLab.busy && (whisperLab.result || whisperLab.error)",
                                    timeout=PAGE_TIMEOUT_MS)  # fmt: skip
        error = self.page.evaluate("whisperLab.error")
        assert error is None, error
        return self.page.evaluate("whisperLab.result")

    def pcm(self) -> np.ndarray:
        """The exact samples the page fed to the model."""
        return np.array(self.page.evaluate("Array.from(whisperLab.pcm)"), dtype=np.float32)

    def assert_nothing_was_sent(self) -> None:
        assert self.requests, "the page made no request at all?"
        for method, url, body in self.requests:
            assert method == "GET" and not body, (method, url)
            assert url.startswith((self.origin, "data:", "blob:")), url


@pytest.fixture(scope="module")
def int8_page(chromium, server):
    page = Page(chromium, server)
    yield page
    page.context.close()


@pytest.mark.slow  # 290 MB into the browser
def test_the_page_transcribes_the_sample_like_python_fp32(chromium, server, built):
    page = Page(chromium, server, "?model=whisper-base_end2end.onnx")
    try:
        result = page.transcribe_file(JFK.path)
        pcm, samples = page.pcm(), load_audio(JFK.path)
        one_file = EndToEnd(built.file("fp32"))
        python = one_file.transcribe(pcm)
        print(f"\nfp32 in Chromium ({page.load_seconds:.0f} s to load, {result['seconds']:.1f} s to transcribe): "
              f"{result['text']}")  # fmt: skip
        # The same samples, but for the last bit: Chromium scales positive 16-bit values by 1/32767, soundfile by 1/32768.
        assert len(pcm) == len(samples) and np.abs(pcm - samples).max() < 1e-4
        assert result["tokens"] == python.tokens
        assert result["text"] == python.text == one_file.transcribe(samples).text == JFK.text
        assert abs(result["noSpeechProb"] - python.no_speech_prob) < 1e-3
        assert abs(result["avgLogprob"] - python.avg_logprob) < 1e-3
        page.assert_nothing_was_sent()
    finally:
        page.context.close()


def test_the_default_int8_page_transcribes_the_sample_like_python(int8_page, built):
    result = int8_page.transcribe_file(JFK.path)
    python = EndToEnd(built.file("int8")).transcribe(int8_page.pcm())
    ARTIFACTS.mkdir(exist_ok=True)
    int8_page.page.screenshot(path=str(ARTIFACTS / "end2end-page.png"), full_page=True)
    print(f"\nint8 in Chromium ({int8_page.load_seconds:.0f} s to load, {result['seconds']:.1f} s to transcribe): "
          f"{result['text']}\nint8 in Python: {python.text}")  # fmt: skip
    assert int8_page.page.evaluate("whisperLab.model") == "whisper-base_end2end_int8.onnx"
    # int8 sums are exact, but the float parts around them differ in the last bits between the
    # WebAssembly and the native kernels, and int8 rounding can carry such a bit into a token.
    assert_int8_close(result["tokens"], python.tokens, "the browser against Python on the sample speech")
    assert word_error_rate(JFK.text, result["text"]) <= 0.1
    int8_page.assert_nothing_was_sent()


def test_the_page_resamples_to_16_khz_and_mixes_to_mono(int8_page, jfk_audio, tmp_path):
    """A 48 kHz stereo file (right channel at half level): the page must hear what load_audio hears."""
    import soxr

    high = soxr.resample(jfk_audio, 16_000, 48_000)
    stereo = tmp_path / "jfk-48k-stereo.wav"
    sf.write(stereo, np.stack([high, 0.5 * high], axis=1), 48_000, subtype="FLOAT")
    result = int8_page.transcribe_file(stereo)
    page_pcm, python_pcm = int8_page.pcm(), load_audio(stereo)
    n = min(len(page_pcm), len(python_pcm))
    noise = page_pcm[:n] - python_pcm[:n]
    snr = 10 * np.log10(np.sum(python_pcm[:n] ** 2) / np.sum(noise**2))
    print(f"\n48 kHz stereo -> page {len(page_pcm)} samples, load_audio {len(python_pcm)}; SNR vs soxr {snr:.0f} dB; "
          f"{result['text']}")  # fmt: skip
    assert abs(len(page_pcm) - len(python_pcm)) <= 2
    assert snr > 30, "the browser's resampling must agree with soxr's"
    assert np.isclose(np.abs(page_pcm).max(), 0.75 * np.abs(jfk_audio).max(), rtol=0.05)  # (1 + 0.5) / 2
    assert word_error_rate(JFK.text, result["text"]) <= 0.1, result["text"]


def test_a_recording_made_in_the_page_is_transcribed(int8_page):
    page = int8_page.page
    page.evaluate("whisperLab.result = null; whisperLab.error = null")
    page.click("#record")
    time.sleep(11.5)  # the fake microphone plays JFK's 11 s sentence from the start of the recording
    page.click("#stop")
    result = int8_page.wait_for_result()
    seconds = len(int8_page.pcm()) / 16_000
    print(f"\nrecorded {seconds:.1f} s in the page: {result['text']}")
    assert 10.5 < seconds < 13
    assert word_error_rate(JFK.text, result["text"]) <= 0.2, result["text"]
    int8_page.assert_nothing_was_sent()


def test_a_silent_file_is_refused_with_a_reason(int8_page, tmp_path):
    silent = tmp_path / "muted.wav"
    sf.write(silent, np.zeros(3 * 16_000, dtype=np.int16), 16_000)
    int8_page.page.evaluate("whisperLab.result = null; whisperLab.error = null")
    int8_page.page.set_input_files("#file", str(silent))
    int8_page.page.wait_for_function("() => whisperLab.error", timeout=60_000)
    assert int8_page.page.inner_text("#status").startswith("Not transcribed: the audio is silent")
