"""Read a CTranslate2 `model.bin` with numpy alone.

CTranslate2 (the engine behind faster-whisper) stores a model as one binary
file. Its layout is written by `ctranslate2.specs.model_spec.ModelSpec._serialize`
(binary version 6), all integers little-endian:

    uint32  binary version
    string  spec name (e.g. "WhisperSpec")
    uint32  spec revision
    uint32  number of variables, then for each:
        string  name (e.g. "encoder/layer_0/ffn/linear_0/weight")
        uint8   rank, then rank x uint32 dimensions
        uint8   dtype id: 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16
        uint32  number of bytes, then the raw row-major data
    uint32  number of aliases, then for each: string alias, string target

where a "string" is a uint16 length (including a trailing NUL byte), the UTF-8
bytes, and the NUL. Aliases are how CTranslate2 stores a tensor once under two
names: Whisper's output projection is an alias of the token embedding.

Reading it ourselves means the lab never needs the ctranslate2 package at run
time; the tests use ctranslate2 only as a reference.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

SUPPORTED_BINARY_VERSIONS = (5, 6)

# bfloat16 has no numpy dtype; we read its raw bits and widen them to float32.
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}


class CT2FormatError(ValueError):
    """The bytes are not a CTranslate2 model file we can read."""


@dataclass
class CT2Model:
    spec_name: str
    revision: int
    variables: dict[str, np.ndarray] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.variables[self.aliases.get(name, name)]

    def scalar(self, name: str) -> int:
        return int(self[name].reshape(()))


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def unpack(self, fmt: str):
        try:
            values = struct.unpack_from("<" + fmt, self.data, self.pos)
        except struct.error as exc:
            raise CT2FormatError(f"file ends early at byte {self.pos}") from exc
        self.pos += struct.calcsize("<" + fmt)
        return values[0] if len(values) == 1 else values

    def string(self) -> str:
        length = self.unpack("H")
        raw = self.data[self.pos : self.pos + length]
        if len(raw) != length or not raw.endswith(b"\0"):
            raise CT2FormatError(f"bad string at byte {self.pos}")
        self.pos += length
        return raw[:-1].decode("utf-8")

    def array(self, dtype_id: int, shape: tuple[int, ...], num_bytes: int) -> np.ndarray:
        if dtype_id not in _DTYPES:
            raise CT2FormatError(f"unknown dtype id {dtype_id} at byte {self.pos}")
        raw = self.data[self.pos : self.pos + num_bytes]
        if len(raw) != num_bytes:
            raise CT2FormatError("file ends inside a tensor")
        self.pos += num_bytes
        if _DTYPES[dtype_id] == "bfloat16":
            bits = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            return bits.view(np.float32).reshape(shape)
        array = np.frombuffer(raw, dtype=_DTYPES[dtype_id])
        if array.size != int(np.prod(shape, dtype=np.int64)):
            raise CT2FormatError("tensor size does not match its shape")
        return array.reshape(shape)


def parse_ct2_model(data: bytes) -> CT2Model:
    """Parse the bytes of a CTranslate2 model.bin into named numpy arrays (read-only views)."""
    reader = _Reader(data)
    version = reader.unpack("I")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise CT2FormatError(f"unsupported CTranslate2 binary version {version}")
    model = CT2Model(spec_name=reader.string(), revision=reader.unpack("I"))
    for _ in range(reader.unpack("I")):
        name = reader.string()
        rank = reader.unpack("B")
        shape = tuple(reader.unpack("I") for _ in range(rank))
        dtype_id = reader.unpack("B")
        num_bytes = reader.unpack("I")
        model.variables[name] = reader.array(dtype_id, shape, num_bytes)
    for _ in range(reader.unpack("I")):
        alias = reader.string()
        model.aliases[alias] = reader.string()
    if reader.pos != len(data):
        raise CT2FormatError(f"{len(data) - reader.pos} unexpected bytes after the last alias")
    return model
