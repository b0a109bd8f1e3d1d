"""The README's pictures of steps 5 and 8: regions of our exported graphs, photographed in Netron (04 --pictures).

Each picture names its region by the ONNX graph, not by pixels: a few seed
nodes (by name, or by op type next to the graph's inputs or outputs), widened
by a number of hops along the data edges. The region is found in the real file
with onnx, then photographed in Netron's page (netron_browser). So a picture
follows the graph when an export changes, and fails loudly if a node it needs
is gone. Two crops in one picture stand side by side, like two browser windows.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabError
from ..files import atomic_file
from ..onnx_files import onnx_pair

SINGLE = (1600, 1300)  # largest crop, in CSS pixels; Netron zooms out only to fit it
HALF = (820, 1300)  # each of two crops side by side


@dataclass(frozen=True)
class Crop:
    precision: str  # fp32 / fp16 / int8
    part: str  # encoder / decoder
    caption: str  # above the crop when two stand side by side
    names: str = ""  # seed nodes: a regular expression their whole name matches
    op: str = ""  # ... or seed nodes of this op type
    touching: str = ""  # ... that read a graph input ("input") or write a graph output ("output")
    up: int = 0  # widened by this many hops towards the graph's inputs
    down: int = 0  # ... and towards its outputs
    inputs: bool = True  # also the graph inputs the nodes read (Netron may place them far away) ...
    outputs: bool = True  # ... and the graph outputs they write
    attributes: bool = False  # Netron's "Show Attributes": e.g. a Cast's `to = float16`


@dataclass(frozen=True)
class Picture:
    name: str  # the PNG's file name, without .png
    shows: str  # one line: what it shows
    crops: tuple[Crop, ...]


PICTURES = (
    Picture("netron-encoder-fanout",
            "encoder: the MLP that ends the last block, the final LayerNormalization and the 12 key/value MatMuls",
            (Crop("fp32", "encoder", "", down=1,
                  names=r"/encoder/(layer_norm/.*|layers\.5/((final_layer_norm|fc1|activation_fn|fc2)/.*|Add(_1)?))"),)),
    Picture("netron-decoder-self-attention",
            "decoder layer 2: the self-attention cache, self_k_2/self_v_2 grown by one token with Concat",
            (Crop("fp32", "decoder", "", outputs=False,
                  names=r"/layers\.2/self_attn(_layer_norm/.*|/[kv]_proj/.*|/(Reshape|Transpose|Concat)(_1)?)"),)),
    Picture("netron-decoder-cross-attention",
            "decoder layer 2: cross-attention reading the encoder's cross_k_2 and cross_v_2",
            (Crop("fp32", "decoder", "", names=r"/layers\.2/cross_attn(_layer_norm)?/.*"),)),
    Picture("netron-decoder-embedding",
            "decoder: the token table used twice, by the embedding Gather (top) and the final MatMul (bottom)",
            (Crop("fp32", "decoder", "top of the decoder: token + position embedding", inputs=False,
                  names=r"/(Reshape|Gather|Transpose|Reshape_1|GatherND|Add_1)"),
             Crop("fp32", "decoder", "bottom of the decoder: logits", names=r"/MatMul", up=1))),
    Picture("netron-int8-vs-fp32",
            "encoder layer 0's q/k/v projections in fp32 and in int8",
            (Crop("fp32", "encoder", "fp32: whisper-base_encoder.onnx",
                  names=r"/encoder/layers\.0/self_attn/[qkv]_proj/.*", up=1),
             Crop("int8", "encoder", "int8: whisper-base_encoder_int8.onnx",
                  names=r"/encoder/layers\.0/self_attn/[qkv]_proj/.*", up=2))),
    Picture("netron-fp16-casts",
            "fp16 encoder: Cast nodes where float32 comes in and goes out",
            (Crop("fp16", "encoder", "input: mel arrives as float32", op="Cast", touching="input", down=1,
                  attributes=True),
             Crop("fp16", "encoder", "outputs: cross_k and cross_v leave as float32", op="Cast", touching="output",
                  up=1, attributes=True))),
)  # fmt: skip


def crop_file(model_dir: Path, model_name: str, crop: Crop) -> Path:
    pair = onnx_pair(model_dir, model_name, crop.precision)
    return pair.encoder if crop.part == "encoder" else pair.decoder


def region(graph, crop: Crop) -> list[tuple[str, str]]:
    """The (kind, name) items Netron draws for the crop: kind node, input or output."""
    nodes = {node.name: node for node in graph.node}
    weights = {init.name for init in graph.initializer}
    inputs = {value.name for value in graph.input} - weights
    outputs = {value.name for value in graph.output}
    producer = {out: node.name for node in graph.node for out in node.output}
    consumers: dict[str, list[str]] = {}
    for node in graph.node:
        for value in node.input:
            consumers.setdefault(value, []).append(node.name)

    def is_seed(node) -> bool:
        if crop.names and not re.fullmatch(crop.names, node.name):
            return False
        if crop.op and node.op_type != crop.op:
            return False
        if crop.touching == "input":
            return any(value in inputs for value in node.input)
        if crop.touching == "output":
            return any(value in outputs for value in node.output)
        return True

    seeds = {name for name, node in nodes.items() if is_seed(node)}
    if not seeds:
        raise LabError(f"no node of {graph.name or 'the graph'} matches {crop}; has the export changed?")
    chosen = set(seeds)
    for hops, step in ((crop.up, lambda node: [producer[v] for v in node.input if v in producer]),
                       (crop.down, lambda node: [c for v in node.output for c in consumers.get(v, [])])):  # fmt: skip
        frontier = set(seeds)
        for _ in range(hops):
            frontier = {name for node in frontier for name in step(nodes[node])} - chosen
            chosen |= frontier
    # the graph's own inputs and outputs that the chosen nodes touch are drawn too (tokens, cross_k_2, logits)
    touched = {v for name in chosen for v in (*nodes[name].input, *nodes[name].output)}
    return sorted({("node", name) for name in chosen}
                  | {("input", v) for v in (touched & inputs if crop.inputs else ())}
                  | {("output", v) for v in (touched & outputs if crop.outputs else ())})  # fmt: skip


def missing_font_note() -> str | None:
    """Netron writes shapes between U+3008/U+3009; without a font that has them, they are boxes."""
    try:
        found = subprocess.run(["fc-list", ":charset=3008"], capture_output=True, text=True, timeout=30, check=False).stdout
    except OSError:
        found = ""
    if found.strip():
        return None
    return ("note: no installed font has the angle brackets Netron writes around shapes; they will show as "
            "boxes. Install one: bash .ci/install-fonts.sh")  # fmt: skip


def render_pictures(model_dir: Path, model_name: str, out_dir: Path, pictures=PICTURES, log=print) -> list[Path]:
    """Photograph every picture's crops in Netron and write out_dir/<name>.png; returns the files."""
    import onnx

    from .netron_browser import NetronBrowser
    from .netron_server import NetronApp

    by_file: dict[Path, list[tuple[int, int, Crop]]] = {}
    for p, picture in enumerate(pictures):
        for c, crop in enumerate(picture.crops):
            by_file.setdefault(crop_file(model_dir, model_name, crop), []).append((p, c, crop))
    shots: dict[tuple[int, int], bytes] = {}
    written = []
    with NetronBrowser() as browser:
        log(f"Drawing {len(pictures)} pictures with Netron {NetronApp.installed().version} "
            f"in headless Chromium {browser.version} ...")  # fmt: skip
        for path, crops in by_file.items():  # each file rendered once, photographed for all its crops
            graph = onnx.load(str(path), load_external_data=False).graph
            with browser.open(path) as page:
                for p, c, crop in crops:
                    page.show_attributes(crop.attributes)
                    items = region(graph, crop)
                    size = SINGLE if len(pictures[p].crops) == 1 else HALF
                    shots[p, c], zoom = page.screenshot_region(items, max_size=size)
                    log(f"  {path.name}: {len(items)} nodes for {pictures[p].name} (zoom {zoom:.2f})")
        for p, picture in enumerate(pictures):
            panels = [(crop.caption, shots[p, c]) for c, crop in enumerate(picture.crops)]
            image = panels[0][1] if len(panels) == 1 else browser.side_by_side(panels)
            target = out_dir / f"{picture.name}.png"
            with atomic_file(target) as tmp:
                tmp.write_bytes(image)
            written.append(target)
    return written
