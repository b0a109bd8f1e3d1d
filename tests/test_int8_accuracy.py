"""int8 against fp32 on real speech: the large test set, the sensitivity measure, and the interval behind a WER difference."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
from conftest import assert_one_line_error, run_script

from whisper_lab.onnx_files import onnx_pair


@pytest.fixture(scope="module")
def exported(exported_run):
    return exported_run[0]


def pair(out, precision):
    return onnx_pair(out, "whisper-base", precision)


def test_large_set_has_the_words_to_see_half_a_point():
    import soundfile as sf

    from whisper_lab.audio.speech_data import english_test_set, full_test_set
    from whisper_lab.compare.wer import word_count

    large = english_test_set("all")
    assert large == full_test_set() and len({u.id for u in large}) == len(large)
    words = sum(word_count(u.text) for u in large)
    assert words >= 2000  # one word is then at most 0.05 points
    sources = {u.source.split()[0] for u in large}
    assert sources == {"JFK", "pocketsphinx-testdata", "asterisk-core-sounds-en"}
    assert sum(u.source.startswith("pocketsphinx") for u in large) == 10  # every transcribed Sphinx recording
    assert all(sf.info(str(u.path)).duration <= 30 for u in large)
    assert not any("..." in u.text or "*" in u.text or "#" in u.text for u in large)
    # the quick default is a subset, drawn as before
    assert {u.id for u in english_test_set(30)} <= {u.id for u in large}


def test_paired_interval_on_real_transcripts():
    from whisper_lab.audio.speech_data import english_test_set
    from whisper_lab.compare.wer import paired_difference, utterance_errors, word_count

    chosen = english_test_set(12)
    refs = [u.text for u in chosen]
    words = [word_count(r) for r in refs]
    exact = [utterance_errors(r, r) for r in refs]
    assert exact == [0] * 12 and paired_difference(exact, exact, words) == (0.0, 0.0, 0.0)
    dropped = [utterance_errors(r, " ".join(r.split()[1:])) for r in refs]  # first word missing everywhere
    assert dropped == [1] * 12
    difference, low, high = paired_difference(exact, dropped, words)
    assert difference == pytest.approx(12 / sum(words)) and low < difference < high


def test_teacher_forcing_sees_int8_and_not_fp32(exported):
    from whisper_lab.audio.speech_data import english_test_set
    from whisper_lab.export.sensitivity import TeacherForcing
    from whisper_lab.transcribe.onnx_whisper import OnnxWhisper

    forcing = TeacherForcing(pair(exported, "fp32"), english_test_set(3), threads=2, log=lambda _: None)
    assert forcing.positions > 40
    kl_fp32, flips_fp32 = forcing.compare(OnnxWhisper(*pair(exported, "fp32"), threads=2))
    kl_int8, _ = forcing.compare(OnnxWhisper(*pair(exported, "int8"), threads=2))
    assert abs(kl_fp32) < 1e-3 and flips_fp32 == 0
    assert kl_int8 > 100 * max(abs(kl_fp32), 1e-6)


def test_sweep_covers_every_group(exported):
    from whisper_lab.export.sensitivity import sweep_variants

    variants = sweep_variants(pair(exported, "fp32"))
    names = [v.name for v in variants]
    assert names[0] == "all int8 (as shipped)" and len(names) == len(set(names))
    assert sum(n.startswith("encoder ") and n.endswith(" in float") for n in names) == 12
    assert sum(n.startswith("decoder ") and n.endswith(" in float") for n in names) == 18
    assert {"cross-attention K/V in float", "token table in float", "attention products in int8 too"} <= set(names)
    table = next(v for v in variants if v.name == "token table in float")
    assert table.float_mb == pytest.approx(3 * 512 * 51865 / 1e6, rel=0.01)


def test_sensitivity_without_models(tmp_path):
    assert_one_line_error(run_script("04-compare-models.py", "--sensitivity", "--model-dir", tmp_path / "none"),
                          "no such folder")  # fmt: skip


def test_bad_utterance_count():
    result = run_script("04-compare-models.py", "--utterances", "most")
    assert result.returncode == 2 and "expected a number or 'all'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_int8_within_half_a_point_of_fp32_on_the_large_set(exported):
    """Plain greedy decoding of all 362 utterances by both precisions: the paired WER difference."""
    from whisper_lab.audio.loading import load_audio
    from whisper_lab.audio.speech_data import english_test_set
    from whisper_lab.compare.wer import paired_difference, utterance_errors, word_count
    from whisper_lab.transcribe.onnx_whisper import OnnxWhisper

    large = english_test_set("all")
    models = {p: OnnxWhisper(*pair(exported, p), threads=2) for p in ("fp32", "int8")}
    errors = {p: [] for p in models}
    for utterance in large:
        audio = load_audio(utterance.path)
        for precision, whisper in models.items():
            errors[precision].append(utterance_errors(utterance.text, whisper.transcribe(audio)))
    words = [word_count(u.text) for u in large]
    difference, low, high = paired_difference(errors["fp32"], errors["int8"], words)
    print(f"large set: fp32 {sum(errors['fp32'])}, int8 {sum(errors['int8'])} errors in {sum(words)} words; "
          f"int8 - fp32 = {difference * 100:+.2f} points (95% interval {low * 100:+.2f} to {high * 100:+.2f})")
    assert sum(errors["fp32"]) / sum(words) < 0.2  # a working transcriber on this speech
    assert difference <= 0.005


@pytest.mark.slow
def test_sweep_variant_is_the_graph_quantize_int8_writes(exported, tmp_path, jfk_audio):
    """The sweep puts a group back in float by editing the shipped graph; quantize_int8 must agree."""
    import onnxruntime as ort

    from whisper_lab.audio.log_mel import log_mel_spectrogram
    from whisper_lab.export.precision import quantize_int8
    from whisper_lab.export.sensitivity import Variant, _make_variant

    fp32, shipped = pair(exported, "fp32").encoder, pair(exported, "int8").encoder
    variant = Variant("encoder 3 MLP in float", "encoder", {"float_groups": ("encoder 3 MLP",)})
    _make_variant(variant, fp32, shipped, tmp_path / "edited.onnx")
    quantize_int8(fp32, tmp_path / "quantized.onnx", float_groups=["encoder 3 MLP"])
    graphs = [onnx.load(str(tmp_path / name)) for name in ("edited.onnx", "quantized.onnx")]
    assert Counter(n.op_type for n in graphs[0].graph.node) == Counter(n.op_type for n in graphs[1].graph.node)
    assert {i.name for i in graphs[0].graph.initializer} == {i.name for i in graphs[1].graph.initializer}
    mel = log_mel_spectrogram(jfk_audio, 80)[None]
    outputs = [ort.InferenceSession(str(tmp_path / name), providers=["CPUExecutionProvider"]).run(None, {"mel": mel})[0]
               for name in ("edited.onnx", "quantized.onnx")]  # fmt: skip
    assert np.array_equal(outputs[0], outputs[1])
