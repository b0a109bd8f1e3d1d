"""The contract between the exporter (03) and everything that reads its files.

An export is a set of files in one folder, named after the model:

    whisper-base_encoder.onnx        whisper-base_decoder.onnx        fp32
    whisper-base_encoder_fp16.onnx   whisper-base_decoder_fp16.onnx   fp16
    whisper-base_encoder_int8.onnx   whisper-base_decoder_int8.onnx   int8
    whisper-base_tokenizer.json                                       shared by all

and, only when word timestamps are asked for, a decoder that also outputs where
its alignment heads look in the audio (`ALIGNMENT_OUTPUT`):

    whisper-base_decoder_attention.onnx  _attention_fp16.onnx  _attention_int8.onnx

A graph whose weights pass a size threshold (large-v3-turbo's encoder, medium's
decoder: protobuf cannot hold more than 2 GiB in one file) keeps them in a side
file, ONNX "external data": `whisper-medium_decoder.onnx` names
`whisper-medium_decoder.onnx.<8 hex>.data`, which ONNX Runtime reads next to
it. The side file's name is new for every save, so a new .onnx never points
at an old side file: the side file goes into place first, then the .onnx is
renamed over the old one (the switch), then the old side file is removed.
The two are counted, checked, moved and removed together (`onnx_file_set`).

The graphs' input and output names, and the metadata every file carries
(`export_version`, `source`, token ids, ...), are the rest of the contract: the
runtime (transcribe/), the comparison (04) and the exporter itself agree on
them through this module, so none of those parts needs to import another.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PRECISIONS = ("fp32", "fp16", "int8")
# Weights above this many MB go to a side file. protobuf's hard limit is 2 GiB for the whole
# file; 1536 MB leaves room for the graph. WHISPER_LAB_EXTERNAL_DATA_MB lowers it (the tests
# force a small model through the external-data path with it).
EXTERNAL_DATA_ENV, DEFAULT_EXTERNAL_DATA_MB = "WHISPER_LAB_EXTERNAL_DATA_MB", 1536
# Bump when the exported graphs change, so files from older code are not taken as up to date.
EXPORT_VERSION = "3"

ENCODER_INPUTS, ENCODER_OUTPUTS = ["mel"], ["cross_k", "cross_v"]


def decoder_input_names(n_layer: int) -> list[str]:
    """tokens, self_k_0..5, self_v_0..5, cross_k_0..5, cross_v_0..5 (one tensor per layer)."""
    return ["tokens"] + [f"{kind}_{i}" for kind in ("self_k", "self_v", "cross_k", "cross_v") for i in range(n_layer)]


def decoder_output_names(n_layer: int) -> list[str]:
    """logits, then each layer's grown cache: new_self_k_0..5, new_self_v_0..5."""
    return ["logits"] + [f"new_{kind}_{i}" for kind in ("self_k", "self_v") for i in range(n_layer)]


ALIGNMENT_OUTPUT = "alignment_qk"  # the attention decoder's extra output, after the decoder's own


def attention_decoder_output_names(n_layer: int) -> list[str]:
    """The decoder's outputs, then the alignment heads' cross-attention scores."""
    return decoder_output_names(n_layer) + [ALIGNMENT_OUTPUT]


def attention_decoder_file(output_dir: Path, model_name: str, precision: str) -> Path:
    """whisper-base_decoder_attention.onnx / whisper-base_decoder_attention_int8.onnx / ..."""
    suffix = "" if precision == "fp32" else f"_{precision}"
    return Path(output_dir) / f"{model_name}_decoder_attention{suffix}.onnx"


@dataclass(frozen=True)
class ExportedPair:
    encoder: Path
    decoder: Path

    def __iter__(self):
        return iter((self.encoder, self.decoder))


def onnx_pair(output_dir: Path, model_name: str, precision: str) -> ExportedPair:
    """whisper-base_encoder.onnx / whisper-base_decoder_int8.onnx / ... (fp32 has no suffix)."""
    suffix = "" if precision == "fp32" else f"_{precision}"
    return ExportedPair(output_dir / f"{model_name}_encoder{suffix}.onnx", output_dir / f"{model_name}_decoder{suffix}.onnx")


def tokenizer_file(output_dir: Path, model_name: str) -> Path:
    return output_dir / f"{model_name}_tokenizer.json"


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata_props of an ONNX file, without loading its weights into a session."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def stale_reason(path: Path, origin: str | None = None) -> str | None:
    """Why `path` must be exported again (missing, damaged, older exporter, other weights), or None if it is current.

    `origin` is where the weights come from (ModelSource.origin); None skips that check.
    """
    if not path.is_file():
        return "missing"
    try:
        meta = read_metadata(path)
    except Exception:  # onnx raises protobuf's DecodeError and others for a damaged file
        return "damaged"
    if meta.get("export_version") != EXPORT_VERSION:
        return f"from an older version of the exporter ({meta.get('export_version')}, now {EXPORT_VERSION})"
    if origin is not None and meta.get("source") != origin:
        return f"exported from other weights ({meta.get('source')})"
    try:
        return data_problem(path)
    except Exception:  # noqa: BLE001 - read above, so a failure here is a damaged file too
        return "damaged"


def is_up_to_date(path: Path, origin: str | None = None) -> bool:
    """True if `path` was written by this version of the exporter (from `origin`'s weights, if given)."""
    return stale_reason(path, origin) is None


def tokenizer_problem(path: Path) -> str | None:
    """Why the tokenizer file cannot be used ("missing", or the parser's complaint), or None."""
    from tokenizers import Tokenizer

    if not path.is_file():
        return "missing"
    try:
        Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception for a damaged file
        return f"damaged ({(str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]})"
    return None


# --- external data: a .onnx and its side files, as one ---------------------------------------


def external_data_threshold() -> int:
    """Weight bytes above which a graph is saved with a side file (WHISPER_LAB_EXTERNAL_DATA_MB)."""
    from .errors import LabError

    value = os.environ.get(EXTERNAL_DATA_ENV, "").strip() or str(DEFAULT_EXTERNAL_DATA_MB)
    try:
        megabytes = float(value)
    except ValueError:
        raise LabError(f"{EXTERNAL_DATA_ENV}={value!r} is not a number of MB; set it to e.g. 1536, or unset it") from None
    if not 0 <= megabytes <= 2000:
        raise LabError(f"{EXTERNAL_DATA_ENV}={value} is outside 0-2000 MB (protobuf holds at most 2 GiB per file)")
    return int(megabytes * 1e6)


def _external_extents(path: Path) -> dict[Path, int]:
    """Each side file that `path`'s tensors point at -> the bytes they need from it (offset + length)."""
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, _get_all_tensors, uses_external_data

    model = onnx.load(str(path), load_external_data=False)
    needed: dict[Path, int] = {}
    for tensor in _get_all_tensors(model):
        if uses_external_data(tensor):
            info = ExternalDataInfo(tensor)
            side = Path(path).parent / info.location
            needed[side] = max(needed.get(side, 0), (info.offset or 0) + (info.length or 0))
    return needed


def data_files(path: Path) -> list[Path]:
    """The side files `path` reads its weights from (none for a one-file graph or a missing/damaged file)."""
    try:
        return sorted(_external_extents(path))
    except Exception:  # noqa: BLE001 - missing or damaged: it has no side file we could name
        return []


def onnx_file_set(path: Path) -> list[Path]:
    """`path` and its side files: what is copied, counted and removed together."""
    return [Path(path), *data_files(path)]


def onnx_size(path: Path) -> int:
    """Bytes on disk of `path` together with its side files."""
    return sum(p.stat().st_size for p in onnx_file_set(path) if p.is_file())


def data_problem(path: Path) -> str | None:
    """Why the side files of `path` cannot serve its weights (missing, too short), or None."""
    for side, needed in _external_extents(path).items():
        if not side.is_file():
            return f"its weights file {side.name} is missing"
        if side.stat().st_size < needed:
            return f"its weights file {side.name} is truncated ({side.stat().st_size} of {needed} bytes)"
    return None


def remove_onnx(path: Path) -> None:
    """Remove `path` and its side files (side files first would leave a .onnx that cannot load)."""
    sides = data_files(path)
    Path(path).unlink(missing_ok=True)
    for side in sides:
        side.unlink(missing_ok=True)


def replace_onnx(source: Path, dest: Path) -> None:
    """Move a finished `source` (and its side files) onto `dest` in the same file system, atomically.

    Side files keep their unique names: they go into place first, then the rename of
    the .onnx switches readers from the old weights to the new in one step, then the
    side files of the old `dest` that the new one does not use are removed.
    """
    source, dest = Path(source), Path(dest)
    old_sides = set(data_files(dest))
    new_sides = data_files(source)
    for side in new_sides:
        os.replace(side, dest.parent / side.name)
    os.replace(source, dest)
    for side in old_sides - {dest.parent / s.name for s in new_sides}:
        side.unlink(missing_ok=True)


def link_onnx(source: Path, folder: Path) -> Path:
    """`source` seen from `folder` as a hard link (a copy where links are not allowed), its side files copied.

    onnx refuses to read a side file that has more than one hard link (a guard against
    links planted to read other files), so side files cannot be linked.
    """
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    for part in onnx_file_set(source):
        link = folder / part.name
        link.unlink(missing_ok=True)
        if part != Path(source):
            shutil.copyfile(part, link)
            continue
        try:
            os.link(part, link)
        except OSError:
            shutil.copyfile(part, link)
    return folder / Path(source).name
