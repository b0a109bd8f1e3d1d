"""A small helper that writes ONNX nodes by hand, with names Netron can show.

The end-to-end graph is mostly the exported encoder and decoder, but the parts
around them (the log-mel front end, the decoding loop's rules, the byte table)
are written node by node with `onnx.helper`. `Nodes` keeps that readable: each
call adds one node and returns the name of its output, so a few lines of Python
read like the computation they build:

    frames = g.op("MatMul", frames, basis)
    power = g.op("Mul", frames, frames)

Node names carry a scope (`/front_end/MatMul`), which Netron shows on hover and
in its search box; value names carry the same scope, so they never collide with
the encoder's or decoder's.
"""

from __future__ import annotations

import numpy as np

# The exported pair's opset: Gelu (opset 20) and LayerNormalization (17) are standard ops there.
# IR version 10 is what onnx 1.16+ writes and onnxruntime 1.17+ (web included) reads.
OPSET, IR_VERSION = 20, 10


def i64(*values) -> np.ndarray:
    """A 1-D int64 array: ONNX wants int64 for shapes, pads, slice bounds and axes."""
    return np.array(values, dtype=np.int64)


class Nodes:
    def __init__(self, scope: str):
        self.scope = scope.strip("/")
        self.nodes: list = []
        self.initializers: list = []
        self._used: dict[str, int] = {}

    def _unique(self, label: str) -> str:
        count = self._used.get(label, 0)
        self._used[label] = count + 1
        return label if count == 0 else f"{label}_{count}"

    def const(self, label: str, value) -> str:
        """A constant tensor (an initializer of the graph); returns its name."""
        from onnx import numpy_helper

        name = f"{self.scope}.{self._unique(label)}"
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, *inputs: str, label: str | None = None, outputs: list[str] | None = None,
           **attributes) -> str | list[str]:
        """Add one node; returns its output's name (`outputs` names them: a list for several outputs)."""
        from onnx import helper

        base = self._unique(label or op_type)
        names = outputs or [f"{self.scope}.{base}"]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=f"/{self.scope}/{base}", **attributes))
        return names[0] if len(names) == 1 else names
