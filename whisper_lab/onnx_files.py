"""The contract between the exporter (03) and everything that reads its files.

An export is a set of files in one folder, named after the model:

    whisper-base_encoder.onnx        whisper-base_decoder.onnx        fp32
    whisper-base_encoder_fp16.onnx   whisper-base_decoder_fp16.onnx   fp16
    whisper-base_encoder_int8.onnx   whisper-base_decoder_int8.onnx   int8
    whisper-base_tokenizer.json                                       shared by all

The graphs' input and output names, and the metadata every file carries
(`export_version`, `source`, token ids, ...), are the rest of the contract: the
runtime (transcribe/), the comparison (04) and the exporter itself agree on
them through this module, so none of those parts needs to import another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PRECISIONS = ("fp32", "fp16", "int8")
# Bump when the exported graphs change, so files from older code are not taken as up to date.
EXPORT_VERSION = "3"

ENCODER_INPUTS, ENCODER_OUTPUTS = ["mel"], ["cross_k", "cross_v"]


def decoder_input_names(n_layer: int) -> list[str]:
    """tokens, self_k_0..5, self_v_0..5, cross_k_0..5, cross_v_0..5 (one tensor per layer)."""
    return ["tokens"] + [f"{kind}_{i}" for kind in ("self_k", "self_v", "cross_k", "cross_v") for i in range(n_layer)]


def decoder_output_names(n_layer: int) -> list[str]:
    """logits, then each layer's grown cache: new_self_k_0..5, new_self_v_0..5."""
    return ["logits"] + [f"new_{kind}_{i}" for kind in ("self_k", "self_v") for i in range(n_layer)]


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
    return None


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
