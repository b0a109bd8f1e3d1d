"""Whisper's safeguards around the one file (step 9), rule by rule: the graph's inputs and outputs
they read, and the Python host loop (end2end/host.py) on real generated audio and real speech.

The same rules in the page (web/host.js) are tested in test_end2end_browser.py; the long recording
(seeking, the previous-text prompt) in test_transcribe_long.py.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import words_besides_beeps
from end2end_files import built_end2end

from whisper_lab.audio.loading import load_audio
from whisper_lab.audio.speech_data import JFK, librivox_utterances
from whisper_lab.compare.wer import word_count, word_error_rate
from whisper_lab.end2end.session import EndToEnd
from whisper_lab.transcribe import trial_audio
from whisper_lab.transcribe.safeguards import compression_ratio


@pytest.fixture(scope="module")
def models(exported_run, tmp_path_factory):
    folder, _ = exported_run
    built = built_end2end(folder, tmp_path_factory.getbasetemp())
    return {p: EndToEnd(built.file(p)) for p in ("fp32", "int8")}


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_noise_and_hum_give_no_words(models, precision):
    model = models[precision]
    noise = trial_audio.white_noise(5.0)
    greedy, after = model.window(noise), model.transcribe(noise)
    print(f"{precision} noise: one greedy window {greedy.text[:60]!r} (P(no speech) {greedy.no_speech_prob:.2f}), "
          f"the host loop {after.text!r}")  # fmt: skip
    assert word_count(greedy.text) > 0  # one plain window invents text: the audio is a real test
    assert after.text == "" and after.segments == [] and "no speech" in after.note
    assert after.skipped == after.windows == 1
    for seed in range(3):  # hum with beeps at other times and pitches
        hum = trial_audio.hum_and_tones(12.0, seed=seed)
        after = model.transcribe(hum)
        print(f"{precision} hum {seed}: {model.window(hum).text[:60]!r} -> {after.text!r}")
        assert not words_besides_beeps(after.text) and word_count(after.text) <= 8


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_quiet_noise_after_speech_adds_no_words(models, precision):
    sentence = librivox_utterances()[0]
    audio = trial_audio.speech_then_noise(load_audio(sentence.path))
    text = models[precision].transcribe(audio).text
    print(f"{precision}: {text!r}")
    assert word_count(text) <= word_count(sentence.text) + 1
    assert word_error_rate(sentence.text, text) <= 0.15


def fives(text: str) -> int:
    return len(re.findall(r"\b(?:5|five)\b", text.lower()))


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_a_loop_is_caught_and_the_spoken_words_kept(models, precision):
    """"Five" said 40 times: one greedy window keeps writing fives after the speech stopped; the host
    loop sees the text compress far too well, samples again (the graph's temperature input) and keeps
    an attempt that still holds (nearly) every spoken five."""
    model = models[precision]
    audio, said = trial_audio.repeated_word()
    greedy = model.window(audio)
    transcript = model.transcribe(audio)
    print(f"{precision}: said {said} times; one greedy window wrote {fives(greedy.text)}, the host loop "
          f"{fives(transcript.text)} after {transcript.fallbacks} fallback(s): {transcript.text[:80]!r}")  # fmt: skip
    if compression_ratio(greedy.text) > 2.4:  # the loop (int8 on every CPU measured; fp32 may not loop)
        assert transcript.fallbacks == 1
    assert transcript.windows == 1
    assert fives(transcript.text) >= 0.9 * said  # as 03's rule: the loop is caught and the words are kept
    # (the attempt kept may still hold more fives than were said, 66-78 of 40 measured: sampled at 0.2 it
    # repeats less than greedy, enough to pass the compression check, as 03's kept attempts do)


def test_sampling_is_seeded_inside_the_file(models, jfk_audio):
    """Above temperature 0 the graph samples with its own counter-based noise: the same seed, the
    same tokens (so the page and Python agree), another seed, another draw."""
    model = models["int8"]
    hot = [model.window(jfk_audio, temperature=1.0, seed=s).tokens for s in (0, 0, 1, 2)]
    assert hot[0] == hot[1]
    assert len({tuple(t) for t in hot[1:]}) > 1  # it does sample
    assert model.window(jfk_audio, temperature=0.0, seed=7).tokens == model.window(jfk_audio).tokens  # greedy ignores it


def test_the_prompt_is_filtered_as_whisper_does(models, jfk_audio):
    """The graph keeps a prompt's text and timestamp tokens (as OpenAI's transcribe() passes them)
    but no special token, and only the last 223: a host may pass `tokens` as they came."""
    model = models["int8"]
    first = model.window(jfk_audio[: 16_000 * 5], timestamps=True)
    assert any(t >= model.timestamp_begin for t in first.tokens)  # timestamps, which the prompt keeps
    eot, sot = int(model.metadata["eot"]), int(model.metadata["sot"])
    prompted = model.window(jfk_audio, prompt=first.tokens)
    with_specials = model.window(jfk_audio, prompt=[sot, *first.tokens[:3], eot, *first.tokens[3:], eot])
    assert with_specials.tokens == prompted.tokens
    long = first.tokens * 40
    assert len(long) > 223
    assert model.window(jfk_audio, prompt=long).tokens == model.window(jfk_audio, prompt=long[-223:]).tokens
    assert word_error_rate(JFK.text, prompted.text) <= 0.1  # a prompt of what was said keeps the text right
    assert np.isfinite(prompted.avg_logprob)
