"""Script 04 on real exported models: the structural diff, the report, and every bad input (Netron: test_explore_netron*)."""

from __future__ import annotations

import importlib.util
import re
import time
from collections import Counter

import numpy as np
import onnx
import pytest
from conftest import assert_one_line_error, run_script

from whisper_lab.audio.speech_data import JFK
from whisper_lab.onnx_files import onnx_pair

SCRIPT = "04-compare-models.py"
UTTERANCES = 3  # JFK + 2 LibriVox sentences: enough to exercise the accuracy pass, quick to run
HAS_FASTER_WHISPER = importlib.util.find_spec("faster_whisper") is not None


@pytest.fixture(scope="module")
def exported(exported_run):
    """The folder holding all three precisions, exported once per test run by the real script 03."""
    return exported_run[0]


def pair(out, precision):
    return onnx_pair(out, "whisper-base", precision)


def ops(path) -> Counter:
    return Counter(n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node)


# --- structural diff -----------------------------------------------------------------------------


def test_int8_diff_matches_the_graphs(exported):
    from whisper_lab.explore.graph_diff import diff_graphs

    for fp32_file, int8_file in zip(pair(exported, "fp32"), pair(exported, "int8")):
        diff = diff_graphs(fp32_file, int8_file)
        rows = {row.op: row for row in diff.ops}
        fp32_ops, int8_ops = ops(fp32_file), ops(int8_file)
        for op in set(fp32_ops) | set(int8_ops):
            assert (rows[op].count_a, rows[op].count_b) == (fp32_ops[op], int8_ops[op]), op
        # every MatMul that disappeared was matched by name to the MatMulInteger that replaced it
        replaced = fp32_ops["MatMul"] - int8_ops["MatMul"]
        assert replaced > 0 and f"{replaced} became MatMulInteger" in rows["MatMul"].how
        assert f"{int8_ops['MatMulInteger']} were MatMul" in rows["MatMulInteger"].how
        assert rows["DynamicQuantizeLinear"].how == f"+{int8_ops['DynamicQuantizeLinear']} new"
        # parameter bytes: float32 gives way to int8
        assert diff.b.weight_bytes_by_dtype["int8"] > 0 and diff.a.weight_bytes_by_dtype["int8"] == 0
        assert diff.b.weight_bytes < 0.35 * diff.a.weight_bytes
        # ONNX Runtime fuses the quantized pattern when it loads the graph
        assert rows["DynamicQuantizeMatMul"].runtime_b + rows["MatMulIntegerToFloat"].runtime_b > 0
        assert rows["MatMulInteger"].runtime_b < rows["MatMulInteger"].count_b


def test_fp16_diff_shows_casts_and_float32_at_run_time(exported):
    from whisper_lab.explore.graph_diff import diff_graphs

    diff = diff_graphs(pair(exported, "fp32").encoder, pair(exported, "fp16").encoder)
    rows = {row.op: row for row in diff.ops}
    assert rows["Cast"].count_a == 0 and rows["Cast"].count_b == ops(pair(exported, "fp16").encoder)["Cast"] > 0
    assert rows["Cast"].runtime_b > rows["Cast"].count_b  # Casts ONNX Runtime adds for its float32 kernels
    assert diff.b.weight_bytes_by_dtype["float16"] > 0 and diff.b.weight_bytes_by_dtype["float32"] < 1e6
    assert diff.runtime_b.weight_bytes_by_dtype["float32"] > 0.9 * diff.a.weight_bytes_by_dtype["float32"]


def test_attention_blocks_per_layer(exported):
    from whisper_lab.explore.graph_diff import diff_graphs

    encoder = diff_graphs(pair(exported, "fp32").encoder, pair(exported, "int8").encoder, runtime=False)
    decoder = diff_graphs(pair(exported, "fp32").decoder, pair(exported, "int8").decoder, runtime=False)
    prefixes = {(r.block, r.prefix) for r in encoder.blocks + decoder.blocks}
    for layer in range(6):
        assert ("encoder self-attention", f"/encoder/layers.{layer}/self_attn") in prefixes
        assert ("cross-attention K/V (encoder side)", f"/cross_kv.{layer}") in prefixes
        assert ("decoder self-attention", f"/layers.{layer}/self_attn") in prefixes
        assert ("decoder cross-attention", f"/layers.{layer}/cross_attn") in prefixes
    assert len(prefixes) == 24
    graph = onnx.load(str(pair(exported, "fp32").encoder), load_external_data=False).graph
    for row in encoder.blocks:
        # a block holds the nodes named under its prefix, plus unnamed helpers placed there by their neighbours
        named = sum(1 for n in graph.node if n.name.startswith(row.prefix + "/"))
        assert named >= 3 and named <= row.nodes_a <= named + 2, row
        assert row.nodes_b > row.nodes_a  # quantization adds nodes to every block
    for stats in (encoder.a, encoder.b, decoder.a, decoder.b):  # every node is placed exactly once
        assert sum(sum(c.values()) for c in stats.module_ops.values()) == len(stats.nodes)


def test_diff_precisions_cli(exported):
    result = run_script(SCRIPT, "--diff-precisions", "fp32", "int8", "--model-dir", exported)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "## whisper-base_encoder.onnx vs whisper-base_encoder_int8.onnx" in out
    assert "## whisper-base_decoder.onnx vs whisper-base_decoder_int8.onnx" in out
    for section in ("### Op types", "### Parameter bytes by dtype", "### Largest initializers", "### Where the attention is"):
        assert out.count(section) == 2, section
    assert "/cross_kv.5" in out and "/layers.5/cross_attn" in out and "became MatMulInteger" in out


def test_diff_of_two_files_cli(exported):
    a, b = pair(exported, "fp32").decoder, pair(exported, "fp16").decoder
    result = run_script(SCRIPT, "--diff", a, b)
    assert result.returncode == 0, result.stderr
    size_ratio = b.stat().st_size / a.stat().st_size
    assert f"{b.name} is {size_ratio:.0%} of {a.name} on disk" in result.stdout


# --- the report ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report(exported):
    """The default report on the real models, with a tiny test set and one round."""
    start = time.perf_counter()
    result = run_script(SCRIPT, "--model-dir", exported, "--utterances", UTTERANCES, "--repeats", 1)
    assert result.returncode == 0, result.stderr
    print(f"\n04 report: {time.perf_counter() - start:.0f} s\n{result.stdout}")
    return exported, result, (exported / "report.md").read_text()


def _table_rows(markdown: str, heading: str) -> list[list[str]]:
    """Cells of the first table after a heading line that starts with `heading`."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    table = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            table.append([c.strip() for c in line.strip("|").split("|")])
        elif table:
            break
    return table[2:]  # without header and rule


def test_report_files_are_complete(report):
    out, _, markdown = report
    from whisper_lab.compare.report import PLOTS

    for name in PLOTS.values():
        png = (out / name).read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000, name
        assert f"]({name})" in markdown
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".")]


def test_report_sizes_are_the_files(report):
    out, _, markdown = report
    rows = {r[0]: r for r in _table_rows(markdown, "## Size on disk")}
    fp32 = pair(out, "fp32")
    for precision in ("fp32", "fp16", "int8"):
        for path, base in zip(pair(out, precision), fp32):
            assert rows[path.name][2] == f"{path.stat().st_size / 1e6:.1f}"
            assert rows[path.name][3] == f"{path.stat().st_size / base.stat().st_size:.2f}"


def test_report_has_every_backend_once_per_table(report):
    _, result, markdown = report
    expected = ["HF PyTorch fp32", "ONNX fp32", "ONNX fp16", "ONNX int8"] + (["faster-whisper int8"] if HAS_FASTER_WHISPER else [])
    for heading in ("## Speed", "## Accuracy", "## Peak memory"):
        assert [r[0] for r in _table_rows(markdown, heading)] == expected, heading
    if not HAS_FASTER_WHISPER:
        assert "faster-whisper is not installed" in markdown
    # stdout carries the same tables as the report
    after_heading = markdown.split("## Speed")[1].split("\n\n")[1]
    assert after_heading.startswith("| backend") and after_heading in result.stdout


def test_report_speed_and_memory_are_measured(report):
    _, _, markdown = report
    speed = {r[0]: r for r in _table_rows(markdown, "## Speed")}
    for name, row in speed.items():
        encoder_ms, decoder_ms, total_s = float(row[1]), float(row[2]), float(row[3])
        assert 0 < encoder_ms / 1000 < total_s and decoder_ms > 0, name
    assert speed["HF PyTorch fp32"][4].startswith("1.00x")
    memory = {r[0]: float(r[3]) for r in _table_rows(markdown, "## Peak memory")}
    # each backend in its own process: the peaks differ, and follow the weights they hold
    assert memory["ONNX int8"] < memory["ONNX fp32"] and memory["ONNX int8"] < memory["HF PyTorch fp32"]
    assert memory["ONNX int8"] <= 400  # onnx_whisper's shared exact-size arena keeps int8 under 400 MB


def test_report_accuracy_counts_real_words(report):
    from whisper_lab.audio.speech_data import english_test_set
    from whisper_lab.compare.wer import word_count

    _, _, markdown = report
    words = sum(word_count(u.text) for u in english_test_set(UTTERANCES))
    for row in _table_rows(markdown, "## Accuracy"):
        errors, total = (int(x) for x in row[2].split(" / "))
        assert total == words and float(row[1]) == pytest.approx(100 * errors / words, abs=0.06)
    per_utterance = _table_rows(markdown, "## Per utterance")
    assert [r[0] for r in per_utterance] == [u.id for u in english_test_set(UTTERANCES)]


def test_report_says_what_the_run_shows_and_nothing_of_ours(report):
    folder, _, markdown = report
    findings = {r[0]: r for r in _table_rows(markdown, "## What this run shows")}
    assert len(findings) == (10 if HAS_FASTER_WHISPER else 8)
    wer_rows = [r for what, r in findings.items() if "WER" in what]
    assert len(wer_rows) == 2 and all("too few" in r[2] for r in wer_rows)  # a few test utterances prove nothing
    assert all(r[1] and r[2] for r in findings.values())
    # the report speaks of the lab: no internal goals, verdicts or tracker words
    assert not re.search(r"Target|NOT met|issue", (folder / "report.md").read_text())


def test_phase_clocks_count_real_work(exported, jfk_audio):
    """Encoder windows and decoder steps as the stopwatches see them, checked against the decoders' tokens."""
    from whisper_lab.compare.backends import load_backend
    from whisper_lab.compare.benchmark import measure_speed, rotation

    assert rotation(["a", "b", "c"], 1) == ["b", "c", "a"] and rotation(["a", "b", "c"], 5) == ["c", "a", "b"]
    backends = {n: load_backend(n, exported, "openai/whisper-base", 2) for n in ("hf-fp32", "onnx-fp32")}
    results, _ = measure_speed(backends, jfk_audio, repeats=2)
    tokens = backends["onnx-fp32"].whisper.transcribe_tokens(jfk_audio)
    for name, result in results.items():
        assert len(result.timings) == 2
        for t in result.timings:
            assert t.windows == 1 and t.steps == len(tokens) + 1, name  # + the step that chose <|endoftext|>
            assert 0 < t.encoder + t.decoder < t.total
    assert results["hf-fp32"].text == results["onnx-fp32"].text


@pytest.mark.skipif(not HAS_FASTER_WHISPER, reason="faster-whisper not installed (requirements-bench.txt)")
def test_faster_whisper_runs_the_packaged_weights(jfk_audio):
    from whisper_lab.compare.backends import load_backend
    from whisper_lab.compare.wer import word_error_rate
    from whisper_lab.weights.faster_whisper_model import ctranslate2_model_dir
    from whisper_lab.weights.packaged_weights import MODEL_BIN_SIZE

    folder = ctranslate2_model_dir()
    assert (folder / "model.bin").stat().st_size == MODEL_BIN_SIZE
    backend = load_backend("faster-whisper-int8", folder, "openai/whisper-base", 2)
    text, timing = backend.timed_transcribe(jfk_audio)
    assert word_error_rate(JFK.text, text) <= 0.1
    assert timing.windows == 1 and timing.steps > 10


def test_test_set_is_reproducible_real_speech():
    import soundfile as sf

    from whisper_lab.audio.speech_data import english_test_set

    chosen = english_test_set(30)
    assert chosen == english_test_set(30) and len({u.id for u in chosen}) == 30
    assert chosen[0] == JFK and {u.source.split()[0] for u in chosen} >= {"pocketsphinx-testdata", "asterisk-core-sounds-en"}
    assert all(sf.info(str(u.path)).duration <= 30 for u in chosen)


# --- bad input -----------------------------------------------------------------------------------


def test_diff_missing_file(exported, tmp_path):
    result = run_script(SCRIPT, "--diff", pair(exported, "fp32").encoder, tmp_path / "gone.onnx")
    assert_one_line_error(result, "gone.onnx", "no such ONNX file")


def test_diff_of_a_file_that_is_not_onnx(exported, tmp_path):
    fake = tmp_path / "fake.onnx"
    fake.write_bytes(np.random.default_rng(0).bytes(5000))
    result = run_script(SCRIPT, "--diff", pair(exported, "fp32").encoder, fake)
    assert_one_line_error(result, "fake.onnx", "cannot read it as an ONNX model")


def test_report_without_model_dir(tmp_path):
    result = run_script(SCRIPT, "--model-dir", tmp_path / "missing")
    assert_one_line_error(result, "no such folder", "03-export-encoder-decoder.py --precision all")


def test_report_with_missing_precision(exported, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    for path in [*pair(exported, "fp32"), exported / "whisper-base_tokenizer.json"]:
        (partial / path.name).symlink_to(path)
    result = run_script(SCRIPT, "--model-dir", partial)
    assert_one_line_error(result, "whisper-base_encoder_fp16.onnx", "03-export-encoder-decoder.py")
    assert_one_line_error(run_script(SCRIPT, "--model-dir", partial, "--diff-precisions", "fp32", "int8"),
                          "whisper-base_encoder_int8.onnx")  # fmt: skip


def test_bad_numbers_and_names(exported):
    assert_one_line_error(run_script(SCRIPT, "--model-dir", exported, "--utterances", "0"), "at least 1")
    result = run_script(SCRIPT, "--backends", "onnx-int4")
    assert result.returncode == 2 and "invalid choice" in result.stderr and "Traceback" not in result.stderr
    assert_one_line_error(run_script(SCRIPT, "--diff-precisions", "int8", "int8"), "two different precisions")
