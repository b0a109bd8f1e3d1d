"""Damaged files and files of another model: repaired, or one line naming the file and the way to repair it.

The damage is what an interrupted copy, download or older export leaves: a file
cut short. Copies are made with hard links, and a file is damaged by writing a
new, shorter file under its name, so the originals are never touched.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_script
from test_export_faults import EXPECTED, NAME, link_copy

from whisper_lab.audio.speech_data import JFK
from whisper_lab.compare.wer import word_error_rate
from whisper_lab.errors import LabError
from whisper_lab.export.pipeline import files_ready
from whisper_lab.onnx_files import onnx_pair, read_metadata, tokenizer_file, tokenizer_problem
from whisper_lab.transcribe.onnx_whisper import OnnxWhisper
from whisper_lab.weights.model_source import resolve_model

SCRIPT = "03-export-encoder-decoder.py"


def cut_short(path: Path, keep: float = 0.4) -> None:
    """Replace `path` by its first `keep` part (a new file: a hard-linked original stays whole)."""
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data[: int(len(data) * keep)])


def transcript(result) -> str:
    lines = result.stdout.splitlines()
    assert lines[:2] == ["Transcription:", ""], result.stdout + result.stderr
    return lines[2]


# --- next to the ONNX files ---------------------------------------------------------------------


def test_cut_tokenizer_and_old_leftovers_are_repaired_by_transcribe(exported_run, tmp_path):
    """What an interrupted run of the previous exporter could leave; `03 --transcribe` repairs it and goes on."""
    out, _ = exported_run
    folder = link_copy(out, tmp_path / "models")
    cut_short(tokenizer_file(folder, NAME))  # it used to be written straight to its real name
    (folder / "tmpab12cd34.onnx").write_bytes(b"")  # the int8 step's scratch file, after SIGTERM
    os.link(folder / "whisper-base_decoder.onnx", folder / "whisper-base_decoder-inferred.onnx")  # after Ctrl-C
    (folder / ".whisper-base_encoder_int8.onnx.k3j4h5g6.tmp").write_bytes(b"\x08\x07")  # after SIGKILL
    before = {p.name: p.stat().st_ino for p in folder.glob("*.onnx") if p.name in EXPECTED}

    result = run_script(SCRIPT, "--precision", "int8", "--output-dir", folder, "--transcribe", JFK.path)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert word_error_rate(JFK.text, transcript(result)) <= 0.10
    assert "whisper-base_tokenizer.json is damaged" in result.stderr
    assert "removed what an interrupted export left" in result.stderr
    assert "exporting" not in result.stderr and "converting" not in result.stderr  # the ONNX files were fine
    assert {p.name: p.stat().st_ino for p in folder.glob("*.onnx")} == before
    assert sorted(p.name for p in folder.iterdir()) == EXPECTED
    assert tokenizer_problem(tokenizer_file(folder, NAME)) is None


def test_cut_tokenizer_is_named_when_loading(exported_run, tmp_path):
    out, _ = exported_run
    folder = link_copy(out, tmp_path / "models")
    cut_short(tokenizer_file(folder, NAME))
    with pytest.raises(LabError, match=r"whisper-base_tokenizer.json is damaged \(.*\); run 03-export-encoder-decoder.py"):
        OnnxWhisper(*onnx_pair(folder, NAME, "int8"))


# --- the PyTorch checkpoint ---------------------------------------------------------------------


def linked_checkpoint(whisper_base, folder: Path) -> Path:
    """The real whisper-base checkpoint in another folder (hard links)."""
    folder.mkdir(parents=True)
    for path in whisper_base.path.iterdir():
        os.link(path, folder / path.name)
    return folder


def checkpoint_with_cut_weights(whisper_base, folder: Path) -> Path:
    linked_checkpoint(whisper_base, folder)
    cut_short(folder / "model.safetensors", keep=0.3)
    return folder


def test_cut_weights_in_a_model_folder(whisper_base, tmp_path):
    folder = checkpoint_with_cut_weights(whisper_base, tmp_path / "my-whisper")
    for script, args in (("02-whisper-huggingface.py", ["--audio", JFK.path]),
                         ("03-export-encoder-decoder.py", ["--output-dir", tmp_path / "models"])):  # fmt: skip
        result = run_script(script, "--model", folder, *args)
        assert_one_line_error(result, f"{folder / 'model.safetensors'} is damaged", "replace the folder with a complete copy")


def test_cut_weights_in_the_converted_cache_are_converted_again(whisper_base, tmp_path):
    """The packaged weights are still there: a damaged conversion of them is simply done again."""
    cache = tmp_path / "cache"
    checkpoint_with_cut_weights(whisper_base, cache / "whisper-base")
    result = run_script("02-whisper-huggingface.py", "--audio", JFK.path, env={"WHISPER_LAB_CACHE": str(cache)})
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "model.safetensors is damaged" in result.stderr and "converting the packaged weights again" in result.stderr
    assert word_error_rate(JFK.text, transcript(result)) <= 0.10
    rebuilt = cache / "whisper-base" / "model.safetensors"
    assert rebuilt.stat().st_size == (whisper_base.path / "model.safetensors").stat().st_size
    assert sorted(p.name for p in cache.iterdir()) == ["whisper-base"]  # no lock, no half-built folder


# --- files of another model with the same short name ---------------------------------------------


def test_files_of_another_source_are_not_ready(exported_run, whisper_base, tmp_path):
    out, _ = exported_run
    other = resolve_model(str(linked_checkpoint(whisper_base, tmp_path / "elsewhere" / "whisper-base")))
    assert other.name == NAME and other.origin != whisper_base.origin
    assert files_ready(out, NAME, "int8", whisper_base.origin)
    assert not files_ready(out, NAME, "int8", other.origin)


def test_a_model_folder_is_recorded_by_its_full_path(whisper_base, tmp_path, monkeypatch):
    folder = linked_checkpoint(whisper_base, tmp_path / "whisper-base")
    monkeypatch.chdir(tmp_path)
    assert resolve_model("whisper-base").origin == resolve_model(str(folder)).origin == f"local folder {folder}"


@pytest.mark.slow
def test_transcribe_with_another_model_folder_of_the_same_name(exported_run, whisper_base, tmp_path):
    """`--model elsewhere/whisper-base` next to files exported from the default whisper-base: exported again."""
    out, _ = exported_run
    folder = link_copy(out, tmp_path / "models")
    other = linked_checkpoint(whisper_base, tmp_path / "elsewhere" / "whisper-base")

    args = ("--precision", "int8", "--output-dir", folder, "--model", other, "--transcribe", JFK.path)
    result = run_script(SCRIPT, *args)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "exported from other weights" in result.stderr
    assert "[fp32] whisper-base: exporting from PyTorch" in result.stderr
    assert word_error_rate(JFK.text, transcript(result)) <= 0.10
    for path in (*onnx_pair(folder, NAME, "fp32"), *onnx_pair(folder, NAME, "int8")):
        assert read_metadata(path)["source"] == f"local folder {other}"

    again = run_script(SCRIPT, *args)
    assert again.returncode == 0 and "exporting" not in again.stderr, again.stderr  # now they match
