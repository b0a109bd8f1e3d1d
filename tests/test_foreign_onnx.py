"""ONNX files the lab did not write, under the lab's names: one line naming the file, nothing written.

A tiny `Add` graph saved as the encoder, or the encoder and decoder swapped, are
valid ONNX files: without a check of their inputs and outputs, ONNX Runtime ran
them and failed deep in the decoding loop with a traceback. The exported files
are hard-linked into each test's folder, so the shared export is never touched.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import pytest
from conftest import assert_one_line_error, run_script
from onnx import TensorProto, helper
from test_export_faults import NAME, link_copy

from whisper_lab.audio.speech_data import JFK
from whisper_lab.errors import LabError
from whisper_lab.onnx_files import (
    check_interface,
    encoder_interface,
    end2end_interface,
    foreign_reason,
    onnx_pair,
    read_metadata,
    stale_reason,
)
from whisper_lab.transcribe.onnx_whisper import OnnxWhisper

SCRIPT = "03-export-encoder-decoder.py"


def add_graph(path: Path, metadata: dict[str, str] | None = None) -> None:
    """z = x + y: a valid ONNX model that is no part of Whisper (optionally wearing the lab's metadata)."""
    x, y, z = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in "xyz")
    graph = helper.make_graph([helper.make_node("Add", ["x", "y"], ["z"])], "add", [x, y], [z])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, metadata or {})
    path.unlink(missing_ok=True)  # a new file: the hard-linked original stays whole
    onnx.save(model, str(path))


def swap(a: Path, b: Path) -> None:
    tmp = a.with_suffix(".swap")
    os.rename(a, tmp)
    os.rename(b, a)
    os.rename(tmp, b)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file's name -> (inode, mtime): a replaced or touched file changes one of them."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}


@pytest.fixture
def folder(exported_run, tmp_path) -> Path:
    return link_copy(exported_run[0], tmp_path / "models")


def transcribe_int8(folder: Path):
    return run_script(SCRIPT, "--precision", "int8", "--output-dir", folder, "--transcribe", JFK.path)


@pytest.mark.parametrize("metadata", ["none", "the lab's"])
def test_add_graph_as_the_encoder_is_refused_by_03_transcribe(folder, metadata):
    encoder = onnx_pair(folder, NAME, "int8").encoder
    add_graph(encoder, read_metadata(encoder) if metadata == "the lab's" else None)
    before = snapshot(folder)
    result = transcribe_int8(folder)
    assert_one_line_error(result, encoder.name, "--force")
    assert "Transcription" not in result.stdout
    assert snapshot(folder) == before  # nothing written, the foreign file left as it was


def test_swapped_encoder_and_decoder_are_refused_by_03_transcribe(folder):
    pair = onnx_pair(folder, NAME, "int8")
    swap(pair.encoder, pair.decoder)
    before = snapshot(folder)
    line = assert_one_line_error(transcribe_int8(folder), "--force")
    assert pair.encoder.name in line or pair.decoder.name in line
    assert snapshot(folder) == before


@pytest.mark.parametrize("kind", ["folder", "link to /dev/zero"])
def test_a_folder_or_device_under_a_graph_name(folder, kind):
    """Not read (onnx would read /dev/zero forever), not replaced, even with --force: one line."""
    decoder = onnx_pair(folder, NAME, "int8").decoder
    decoder.unlink()
    decoder.mkdir() if kind == "folder" else decoder.symlink_to("/dev/zero")
    before = snapshot(folder)
    for force in ([], ["--force"]):
        result = run_script(SCRIPT, "--precision", "int8", "--output-dir", folder, "--transcribe", JFK.path, *force)
        assert_one_line_error(result, decoder.name, "remove it")
    assert snapshot(folder) == before


@pytest.mark.slow  # a whole fp32 export again: over a minute
def test_force_replaces_the_foreign_file(folder):
    encoder = onnx_pair(folder, NAME, "int8").encoder
    add_graph(encoder)
    result = run_script(SCRIPT, "--precision", "int8", "--output-dir", folder, "--force")
    assert result.returncode == 0, result.stderr
    assert stale_reason(encoder) is None and foreign_reason(encoder) is None


def test_the_runtime_checks_a_pair_it_did_not_write(folder):
    """OnnxWhisper on files with the lab's metadata but the wrong graphs (what 04 and 05 load)."""
    pair = onnx_pair(folder, NAME, "int8")
    with pytest.raises(LabError, match="not the encoder .* --force"):
        OnnxWhisper(pair.decoder, pair.decoder)
    with pytest.raises(LabError, match="not the decoder"):
        OnnxWhisper(pair.encoder, pair.encoder)
    add_graph(pair.encoder, read_metadata(pair.encoder))
    with pytest.raises(LabError, match=r"inputs are x, y; the encoder takes mel"):
        OnnxWhisper(pair.encoder, pair.decoder)


def test_an_encoder_of_another_size_under_the_lab_metadata(exported_run, tmp_path):
    """Metadata that lies about the model (6 layers written on a graph with 4): the sizes give it away."""
    real = onnx_pair(exported_run[0], NAME, "int8").encoder
    meta = read_metadata(real)
    liar = tmp_path / real.name
    encoder_like = helper.make_graph(
        [helper.make_node("Identity", ["mel"], ["cross_k"]), helper.make_node("Identity", ["mel"], ["cross_v"])], "enc",
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["batch", 80, 3000])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [4, "batch", 8, 64, 1500]) for n in ("cross_k", "cross_v")])
    model = helper.make_model(encoder_like, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, meta)
    onnx.save(model, str(liar))
    assert "sizes [4, None, 8, 64, 1500]" in stale_reason(liar)
    with pytest.raises(LabError, match=f"{liar.name}: not the encoder"):
        check_interface(liar, encoder_interface(meta), "python 03-export-encoder-decoder.py --force")


def test_check_interface_of_a_one_file_model(tmp_path):
    """The check 05 --transcribe runs before feeding audio to a one-file model."""
    path = tmp_path / "whisper-base_end2end.onnx"
    add_graph(path)
    with pytest.raises(LabError, match="whisper-base_end2end.onnx: not the end-to-end model .* takes audio.*--force"):
        check_interface(path, end2end_interface(), "python 05-export-end-to-end.py --force")
