"""Which operators a file needs, from the graph itself, against required_operators.config.

A reduced-operator build of ONNX Runtime (`build.sh --minimal_build
--include_ops_by_config required_operators.config`) contains the kernels the
config names and nothing else: an op the file uses but the config leaves out is
a model that loads on the laptop and fails on the device. So we walk the graph
that ONNX Runtime actually runs (the optimized one, with its fused com.microsoft
ops), into every Loop and If body at any depth, and compare.

The config's lines look like `ai.onnx;17;Add,Cast,Concat` (domain; opset; ops).
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_DOMAIN = "ai.onnx"  # the config's name for ONNX's default domain, "" in a ModelProto


def read_config(path: Path) -> dict[str, set[str]]:
    """domain -> op types, from a required_operators.config (comments and blank lines skipped)."""
    ops: dict[str, set[str]] = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        domain, _opset, names = line.split(";", 2)
        # with type reduction a name carries its types: Add{"inputs": ...}; the op is the part before "{"
        ops.setdefault(domain, set()).update(n.split("{", 1)[0] for n in _split_ops(names) if n)
    return ops


def _split_ops(names: str) -> list[str]:
    """Split 'Add,Cast{"inputs": {"0": ["float", "int64"]}},Concat' at the commas outside braces."""
    parts, depth, current = [], 0, ""
    for ch in names:
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    return parts + [current.strip()]


def graph_ops(graph) -> dict[str, set[str]]:
    """domain -> op types of every node of an onnx GraphProto, inside Loop/If/Scan bodies too."""
    from onnx import AttributeProto

    ops: dict[str, set[str]] = {}
    stack = [graph]
    while stack:
        for node in stack.pop().node:
            ops.setdefault(node.domain or DEFAULT_DOMAIN, set()).add(node.op_type)
            for attribute in node.attribute:
                if attribute.type == AttributeProto.GRAPH:
                    stack.append(attribute.g)
                elif attribute.type == AttributeProto.GRAPHS:
                    stack.extend(attribute.graphs)
    return ops


def subgraph_ops(graph) -> dict[str, set[str]]:
    """Only the ops inside subgraphs (Loop/If bodies): what a check of the top level would miss."""
    from onnx import AttributeProto

    inner = type(graph)()
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == AttributeProto.GRAPH:
                inner.node.extend(attribute.g.node)
    return graph_ops(inner)


def compare(config: dict[str, set[str]], used: dict[str, set[str]]) -> tuple[list[str], list[str]]:
    """(ops the graph uses that the config lacks, ops the config lists that the graph does not use)."""
    def flat(ops):
        return {f"{domain}:{op}" for domain, names in ops.items() for op in names}

    return sorted(flat(used) - flat(config)), sorted(flat(config) - flat(used))
