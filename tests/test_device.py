"""Step 10 on the real whisper-base: the .ort files, their operator config, and the device program.

The reference for tokens is the one-file .onnx run by the lab's own wrapper
(end2end/session.py) with onnxruntime's default session.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import wave

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import run_script
from end2end_files import built_end2end

from whisper_lab.audio.loading import load_audio
from whisper_lab.audio.speech_data import JFK, english_test_set
from whisper_lab.device import runner
from whisper_lab.device.operators import compare, graph_ops, read_config
from whisper_lab.device.ort_format import device_files
from whisper_lab.device.prepare import RUNNER_NAME, device_dir
from whisper_lab.end2end.session import EndToEnd


@pytest.fixture(scope="module")
def prepared(exported_run, tmp_path_factory):
    """06 --precision all, once, into the folder of 05's files; returns (that folder, 06's result)."""
    folder, _ = exported_run
    built = built_end2end(folder, tmp_path_factory.getbasetemp())
    result = run_script("06-prepare-for-device.py", "--precision", "all", "--output-dir", built.folder, timeout=1200)
    assert result.returncode == 0, result.stderr
    print(result.stdout)
    return built, result


@pytest.mark.slow  # 06 converts both files: a minute or two
def test_06_writes_the_folder_to_copy(prepared):
    built, result = prepared
    folder = device_dir(built.folder)
    expected = {RUNNER_NAME}
    for precision in ("fp32", "int8"):
        files = device_files(built.file(precision), folder)
        expected |= {files.ort.name, files.config.name, files.stamp.name}
    assert {p.name for p in folder.iterdir()} == expected  # and no temporary files left
    assert result.stdout.count("same ") == 2, result.stdout  # 06's own check: .ort and .onnx agree on the sample
    again = run_script("06-prepare-for-device.py", "--precision", "all", "--output-dir", built.folder)
    assert again.returncode == 0 and again.stderr.count(".ort is up to date, kept") == 2, again.stderr


@pytest.mark.slow  # 06 converts both files: a minute or two
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_ort_file_gives_the_onnx_files_tokens(prepared, precision):
    """The .ort in a plain onnxruntime session (the standard wheel, default options) vs the .onnx."""
    built, _ = prepared
    onnx_model = EndToEnd(built.file(precision))
    ort_file = device_files(built.file(precision), device_dir(built.folder)).ort
    session = ort.InferenceSession(str(ort_file), providers=["CPUExecutionProvider"])
    for utterance in english_test_set(3):
        audio = load_audio(utterance.path)
        got = runner.transcribe(session, audio)  # the device runner's feeds: greedy, no prompt, no timestamps
        expected = onnx_model.window(audio)
        assert got["tokens"] == expected.tokens, utterance.id
        assert got["text"] == expected.text_bytes.decode()


@pytest.mark.slow  # 06 converts both files: a minute or two
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_operator_config_lists_every_op_of_the_optimized_graph(prepared, precision, tmp_path):
    """The config against a graph optimized here as the converter does (arm target), Loop body included."""
    built, _ = prepared
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    options.add_session_config_entry("session.qdqisint8allowed", "1")  # what the converter sets for arm
    ort.InferenceSession(str(built.file(precision)), options, providers=["CPUExecutionProvider"],
                         disabled_optimizers=["NchwcTransformer"])  # fmt: skip
    graph = onnx.load(str(tmp_path / "optimized.onnx")).graph
    used = graph_ops(graph)
    config_path = device_files(built.file(precision), device_dir(built.folder)).config
    config = read_config(config_path)
    assert compare(config, used) == ([], [])

    # The loop's body holds ops the top level has not (the decoder's): a check of the top level alone misses them.
    top = graph_ops(onnx.GraphProto(node=[n for n in graph.node if n.op_type != "Loop"]))
    assert compare(config, top)[1], "the config should list ops found only inside the Loop body"
    # ...and the check sees an op taken out of the config.
    op = sorted(config["ai.onnx"])[0]
    config["ai.onnx"].discard(op)
    assert compare(config, used)[0] == [f"ai.onnx:{op}"]
    if precision == "int8":
        assert "MatMulInteger" in config["ai.onnx"] or "DynamicQuantizeMatMul" in config.get("com.microsoft", set())


def test_device_program_imports_only_onnxruntime_numpy_and_the_standard_library():
    tree = ast.parse(open(runner.__file__).read())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
    assert imported - {"onnxruntime", "numpy"} <= set(sys.stdlib_module_names), imported


@pytest.mark.slow  # 06 converts both files: a minute or two
def test_device_program_alone_in_a_folder(prepared, tmp_path):
    """The copied program, in isolated mode (no lab on the path), as on the board: the .onnx file's text."""
    built, _ = prepared
    folder = device_dir(built.folder)
    model = device_files(built.file("int8"), folder).ort
    done = subprocess.run([sys.executable, "-I", str(folder / RUNNER_NAME), str(model), str(JFK.path), "--stats"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == EndToEnd(built.file("int8")).transcribe(load_audio(JFK.path)).text.strip()
    assert "peak" in done.stderr and ort.__version__ in done.stderr


def test_device_program_reads_other_rates_and_stereo(tmp_path):
    """A 44.1 kHz stereo WAV comes out as the 16 kHz mono samples the model wants."""
    audio = load_audio(JFK.path)
    n = int(len(audio) * 44_100 / 16_000)
    resampled = np.interp(np.arange(n) * 16_000 / 44_100, np.arange(len(audio)), audio)
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2), w.setsampwidth(2), w.setframerate(44_100)
        pcm = (np.clip(resampled, -1, 1) * 32767).astype("<i2")
        w.writeframes(np.stack([pcm, pcm], axis=1).tobytes())
    back = runner.read_wav(str(path))
    assert abs(len(back) - len(audio)) <= 1
    assert np.corrcoef(back[: len(audio) - 1], audio[: len(back) - 1])[0, 1] > 0.99


@pytest.mark.slow  # 06 converts both files: a minute or two
@pytest.mark.parametrize("case", ["missing", "8-bit", "not a wav"])
def test_device_program_bad_input_is_one_line(prepared, tmp_path, case):
    built, _ = prepared
    model = device_files(built.file("int8"), device_dir(built.folder)).ort
    wav = tmp_path / "in.wav"
    if case == "8-bit":
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1), w.setsampwidth(1), w.setframerate(16_000), w.writeframes(bytes(1600))
    elif case == "not a wav":
        wav.write_text("hello")
    done = subprocess.run([sys.executable, runner.__file__, str(model), str(wav)], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_feeds_follow_the_models_inputs(tmp_path):
    """A model with more inputs than today's (previous prompt tokens, a temperature): the runner fills them."""
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["n"]),
              helper.make_tensor_value_info("prompt_tokens", TensorProto.INT64, ["p"]),
              helper.make_tensor_value_info("temperature", TensorProto.FLOAT, []),
              helper.make_tensor_value_info("language", TensorProto.INT64, [])]  # fmt: skip
    nodes = [helper.make_node("Shape", ["prompt_tokens"], ["n_prompt"]),
             helper.make_node("Add", ["temperature", "temperature"], ["t2"]),
             helper.make_node("Identity", ["language"], ["lang"])]  # fmt: skip
    outputs = [helper.make_tensor_value_info(n, t, s) for n, t, s in
               (("n_prompt", TensorProto.INT64, [1]), ("t2", TensorProto.FLOAT, []), ("lang", TensorProto.INT64, []))]  # fmt: skip
    graph = helper.make_graph(nodes, "more inputs", inputs, outputs,
                              initializer=[helper.make_tensor("language", TensorProto.INT64, [], [50259])])  # fmt: skip
    path = tmp_path / "more.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = runner.model_feeds(session, np.zeros(10, np.float32))
    assert set(feeds) == {"audio", "prompt_tokens", "temperature"}  # language keeps the model's default
    n_prompt, t2, lang = session.run(None, feeds)
    assert n_prompt.tolist() == [0] and float(t2) == 0.0 and int(lang) == 50259
    _, _, lang = session.run(None, runner.model_feeds(session, np.zeros(10, np.float32), language=50260))
    assert int(lang) == 50260
    with pytest.raises(ValueError, match="no input 'seed'"):
        runner.model_feeds(session, np.zeros(10, np.float32), seed=1)


@pytest.mark.slow  # 06 converts both files: a minute or two
def test_small_board_options_keep_a_30_s_window_within_a_small_boards_budget(prepared, tmp_path):
    """Peak RSS of the device program (fresh process each) on a full 30 s window, small-board vs default options."""
    from whisper_lab.device.memory import CONFIGS, run_runner, thirty_second_clip

    built, _ = prepared
    folder = device_dir(built.folder)
    model = device_files(built.file("int8"), folder).ort
    clip = thirty_second_clip(tmp_path / "clip30.wav")
    small, default = (run_runner(folder / RUNNER_NAME, model, clip, CONFIGS[c], threads=2) for c in ("small-board", "default"))
    print(f"\npeak RSS, int8 .ort, 30 s: small-board {small['peak_mb']:.0f} MB (after load {small['loaded_mb']:.0f}), "
          f"default {default['peak_mb']:.0f} MB; onnxruntime {small['onnxruntime']}, cpu {small['cpu']}")  # fmt: skip
    assert small["tokens"] == default["tokens"]
    assert len(small["tokens"]) >= 20  # it ran: today's one file (no timestamp tokens) writes the first sentences of a window
    assert small["peak_mb"] < default["peak_mb"]
    # 340 MB: what a 512 MB board has left after the GPU's share and a minimal OS, with a margin; the peak is
    # 292-308 MB on the x86 machines measured so far (docs/embedded.md), the default options' 358-371 MB do not fit
    assert small["peak_mb"] <= 340, "a 512 MB board needs room for its OS"
