"""The one file in ONNX Runtime's ORT format, with the operator list a reduced build needs.

    whisper-base_end2end_int8.onnx  ->  device/whisper-base_end2end_int8.ort
                                        device/whisper-base_end2end_int8.required_operators.config

ORT format is a flatbuffer of the graph *after* ONNX Runtime's optimizations
(fusions done once here, not at every start on the board), which the minimal
builds for phones and boards load without an ONNX parser. We convert with
onnxruntime's own tool, `onnxruntime.tools.convert_onnx_models_to_ort`, for the
`arm` target: that keeps out the x86-only NCHWc layout, so one .ort serves ARM
and x86 alike. The tool also writes the config of every op the .ort uses; we
check that list against the optimized graph ourselves (operators.py), Loop body
included, before the files get their names.

A .ort file is read by the onnxruntime version that wrote it or a newer one;
the version is in the stamp next to it, so the device installs at least that.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabError
from ..files import atomic_file, file_sha256, scratch_dir
from .operators import DEFAULT_DOMAIN, compare, graph_ops, read_config, subgraph_ops

CONFIG_SUFFIX = ".required_operators.config"


@dataclass(frozen=True)
class DeviceFiles:
    ort: Path
    config: Path
    stamp: Path


def device_files(onnx_path: Path, device_dir: Path) -> DeviceFiles:
    stem = Path(onnx_path).stem
    return DeviceFiles(device_dir / f"{stem}.ort", device_dir / f"{stem}{CONFIG_SUFFIX}", device_dir / f"{stem}.ort.json")


def stamp_for(onnx_path: Path) -> dict[str, str]:
    import onnxruntime as ort

    return {"source": Path(onnx_path).name, "source_sha256": file_sha256(onnx_path), "onnxruntime": ort.__version__,
            "optimization": "Fixed, level all, target arm"}  # fmt: skip


def is_prepared(onnx_path: Path, files: DeviceFiles) -> bool:
    """Up to date: written from exactly this .onnx by this onnxruntime version."""
    if not (files.ort.is_file() and files.config.is_file() and files.stamp.is_file()):
        return False
    try:
        return json.loads(files.stamp.read_text()) == stamp_for(onnx_path)
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class OpsCheck:
    config_ops: int
    graph_ops: int
    loop_body_ops: int  # op types found only by looking inside Loop/If bodies
    missing: list[str]  # used by the graph, absent from the config: a reduced build would fail
    unused: list[str]  # in the config, not in the graph: harmless, a slightly bigger build


def check_operators(config_path: Path, optimized_onnx: Path) -> OpsCheck:
    """The config against every node of the optimized graph (the graph the .ort holds)."""
    import onnx

    graph = onnx.load(str(optimized_onnx), load_external_data=False).graph
    config, used = read_config(config_path), graph_ops(graph)
    top = {}
    for node in graph.node:  # the top level alone, bodies not entered
        top.setdefault(node.domain or DEFAULT_DOMAIN, set()).add(node.op_type)
    only_inner = sum(len(names - top.get(domain, set())) for domain, names in subgraph_ops(graph).items())
    missing, unused = compare(config, used)
    return OpsCheck(sum(map(len, config.values())), sum(map(len, used.values())), only_inner, missing, unused)


def convert(onnx_path: Path, device_dir: Path) -> tuple[DeviceFiles, OpsCheck]:
    """Write the .ort, its operator config and stamp into `device_dir`; each appears complete or not at all."""
    import onnxruntime as ort
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    onnx_path = Path(onnx_path).resolve()
    files = device_files(onnx_path, device_dir)
    with scratch_dir(device_dir, "ort-convert") as scratch:
        # The tool converts every .onnx of a folder: give it a folder holding only this one (a link).
        source = scratch / "in" / onnx_path.name
        source.parent.mkdir()
        os.symlink(onnx_path, source)
        out = scratch / "out"
        # Quiet: its progress lines (kept for an error message), its INFO log, and onnxruntime's notice that
        # language and task are inputs with defaults (on purpose: a caller may override them).
        ort.set_default_logger_severity(3)
        logging.getLogger("ort_format_model.utils").setLevel(logging.WARNING)
        with contextlib.redirect_stdout(io.StringIO()) as said:
            try:
                convert_onnx_models_to_ort(source, output_dir=out, optimization_styles=[OptimizationStyle.Fixed],
                                           target_platform="arm", save_optimized_onnx_model=True)  # fmt: skip
            except Exception as exc:  # onnxruntime's own error types
                raise LabError(f"{onnx_path.name}: ONNX Runtime cannot convert it to ORT format "
                               f"({str(exc).splitlines()[0][:200]}); build it again with 05 --force") from exc  # fmt: skip
        ort_file, config = out / f"{onnx_path.stem}.ort", out / f"{onnx_path.stem}.required_operators.config"
        if not (ort_file.is_file() and config.is_file()):
            raise LabError(f"the ORT converter wrote no .ort for {onnx_path.name}: {said.getvalue()[-300:]}")
        check = check_operators(config, out / f"{onnx_path.stem}.optimized.onnx")
        if check.missing:
            raise LabError(f"required_operators.config for {onnx_path.name} lacks {', '.join(check.missing)}, which "
                           "the optimized graph uses; this is a bug of the converter, please report it")  # fmt: skip
        # Our config names the model by its place on the device, not the scratch folder.
        lines = [line for line in config.read_text().splitlines() if not line.startswith("# - ")]
        lines.insert(1, f"# - {files.ort.name}")
        files.stamp.unlink(missing_ok=True)  # up to date again only once the new .ort passed its checks
        for target, write in ((files.ort, lambda p: shutil.copyfile(ort_file, p)),
                              (files.config, lambda p: p.write_text("\n".join(lines) + "\n"))):  # fmt: skip
            with atomic_file(target) as tmp:
                write(tmp)
    return files, check


def write_stamp(onnx_path: Path, files: DeviceFiles) -> None:
    """Mark the .ort as made from exactly this .onnx (written after the checks on the sample passed)."""
    with atomic_file(files.stamp) as tmp:
        tmp.write_text(json.dumps(stamp_for(onnx_path), indent=1) + "\n")
