"""Foreign ONNX files under step 9's names (05): one line naming the file, nothing written.

The --transcribe case needs the interface check in end2end/session.py's EndToEnd
(onnx_files.check_interface against end2end_interface); the build case goes
through the pair's check in export/pipeline.py.
"""

from __future__ import annotations

import onnx
from conftest import assert_one_line_error, run_script
from end2end_files import built_end2end
from onnx import TensorProto, helper
from test_export_faults import NAME, link_copy
from test_foreign_onnx import snapshot, swap

from whisper_lab.audio.speech_data import JFK
from whisper_lab.onnx_files import check_interface, end2end_interface, onnx_pair, read_metadata

SCRIPT = "05-export-end-to-end.py"


def test_05_refuses_to_build_from_a_swapped_pair(exported_run, tmp_path):
    folder = link_copy(exported_run[0], tmp_path / "models")
    pair = onnx_pair(folder, NAME, "int8")
    swap(pair.encoder, pair.decoder)
    before = snapshot(folder)
    line = assert_one_line_error(run_script(SCRIPT, "--precision", "int8", "--output-dir", folder), "--force")
    assert pair.encoder.name in line or pair.decoder.name in line
    assert snapshot(folder) == before


def test_05_transcribe_refuses_a_foreign_one_file_model(exported_run, tmp_path, tmp_path_factory):
    """An Add graph wearing a real one-file model's metadata (so it counts as built and is kept)."""
    built = built_end2end(exported_run[0], tmp_path_factory.getbasetemp())
    real = built.file("int8")
    check_interface(real, end2end_interface(), "python 05-export-end-to-end.py --force")  # the real one passes
    folder = tmp_path / "foreign"
    folder.mkdir()
    for source in built.folder.iterdir():
        if source.suffix in (".onnx", ".json") and source != real:
            (folder / source.name).symlink_to(source.resolve())
    x, y, z = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in "xyz")
    model = helper.make_model(helper.make_graph([helper.make_node("Add", ["x", "y"], ["z"])], "add", [x, y], [z]),
                              opset_imports=[helper.make_opsetid("", 17)])  # fmt: skip
    model.ir_version = 8
    helper.set_model_props(model, read_metadata(real))
    onnx.save(model, str(folder / real.name))
    before = snapshot(folder)
    result = run_script(SCRIPT, "--precision", "int8", "--output-dir", folder, "--transcribe", JFK.path)
    assert_one_line_error(result, real.name, "end-to-end model", "--force")
    assert snapshot(folder) == before

