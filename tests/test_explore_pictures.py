"""04 --pictures: the graph regions the README's pictures show, and the script that draws them with Netron.

The regions are checked against the real exported graphs with onnx (each
picture holds what its caption says), then the real script draws all of them
in a headless Chromium, and every README picture must be one it draws.
"""

from __future__ import annotations

import os
import re
import struct
from collections import Counter

import onnx
import pytest
from conftest import REPO, assert_one_line_error, run_script

from whisper_lab.explore.pictures import PICTURES, crop_file, region

SCRIPT = "04-compare-models.py"
BY_NAME = {picture.name: picture for picture in PICTURES}


@pytest.fixture(scope="module")
def exported(exported_run):
    return exported_run[0]


@pytest.fixture(scope="module")
def crops(exported):
    """Each picture's crops as (graph, items drawn, op types of the nodes drawn)."""
    graphs, found = {}, {}
    for picture in PICTURES:
        for crop in picture.crops:
            path = crop_file(exported, "whisper-base", crop)
            graph = graphs.setdefault(path, onnx.load(str(path), load_external_data=False).graph)
            items = region(graph, crop)
            node_of = {node.name: node for node in graph.node}
            ops = Counter(node_of[name].op_type for kind, name in items if kind == "node")
            found.setdefault(picture.name, []).append((graph, items, ops))
    return found


def test_pictures_hold_what_their_captions_say(crops):
    (_, items, ops), = crops["netron-encoder-fanout"]
    assert ops["LayerNormalization"] == 2 and ops["Gelu"] == 1  # the last block's MLP, then the final one
    assert ops["MatMul"] == 12 + 2  # the 12 key/value projections, and the MLP's two
    assert sum(name.startswith("/cross_kv.") for _, name in items) == 12

    (_, items, ops), = crops["netron-decoder-self-attention"]
    assert ops["Concat"] == 2 and {("input", "self_k_2"), ("input", "self_v_2")} <= set(items)

    (_, items, ops), = crops["netron-decoder-cross-attention"]
    assert {("input", "cross_k_2"), ("input", "cross_v_2")} <= set(items) and ops["Softmax"] == 1
    assert ops["MatMul"] == 4  # query, two attention products, output: no key/value projection here

    (graph, top, top_ops), (_, bottom, _) = crops["netron-decoder-embedding"]
    node_of = {node.name: node for node in graph.node}
    weights = {init.name for init in graph.initializer}
    gather_table = {v for name in (n for k, n in top if k == "node") if node_of[name].op_type == "Gather"
                    for v in node_of[name].input if v in weights}  # fmt: skip
    matmul_table = {v for k, n in bottom if k == "node" and node_of[n].op_type == "MatMul"
                    for v in node_of[n].input if v in weights}  # fmt: skip
    assert gather_table == matmul_table == {"token_embedding_t"}  # one table, two users
    assert ("output", "logits") in bottom and top_ops["GatherND"] == 1

    (_, _, fp32_ops), (_, _, int8_ops) = crops["netron-int8-vs-fp32"]
    assert fp32_ops["MatMul"] == 3 and "DynamicQuantizeLinear" not in fp32_ops
    assert int8_ops["DynamicQuantizeLinear"] == 1 and int8_ops["MatMulInteger"] == 3 and int8_ops["MatMul"] == 0

    (graph, inputs, _), (_, outputs, _) = crops["netron-fp16-casts"]
    to = {node.name: next(a.i for a in node.attribute if a.name == "to") for node in graph.node if node.op_type == "Cast"}
    assert ("input", "mel") in inputs and [to[n] for k, n in inputs if n in to] == [onnx.TensorProto.FLOAT16]
    assert {("output", "cross_k"), ("output", "cross_v")} <= set(outputs)
    assert [to[n] for k, n in outputs if n in to] == [onnx.TensorProto.FLOAT] * 2


def test_readme_shows_pictures_that_04_draws():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    shown = {name for page in pages for name in re.findall(r"\]\((?:docs/)?images/(netron-[^)]+)\.png\)", page.read_text())}
    assert shown == set(BY_NAME), "every picture 04 --pictures draws is in the README or docs/, and only those"
    for name in shown:
        assert (REPO / "docs" / "images" / f"{name}.png").is_file(), name


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.browser
@pytest.mark.slow
def test_pictures_cli_draws_every_picture(exported):
    if os.environ.get("WHISPER_LAB_SKIP_BROWSER") == "1":
        pytest.skip("WHISPER_LAB_SKIP_BROWSER=1")
    result = run_script(SCRIPT, "--pictures", "--model-dir", exported, timeout=900)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "no installed font" not in result.stderr, "install a CJK font: bash .ci/install-fonts.sh"
    print(result.stdout)
    assert f"Wrote {len(PICTURES)} pictures into {exported / 'pictures'}" in result.stdout
    for picture in PICTURES:
        data = (exported / "pictures" / f"{picture.name}.png").read_bytes()
        width, height = _png_size(data)
        assert 250 <= width <= 2000 and 150 <= height <= 1700, (picture.name, width, height)
        committed = REPO / "docs" / "images" / f"{picture.name}.png"
        if len(picture.crops) > 1:  # side by side: at least as wide as two crops
            assert width > 500, (picture.name, width)
        print(f"{picture.name}: {width}x{height} (committed: {_png_size(committed.read_bytes())})")


def test_pictures_without_an_export(tmp_path):
    assert_one_line_error(run_script(SCRIPT, "--pictures", "--model-dir", tmp_path / "none"),
                          "no such folder", "03-export-encoder-decoder.py")  # fmt: skip
