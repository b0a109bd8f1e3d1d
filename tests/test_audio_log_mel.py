"""Our numpy log-mel must be what transformers' WhisperFeatureExtractor computes (the encoder was trained on it)."""

from __future__ import annotations

import numpy as np
from transformers import WhisperFeatureExtractor

from whisper_lab.audio.log_mel import N_FRAMES, log_mel_spectrogram, mel_filters


def test_mel_filters_match_transformers():
    assert np.abs(WhisperFeatureExtractor().mel_filters.T - mel_filters()).max() < 1e-7


def test_log_mel_of_real_speech_matches_transformers(jfk_audio):
    reference = WhisperFeatureExtractor()(jfk_audio, sampling_rate=16_000, return_tensors="np").input_features[0]
    ours = log_mel_spectrogram(jfk_audio)
    assert ours.shape == reference.shape == (80, N_FRAMES)
    assert np.abs(ours - reference).max() < 1e-4


def test_long_audio_keeps_every_frame(jfk_audio):
    long = np.concatenate([jfk_audio] * 4)  # 44 s
    reference = WhisperFeatureExtractor()(long, sampling_rate=16_000, return_tensors="np",
                                          truncation=False, padding="longest").input_features[0]  # fmt: skip
    ours = log_mel_spectrogram(long, pad_to=None)
    assert ours.shape == reference.shape == (80, 4400)
    assert np.abs(ours - reference).max() < 1e-4
