"""The recorder page (script 01): record or upload speech, save it as speech.wav, see Whisper's input.

Built with Gradio: the page is declared in Python (components and the events
that connect them) and Gradio serves it, with the browser side written for us.
Five things here are not Gradio's defaults, each for a reason:

* "Save Recording" starts disabled and is enabled only when the recording has
  reached the server. After Stop, the player shows up at once, but the audio is
  still being encoded and uploaded; a click in that moment would save nothing.
  The Audio component's `change` event fires once the upload is done.
* A check in the page for `window.isSecureContext`: on plain http at a
  non-localhost address the browser hides the microphone, and the Record button
  does nothing at all. We show what to do instead.
* The figure: after saving, the log-mel spectrogram of the saved file, exactly
  as Whisper's encoder will receive it (see mel_figure.py).
* A login form when other machines can reach the page (web_access.py), and
  Gradio's files kept in the recorder's private folder (private_temp.py).
* One save at a time: saving holds up to SAVE_MEMORY_MB, so however many
  browsers press Save at once, the server's memory grows by that much at most.
  The others wait in Gradio's queue, a second or so each. And that memory is
  given back when a save ends (`return_freed_memory`).
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from ..errors import LabError
from .recording import MAX_SECONDS, save_recording
from .web_access import (
    PASSWORD_USER,
    Serving,
    ShareUnavailable,
    fallback_advice,
    open_share_link,
    port_taken_message,
)

# Big enough for the longest recording we accept as an uncompressed upload
# (5 min of 48 kHz stereo float WAV is 115 MB), small enough to stop a wrong file early.
# Gradio counts the bytes as they stream in and refuses (HTTP 413) the moment an upload
# passes this, before anything is decoded; the partial file is deleted.
MAX_UPLOAD = "200mb"

INTRO = f"""\
## Step 2: record speech for Whisper
Click **Record**, say a sentence or two, click **Stop**, then **Save Recording**.
You can also upload a file (wav, flac, ogg or mp3). The recording is saved as
16 kHz mono 16-bit WAV, the format Whisper was trained on, for script 02.
Recordings longer than {MAX_SECONDS // 60} minutes are refused.
"""

SECURE_CONTEXT_HTML = """\
<div id="insecure-context" role="alert" style="display:none; border:2px solid #d33; border-radius:8px;
     padding:0.8em 1em; background:#fff1f0; color:#600;">
<strong>The microphone is blocked on this page.</strong>
It was opened as <code class="page-origin">http://...</code>: plain http at an address that is not
<code>localhost</code>. Browsers only give the microphone to https pages or to localhost, so the Record
button would do nothing here. Instead:
<ol>
<li><strong>Forward port {port} over SSH</strong> and open <a href="http://localhost:{port}">http://localhost:{port}</a>.
  VS Code (Remote-SSH) does this for you: look in its <em>PORTS</em> tab, or "Forward a Port" &rarr; {port}.
  From a terminal on your laptop: <code>ssh -L {port}:localhost:{port} &lt;user&gt;@&lt;vm-address&gt;</code></li>
<li>Or restart the recorder with <code>--https</code> and open <code>https://&lt;vm-address&gt;:{port}</code>
  (accept the browser's warning about the self-signed certificate).</li>
<li>Or record on your laptop and upload the file here.</li>
</ol>
</div>
"""

# Runs in the browser once the page has loaded. `isSecureContext` is the
# browser's own verdict; guessing from the address ourselves would get
# 127.0.0.1, [::1] and proxies wrong.
SECURE_CONTEXT_JS = """\
() => {
  if (window.isSecureContext !== false) return;
  const box = document.getElementById("insecure-context");
  if (!box) return;
  box.querySelector(".page-origin").textContent = window.location.origin;
  box.style.display = "block";
}
"""

SAVE_HINT = "*Save Recording turns on once the recording has reached the server, a moment after Stop.*"


def plain(text: str) -> str:
    """Escape Markdown, so a path like /tmp/*take*/speech.wav shows as typed."""
    return re.sub(r"([\\`*_{}\[\]<>#|])", r"\\\1", text)


def build_app(output: Path, port: int, private_dir: Path):
    """Declare the page. Nothing is served until `launch`.

    Each save keeps its own copy under `private_dir`; the page's download and figure use it.
    """
    # No usage statistics from students' VMs, and no calls out of an offline one.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    from ..audio.loading import SAMPLE_RATE, load_audio
    from .mel_figure import encoder_input, plot_encoder_input

    def ready_to_save(recording):
        # Called when the audio value changes: it is set once the upload has finished,
        # and None when the student clears the recording.
        return gr.Button(interactive=recording is not None)

    copies = private_dir / "saved"
    copies.mkdir(exist_ok=True)

    def save(recording):
        try:
            saved = save_recording(recording, output, copy_folder=copies)
        except LabError as exc:
            # Shown on the page; nothing is written and an older speech.wav stays as it was.
            return f"**Not saved:** {plain(str(exc))}", gr.File(value=None, visible=False), None
        # This save's own copy: if another browser saves next, this page still offers its own recording.
        return plain(saved.status()), gr.File(value=str(saved.copy), visible=True), str(saved.copy)

    def spectrogram(saved_path):
        if saved_path is None:
            return None
        audio = load_audio(saved_path)  # read back what 02 will read, not what we meant to write
        return plot_encoder_input(encoder_input(audio), speech_seconds=len(audio) / SAMPLE_RATE)

    # Gradio keeps each upload in its cache (our private folder); every 10 minutes it drops
    # the ones older than an hour, so a class's uploads do not pile up until the server stops.
    with gr.Blocks(title="Whisper lab: record speech", delete_cache=(600, 3600)) as app:
        gr.Markdown(INTRO)
        gr.HTML(SECURE_CONTEXT_HTML.format(port=port))
        # type="filepath": we read the upload ourselves with soundfile. Gradio's "numpy" type
        # decodes through pydub, which needs ffmpeg, and that is not on every VM.
        # Only the download button: "share" posts to Hugging Face, which the lab does not need.
        recording = gr.Audio(sources=["microphone", "upload"], type="filepath", label="Your recording",
                             buttons=["download"], elem_id="recording")
        save_button = gr.Button("Save Recording", variant="primary", interactive=False, elem_id="save")
        gr.Markdown(SAVE_HINT)
        status = gr.Markdown("Nothing saved yet.", elem_id="status")
        # Shown once there is something to download.
        download = gr.File(label=f"Download {output.name}", interactive=False, visible=False, elem_id="download")
        gr.Markdown("#### The log-mel spectrogram of the saved file: what Whisper's encoder sees")
        figure = gr.Image(show_label=False, type="numpy", interactive=False,
                          buttons=["download", "fullscreen"], elem_id="log-mel")
        saved_path = gr.State(None)

        recording.start_recording(lambda: gr.Button(interactive=False), outputs=save_button)
        recording.change(ready_to_save, inputs=recording, outputs=save_button)
        # Two steps: the status line comes back at once, the figure follows.
        save_button.click(save, inputs=recording, outputs=[status, download, saved_path],
                          concurrency_limit=1).then(spectrogram, inputs=saved_path, outputs=figure,
                                                    concurrency_limit=1)
        app.load(None, js=SECURE_CONTEXT_JS)
    return app


def return_freed_memory() -> None:
    """Make large freed buffers go back to the system at once, whichever thread freed them.

    glibc's malloc gives a block over its "mmap threshold" a mapping of its own and
    unmaps it on free. But after each such free it raises the threshold to that
    block's size (up to 32 MB), so the next decoded recording comes from a heap
    that keeps the memory, and Gradio runs events in up to 40 worker threads, each
    with a heap of its own. Under 20 clients saving for a minute the server's peak
    was 565 MB that way; a threshold set once (1 MB) stays fixed: 287 MB.
    """
    import ctypes
    import ctypes.util

    M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 20)
    except (OSError, AttributeError):
        pass  # not glibc: its malloc has its own rules, nothing to set


def launch(app, serving: Serving, private_dir: Path, certfile: Path | None, keyfile: Path | None,
           password: str | None) -> None:
    """Start serving in a background thread; returns once the page answers."""
    try:
        app.launch(
            # None: no login form (the page is reachable from this machine only, or --no-password).
            auth=[(PASSWORD_USER, password)] if password else None,
            auth_message=(f"Log in as <b>{PASSWORD_USER}</b> with the password printed in the terminal "
                          "where the recorder runs."),
            server_name=serving.host, server_port=serving.port,
            share=False,  # we ask for the share link ourselves (web_access.open_share_link)
            prevent_thread_lock=True, quiet=True,  # we print our own URLs and advice
            ssl_certfile=str(certfile) if certfile else None,
            ssl_keyfile=str(keyfile) if keyfile else None,
            # Gradio checks its own page after starting; a self-signed certificate
            # (or one issued for the VM's name, not "localhost") would fail that check.
            ssl_verify=False if certfile else True,
            allowed_paths=[str(private_dir)],  # the download link serves a save's private copy
            max_file_size=MAX_UPLOAD,
            run_history=False,  # a page of past button clicks: noise in this lab
        )
    except OSError as exc:  # another program took the port since we checked
        raise LabError(port_taken_message(serving.port)) from exc


def print_addresses(serving: Serving) -> None:
    print(f"Recorder page: {serving.local_url}   (on this machine, or through a forwarded port)", flush=True)
    network_url = serving.network_url()
    if network_url:
        note = "" if serving.https else "  (plain http: browsers block the microphone there)"
        print(f"On the network: {network_url}{note}", flush=True)


def offer_share_link(app, serving: Serving, wanted: bool, script: str) -> None:
    """Print the public share link if it can be had; otherwise why not, and what to do instead."""
    if serving.https:
        if wanted:
            print("No public share link asked for: the page is served over https already.", flush=True)
        return
    if not wanted:
        reason = "not asked for (--no-share)"
    else:
        try:
            url = open_share_link(app.share_token, serving)
            print(f"Public share link: {url}   (https, works from any browser while this runs)", flush=True)
            return
        except ShareUnavailable as exc:
            reason = str(exc)
    print(f"No public share link: {reason}.", flush=True)
    print(f"The page is still served at {serving.local_url}.", flush=True)
    print(fallback_advice(serving, script), flush=True)


def keep_serving(app) -> None:
    print("Press Ctrl+C to stop.", flush=True)
    try:
        threading.Event().wait()  # the server runs in its own thread; sleep until Ctrl+C (or SIGTERM, SIGHUP)
    except KeyboardInterrupt:
        print("\nStopping the recorder.", flush=True)
        app.close()
