"""Step 2 of the lab: record your voice in the browser and save it as speech.wav for Whisper.

    python 01-record-audio-app.py                 # then open the printed address
    python 01-record-audio-app.py --no-share      # don't ask for a public link
    python 01-record-audio-app.py --https         # https on the VM's address, with a password
    python 01-record-audio-app.py --output take2.wav --port 7861

The page records from the microphone (or takes an uploaded file), and "Save
Recording" writes 16 kHz mono 16-bit WAV, the format Whisper was trained on,
where 02-whisper-huggingface.py looks for it. It also shows the log-mel
spectrogram of the saved clip: the 80 x 3000 picture Whisper's encoder reads.

Browsers only give the microphone to https pages or to http://localhost; the
script prints how to get there from your laptop (see whisper_lab/recorder/web_access.py).
By default it listens on this machine only (127.0.0.1), which port forwarding
reaches; listening on the network needs a password, printed at start.
Recordings are kept in --output and in a private temporary folder that is
removed when the recorder stops.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from whisper_lab.errors import run_cli
from whisper_lab.recorder.private_temp import make_private_temp, stop_on_signals
from whisper_lab.recorder.recording import check_output_path
from whisper_lab.recorder.web_access import (
    Serving,
    check_port_free,
    default_host,
    page_password,
    print_password,
    tls_files,
)

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "speech.wav"  # where 02-whisper-huggingface.py looks by default
SCRIPT = Path(__file__).name


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Record speech in the browser and save it as a 16 kHz WAV for Whisper.")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="where Save Recording writes the WAV file (default: speech.wav next to this script)")
    parser.add_argument("--host",
                        help="address to listen on (default: 127.0.0.1, this machine only, which is enough for a "
                             "forwarded port and the share link; with --https or --ssl-certfile: 0.0.0.0, every "
                             "interface). Any address other machines can reach needs a password")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default: 7860)")
    parser.add_argument("--password",
                        help="the page's password when other machines can reach it (default: a new one, printed "
                             "at start; the user name is 'lab')")
    parser.add_argument("--no-password", action="store_true",
                        help="no password even on the network: anyone who can reach the port can use the page "
                             "(only on a network you trust)")
    parser.add_argument("--share", action=argparse.BooleanOptionalAction, default=True,
                        help="also ask Gradio for a public https link (default: on; needs internet access; "
                             "anyone who is given the link can use the page)")
    parser.add_argument("--ssl-certfile", type=Path, help="serve https with this PEM certificate")
    parser.add_argument("--ssl-keyfile", type=Path, help="the certificate's private key (PEM)")
    parser.add_argument("--https", action="store_true",
                        help="serve https with a self-signed certificate made on the fly, on every interface "
                             "(the browser warns once; accept it to reach the page, then log in)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()

    # 1. Check what the student typed before the slow part (importing Gradio): one-line errors.
    output = check_output_path(args.output)
    host = args.host or default_host(https=args.https or args.ssl_certfile is not None)
    check_port_free(host, args.port)
    access = page_password(host, args.password, args.no_password)
    certfile, keyfile = tls_files(args.https, args.ssl_certfile, args.ssl_keyfile, host)
    if args.https:
        print(f"Self-signed certificate: {certfile}", flush=True)
    serving = Serving(host=host, port=args.port, https=certfile is not None)

    # 2. A private folder for Gradio's copies of the recordings, made before Gradio is imported;
    #    removed at exit, also after SIGTERM or SIGHUP (see private_temp.py).
    private_dir = make_private_temp()
    stop_on_signals()

    # 3. Declare the page and serve it (in a background thread).
    from whisper_lab.recorder import app as recorder_app
    from whisper_lab.recorder.mel_figure import warm_up

    app = recorder_app.build_app(output, port=args.port, private_dir=private_dir)
    warm_up()  # before serving, not beside it (see mel_figure.warm_up)
    recorder_app.return_freed_memory()
    recorder_app.launch(app, serving, private_dir, certfile, keyfile, access.password)
    print(f"Saving recordings to {output}", flush=True)
    recorder_app.print_addresses(serving)
    print_password(access, host, args.port, output.name)

    # 4. A public share link if this VM can get one; if not, what to do instead.
    recorder_app.offer_share_link(app, serving, wanted=args.share, script=SCRIPT)

    recorder_app.keep_serving(app)


if __name__ == "__main__":
    run_cli(main)
