"""The audio that makes Whisper invent or repeat text, made reproducibly, and a loop detector.

The safeguards are tested and measured on these (tests/test_transcribe_*.py,
benchmarks/decoding_safeguards.py):

    white_noise            hiss: plain greedy decoding turns it into a made-up sentence
    hum_and_tones          mains hum with a few beeps: plain greedy writes "wheeeee" for it
    speech_then_noise      a sentence, then quiet noise: words appear in the noise
    repeated_word          "five" forty times: greedy decoding writes it far more often
    long_recording         over 5 minutes of real read speech with its reference text,
                           where a greedy loop can repeat a phrase and skip what follows

Noise is generated with a seeded numpy generator, the speech comes from the
pinned Debian packages of audio/speech_data.py: the same samples on every machine.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..audio.log_mel import SAMPLE_RATE


def _at_level(samples: np.ndarray, peak_dbfs: float) -> np.ndarray:
    return (samples * (10 ** (peak_dbfs / 20) / np.max(np.abs(samples)))).astype(np.float32)


def white_noise(seconds: float = 5.0, peak_dbfs: float = -10.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return _at_level(rng.standard_normal(int(seconds * SAMPLE_RATE)), peak_dbfs)


def hum_and_tones(seconds: float = 12.0, peak_dbfs: float = -6.0, seed: int = 0) -> np.ndarray:
    """50 Hz mains hum with its harmonics, and a few half-second beeps at random times and pitches."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    hum = sum(np.sin(2 * np.pi * 50 * k * t) / k for k in (1, 2, 3, 5))
    tones = np.zeros_like(t)
    for start in rng.uniform(0, seconds - 0.5, size=4):
        beep = (t >= start) & (t < start + 0.5)
        tones[beep] = np.sin(2 * np.pi * rng.uniform(400, 2000) * t[beep])
    return _at_level(hum + 2 * tones + 0.02 * rng.standard_normal(len(t)), peak_dbfs)


def speech_then_noise(speech: np.ndarray, noise_seconds: float = 10.0, noise_dbfs: float = -45.0,
                      seed: int = 0) -> np.ndarray:  # fmt: skip
    """The speech, then quiet hiss (a room with the microphone left open): nothing more was said."""
    return np.concatenate([speech, white_noise(noise_seconds, noise_dbfs, seed)]).astype(np.float32)


def repeated_word(times: int = 40, word: str = "5", max_seconds: float = 29.0) -> tuple[np.ndarray, int]:
    """One spoken word (an Asterisk digit, "five") said `times` times with 50 ms pauses, cut at
    `max_seconds`; returns (audio, how many times it is said in full). Repetitive speech is where
    greedy decoding loops: it keeps writing the word after the speech has stopped."""
    from ..audio import speech_data
    from ..audio.loading import load_audio

    sounds = speech_data.fetch_debian_package("asterisk-core-sounds-en-wav") / "usr/share/asterisk/sounds/en_US_f_Allison"
    spoken = load_audio(sounds / "digits" / f"{word}.wav")
    loud = np.nonzero(np.abs(spoken) > 0.02)[0]
    spoken = spoken[max(loud[0] - 400, 0) : loud[-1] + 400]  # the word without the file's silence
    one = np.concatenate([spoken, np.zeros(int(0.05 * SAMPLE_RATE), dtype=np.float32)])
    audio = np.tile(one, times)[: int(max_seconds * SAMPLE_RATE)]
    return audio, min(times, len(audio) // len(one))


def long_recording(target: Path, min_seconds: float = 330.0) -> tuple[str, float]:
    """Real read speech over `min_seconds`, written to `target`; returns (reference text, seconds).

    The JFK sample, the LibriVox sentences, the "cards" phrases, then Asterisk's
    telephone prompts of at least 4 words, in alphabetical order, until long enough:
    many voices, sentence lengths and pauses, as a lecture recording would have.
    """
    import soundfile as sf

    from ..audio import speech_data

    chosen = [speech_data.JFK, *speech_data.librivox_utterances(), *speech_data.cards_utterances()]
    seconds = sum(sf.info(str(u.path)).duration + 0.5 for u in chosen)
    prompts = sorted((u for u in speech_data.asterisk_utterances() if len(u.text.split()) >= 4), key=lambda u: u.id)
    for prompt in prompts:
        if seconds > min_seconds:
            break
        chosen.append(prompt)
        seconds += sf.info(str(prompt.path)).duration + 0.5
    reference = speech_data.write_concatenation(chosen, target)
    return reference, sf.info(str(target)).duration


def longest_repeat(text: str, max_words: int = 12) -> tuple[int, str]:
    """The most times any phrase (1 to `max_words` words) occurs back to back, and that phrase.

    "the cat sat the cat sat the cat sat" -> (3, "the cat sat"). A healthy transcript
    rarely goes above 2 (a stutter, "no, no"); a decoding loop goes to tens.
    """
    words = re.findall(r"[\w']+", text.lower())
    best = (1 if words else 0, words[0] if words else "")
    for size in range(1, max_words + 1):
        for start in range(len(words) - size):
            phrase = words[start : start + size]
            count, pos = 1, start + size
            while words[pos : pos + size] == phrase:
                count, pos = count + 1, pos + size
            if count > best[0]:
                best = (count, " ".join(phrase))
    return best
