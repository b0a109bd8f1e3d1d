"""Sound in, features out: what every part of the lab reads before Whisper sees anything.

    loading      any audio file -> 16 kHz mono float32; empty, silent or broken files refused
    log_mel      Whisper's 80 x 3000 log-mel spectrogram in plain numpy (the encoder's input)
    speech_data  real English speech with reference transcripts: the shipped sample, pinned Debian packages
"""
