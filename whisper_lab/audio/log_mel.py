"""Whisper's input features in plain numpy: the 80 x 3000 log-mel spectrogram.

What the encoder sees is not the waveform but a picture of it:

1. pad (or cut) the audio to exactly 30 s = 480 000 samples;
2. short-time Fourier transform: 400-sample (25 ms) Hann windows every 160 samples
   (10 ms), giving 3000 frames of 201 frequency bins;
3. power spectrum -> 80 mel bands (triangular filters, spaced as human pitch
   perception is: dense at low frequencies, sparse at high ones);
4. log10, floor everything more than 80 dB below the loudest point, then scale
   to roughly [-1, 1].

transformers' WhisperFeatureExtractor does the same (the tests check we agree
with it), but importing it pulls in PyTorch; the ONNX path needs only numpy.
The next lab moves exactly these steps into the ONNX graph itself.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16_000
N_FFT = 400
HOP_LENGTH = 160
CHUNK_SECONDS = 30
N_SAMPLES = CHUNK_SECONDS * SAMPLE_RATE  # 480 000
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3000


def _hz_to_mel(hz):
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep, hz / f_sp)


def _mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


@lru_cache(maxsize=4)
def mel_filters(n_mels: int = 80) -> np.ndarray:
    """(n_mels, 201) triangular filters with Slaney area normalization, as librosa and Whisper use."""
    fft_freqs = np.linspace(0, SAMPLE_RATE / 2, 1 + N_FFT // 2)
    mel_points = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), n_mels + 2))
    lower, center, upper = mel_points[:-2, None], mel_points[1:-1, None], mel_points[2:, None]
    rising = (fft_freqs - lower) / (center - lower)
    falling = (upper - fft_freqs) / (upper - center)
    filters = np.maximum(0.0, np.minimum(rising, falling))
    filters *= (2.0 / (upper - lower))  # each filter has the same area
    return filters.astype(np.float32)


def pad_or_trim(audio: np.ndarray, length: int = N_SAMPLES) -> np.ndarray:
    if len(audio) >= length:
        return audio[:length]
    return np.pad(audio, (0, length - len(audio)))


def pad_frames(mel: np.ndarray, frames: int = N_FRAMES) -> np.ndarray:
    """Cut or zero-pad a log-mel along time to `frames` (OpenAI's `pad_or_trim` applied to the mel)."""
    if mel.shape[-1] >= frames:
        return mel[..., :frames]
    return np.pad(mel, [(0, 0)] * (mel.ndim - 1) + [(0, frames - mel.shape[-1])])


def _log10_mel(padded: np.ndarray, n_mels: int) -> np.ndarray:
    """log10 of the mel power of every 400-sample window, hop 160, of already-padded audio: (n_mels, frames)."""
    window = np.hanning(N_FFT + 1)[:-1]  # periodic Hann window
    n_frames = 1 + (len(padded) - N_FFT) // HOP_LENGTH
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH][:n_frames]
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2  # (frames, 201)
    mel = mel_filters(n_mels) @ power.T.astype(np.float32)
    return np.log10(np.maximum(mel, 1e-10))


def _scale(log_spec: np.ndarray, peak: float) -> np.ndarray:
    """Floor everything 80 dB below the loudest point, then scale to about [-1, 1] (in place)."""
    np.maximum(log_spec, peak - 8.0, out=log_spec)
    log_spec += 4.0
    log_spec /= 4.0
    return log_spec


def log_mel_spectrogram(audio: np.ndarray, n_mels: int = 80, pad_to: int | None = N_SAMPLES) -> np.ndarray:
    """16 kHz float32 audio -> (n_mels, frames) float32; 3000 frames for the default 30 s padding."""
    audio = np.asarray(audio, dtype=np.float32)
    if pad_to is not None:
        audio = pad_or_trim(audio, pad_to)
    padded = np.pad(audio, N_FFT // 2, mode="reflect")  # centre each window on its frame
    log_spec = _log10_mel(padded, n_mels)[:, :-1]  # drop the last frame, as Whisper does
    return _scale(log_spec.astype(np.float32), float(log_spec.max()))


BLOCK_FRAMES = 6000  # 60 s of frames per block: its spectrum (6000 x 201 float64) is 10 MB


def _reflected(audio: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Samples [start, stop) of `audio` + N_FFT zeros, reflect-padded by N_FFT // 2 at both ends
    (what log_mel_spectrogram pads), without making that padded copy of the whole recording."""
    length = len(audio) + N_FFT
    if N_FFT // 2 <= start and stop - N_FFT // 2 <= len(audio):
        return audio[start - N_FFT // 2 : stop - N_FFT // 2]  # inside the audio: a view
    k = np.arange(start, stop) - N_FFT // 2
    k = np.where(k < 0, -k, k)
    k = np.where(k >= length, 2 * (length - 1) - k, k)
    inside = k < len(audio)
    return np.where(inside, audio[np.where(inside, k, 0)], np.float32(0)) if len(audio) else np.zeros(stop - start, np.float32)


def content_log_mel(audio: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """The log-mel frames of just the audio, len(audio) // 160 of them, each as OpenAI's `transcribe()`
    computes it: as if silence followed the end (it appends 30 s of zeros; the last frame's window
    reaches only N_FFT samples past the end, so that many zeros give the same numbers, faster).

    Computed a minute at a time, with one loudness scale for the whole recording (the 80 dB
    floor under its loudest frame), so memory is the result (half the audio's size) and one
    block's spectrum, however long the recording: the numbers of computing it all at once (to
    the last bit of float32, which the matrix product may round differently by block).
    """
    audio = np.asarray(audio, dtype=np.float32)
    kept = len(audio) // HOP_LENGTH
    total = (len(audio) + N_FFT) // HOP_LENGTH  # frames of audio + N_FFT zeros, last one dropped
    result = np.empty((n_mels, kept), dtype=np.float32)
    peak = -np.inf
    for first in range(0, total, BLOCK_FRAMES):
        last = min(first + BLOCK_FRAMES, total)
        block = _log10_mel(_reflected(audio, first * HOP_LENGTH, (last - 1) * HOP_LENGTH + N_FFT), n_mels)
        peak = max(peak, float(block.max()))
        if first < kept:
            result[:, first : min(last, kept)] = block[:, : min(last, kept) - first]
    return _scale(result, peak)


class ContentLogMel:
    """`content_log_mel(audio)` of a whole recording, computed only for the frames asked for.

    The loudness scale (the 80 dB floor under the loudest frame of the whole file) comes
    from one pass over the recording first, which keeps nothing but that number; each
    window's frames are then computed when the decoder reaches them. So a recording of
    any length costs one window's spectrum beyond the audio itself, not half its size
    again for the whole log-mel (115 MB an hour). Slicing `[:, a:b]` gives an array.
    """

    def __init__(self, audio: np.ndarray, n_mels: int = 80):
        self.audio = np.asarray(audio, dtype=np.float32)
        self.n_mels = n_mels
        self.shape = (n_mels, len(self.audio) // HOP_LENGTH)
        total = (len(self.audio) + N_FFT) // HOP_LENGTH
        self.peak = -np.inf
        for first in range(0, total, BLOCK_FRAMES):
            self.peak = max(self.peak, float(self._log10(first, min(first + BLOCK_FRAMES, total)).max()))

    def _log10(self, first: int, last: int) -> np.ndarray:
        return _log10_mel(_reflected(self.audio, first * HOP_LENGTH, (last - 1) * HOP_LENGTH + N_FFT), self.n_mels)

    def __getitem__(self, key) -> np.ndarray:
        rows, columns = key
        if rows != slice(None) or not isinstance(columns, slice) or columns.step not in (None, 1):
            raise IndexError("ContentLogMel takes [:, first:last] only")
        first, last, _ = columns.indices(self.shape[1])
        if last <= first:
            return np.zeros((self.n_mels, 0), dtype=np.float32)
        return _scale(self._log10(first, last).astype(np.float32), self.peak)


def encoder_input(clip: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """Exactly what the ONNX encoder is fed for a clip of up to 30 s: (n_mels, 3000) float32.

    The log-mel of just the audio, zero-padded *in log-mel space* to 3000 frames,
    as OpenAI's `transcribe()` does (`pad_or_trim` on the mel). Hugging Face's
    feature extractor instead pads the *audio* with silence to 30 s, so the frames
    after the speech hold the log-mel of silence (the floor, about -0.5) rather
    than 0. The ONNX path uses this function; measured with plain greedy decoding
    (benchmarks/decoding_safeguards.py short --utterances all, and frontend):
    on the large test set (2,766 words) silence makes fewer errors (fp32 WER
    0.039 against 0.043 with zeros), but on hum it lowers P(no speech) from
    0.72-0.85 to 0.57-0.76 (fp32), close to the no-speech rule's 0.6; tried
    with silence, the int8 files wrote "I'm sorry, I'm sorry." for one hum clip
    past every safeguard. With zeros every such window is skipped.
    """
    return pad_frames(content_log_mel(clip[:N_SAMPLES], n_mels))
