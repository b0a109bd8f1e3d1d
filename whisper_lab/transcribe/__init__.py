"""Audio to text: the decoding loops of scripts 02 and 03 --transcribe.

    languages     language codes and names -> Whisper's language prompt token
    hf_whisper    the reference: transformers' WhisperForConditionalGeneration.generate() on PyTorch (02)
    onnx_whisper  the same loop in numpy over the exported ONNX pair, no PyTorch (03 --transcribe)
"""
