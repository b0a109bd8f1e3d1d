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
    model = _load_graph(path)
    return {p.key: p.value for p in model.metadata_props}


def stale_reason(path: Path, origin: str | None = None) -> str | None:
    """Why `path` must be exported again (missing, damaged, older exporter, other weights, not the
    graph its name promises), or None if it is current.

    `origin` is where the weights come from (ModelSource.origin); None skips that check.
    """
    if not path.is_file():
        return "missing"
    try:
        model = _load_graph(path)
    except Exception:  # onnx raises protobuf's DecodeError and others for a damaged file
        return "damaged"
    meta = {p.key: p.value for p in model.metadata_props}
    if meta.get("export_version") != EXPORT_VERSION:
        return f"from an older version of the exporter ({meta.get('export_version')}, now {EXPORT_VERSION})"
    if origin is not None and meta.get("source") != origin:
        return f"exported from other weights ({meta.get('source')})"
    if problem := _named_interface_problem(path, model, meta):
        return problem
    try:
        return data_problem(path)
    except Exception:  # noqa: BLE001 - read above, so a failure here is a damaged file too
        return "damaged"


def foreign_reason(path: Path) -> str | None:
    """Why the file under a lab name is not one this lab exported (no lab metadata, or not the graph
    its name promises: another model's, the encoder and decoder swapped), or None.

    Missing, damaged and older-version files are not foreign: the exporter replaces those itself.
    A foreign file may be someone's own work, so only --force writes over it.
    """
    if os.path.lexists(path) and not Path(path).is_file():
        kind = "a folder" if Path(path).is_dir() else "not a regular file (a device, a pipe or a broken link)"
        return f"{kind}, where the lab keeps a graph; remove it"
    try:
        model = _load_graph(path)
    except Exception:  # noqa: BLE001 - missing or damaged: the exporter's own business
        return None
    meta = {p.key: p.value for p in model.metadata_props}
    if "export_version" not in meta:
        return "not written by this lab (its metadata has no export_version)"
    if meta["export_version"] != EXPORT_VERSION:
        return None
    return _named_interface_problem(path, model, meta)


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


# --- interfaces: what the lab feeds each graph and reads back ----------------------------------
# A file under a lab name may hold another graph (a tiny test model, the decoder saved as the
# encoder). Checked before it runs, that is one clear line instead of ONNX Runtime's complaint
# about a missing input deep in the decoding loop.


@dataclass(frozen=True)
class Port:
    """One input or output: its name, element type ('float', 'int64', ...) and sizes (None: any)."""

    name: str
    elem_type: str
    dims: tuple[int | None, ...]

    def describe(self) -> str:
        return f"{self.name} ({self.elem_type}, {len(self.dims)} dims)"


@dataclass(frozen=True)
class Interface:
    """What a step expects of a graph; `outputs` it reads (a graph may have more)."""

    what: str
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    optional_inputs: tuple[Port, ...] = ()  # inputs with a default inside the graph (fed or not)


def _size(meta: dict[str, str], key: str) -> int | None:
    value = meta.get(key, "")
    return int(value) if value.isdigit() else None


def encoder_interface(meta: dict[str, str]) -> Interface:
    """mel (batch, n_mels, 3000) -> cross_k (n_layer, batch, head, head_dim, 1500), cross_v (..., 1500, head_dim)."""
    n_layer, n_head, ctx, n_mels = (_size(meta, k) for k in ("n_layer", "n_head", "n_audio_ctx", "n_mels"))
    d_model = _size(meta, "d_model")
    head_dim = d_model // n_head if d_model and n_head else None
    frames = 2 * ctx if ctx else None
    return Interface("the encoder", (Port("mel", "float", (None, n_mels, frames)),),
                     (Port("cross_k", "float", (n_layer, None, n_head, head_dim, ctx)),
                      Port("cross_v", "float", (n_layer, None, n_head, ctx, head_dim))))  # fmt: skip


def decoder_interface(meta: dict[str, str], attention: bool = False) -> Interface:
    """tokens (batch, n) + one cache tensor per layer -> logits (batch, n, vocab) + the grown caches."""
    n_layer = _size(meta, "n_layer")
    if n_layer is None:
        raise ValueError("n_layer missing from the metadata")
    n_head, d_model, ctx, vocab = (_size(meta, k) for k in ("n_head", "d_model", "n_audio_ctx", "vocab_size"))
    head_dim = d_model // n_head if d_model and n_head else None
    cache = {"self_k": (None, n_head, None, head_dim), "self_v": (None, n_head, None, head_dim),
             "cross_k": (None, n_head, head_dim, ctx), "cross_v": (None, n_head, ctx, head_dim)}  # fmt: skip
    inputs = [Port("tokens", "int64", (None, None))]
    inputs += [Port(name, "float", cache[name.rsplit("_", 1)[0]]) for name in decoder_input_names(n_layer)[1:]]
    outputs = [Port("logits", "float", (None, None, vocab))]
    outputs += [Port(name, "float", cache[name[4:].rsplit("_", 1)[0]]) for name in decoder_output_names(n_layer)[1:]]
    if attention:
        outputs.append(Port(ALIGNMENT_OUTPUT, "float", (None, None, None, None)))  # (batch, head, n_new, frames)
    return Interface("the attention decoder" if attention else "the decoder", tuple(inputs), tuple(outputs))


def end2end_interface(multilingual: bool = True) -> Interface:
    """One window: audio (n_samples,) [+ language, task, timestamps, prompt, temperature] -> tokens, text (UTF-8
    bytes), text_end, no_speech_prob, avg_logprob, speech_seconds."""
    # language, task and seed have defaults in the graph (onnxruntime lists them as overridable initializers)
    token = (Port("language", "int64", ()), Port("task", "int64", ())) if multilingual else ()
    fed = (Port("audio", "float", (None,)), Port("timestamps", "bool", ()), Port("prompt", "int64", (None,)),
           Port("temperature", "float", ()))
    return Interface("the end-to-end model", fed,
                     (Port("tokens", "int64", (None,)), Port("text", "uint8", (None,)),
                      Port("text_end", "int64", (None,)), Port("no_speech_prob", "float", ()),
                      Port("avg_logprob", "float", ()), Port("speech_seconds", "float", ())),
                     (*token, Port("seed", "int64", ())))  # fmt: skip


def _onnx_ports(values) -> list[Port]:
    import onnx

    ports = []
    for value in values:
        tensor = value.type.tensor_type
        elem = onnx.TensorProto.DataType.Name(tensor.elem_type).lower() if value.type.HasField("tensor_type") else "?"
        dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
        ports.append(Port(value.name, elem, dims))
    return ports


def _ort_ports(args) -> list[Port]:
    """onnxruntime's NodeArgs: type 'tensor(float)', shape [int | str | None, ...]."""
    return [Port(a.name, a.type.removeprefix("tensor(").removesuffix(")"),
                 tuple(d if isinstance(d, int) else None for d in (a.shape or []))) for a in args]  # fmt: skip


def _names(ports, limit: int = 4) -> str:
    names = [p.name for p in ports]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "") or "none"


def interface_problem(inputs: list[Port], outputs: list[Port], expected: Interface) -> str | None:
    """What in a graph's inputs and outputs differs from `expected`, in a few words, or None."""
    have_in, have_out = {p.name: p for p in inputs}, {p.name: p for p in outputs}
    required, known = {p.name for p in expected.inputs}, {p.name for p in expected.inputs + expected.optional_inputs}
    if not required <= set(have_in) <= known:
        return f"its inputs are {_names(inputs)}; {expected.what} takes {_names(expected.inputs)}"
    if missing := [p for p in expected.outputs if p.name not in have_out]:
        return f"it has no output {_names(missing, 2)}; {expected.what} gives {_names(expected.outputs)}"
    checked = [p for p in expected.inputs + expected.optional_inputs if p.name in have_in]
    for want, have in [*((p, have_in[p.name]) for p in checked), *((p, have_out[p.name]) for p in expected.outputs)]:
        if want.elem_type != have.elem_type or len(want.dims) != len(have.dims):
            return f"{have.describe()} where {expected.what} has {want.describe()}"
        sizes = [(w, h) for w, h in zip(want.dims, have.dims) if w is not None and h is not None]
        if any(w != h for w, h in sizes):
            return (f"{have.name} has sizes {list(have.dims)}, {expected.what} of the model its metadata names "
                    f"has {list(want.dims)}")  # fmt: skip
    return None


def _load_graph(path: Path):
    """The graph and metadata of `path`, its weights' side files left alone.

    Only a regular file: onnx reads to the end, so a name linked to /dev/zero or a FIFO would never return.
    """
    import onnx
    import stat

    if not stat.S_ISREG(os.stat(path).st_mode):
        raise ValueError(f"{path} is not a regular file")
    return onnx.load(str(path), load_external_data=False)


def graph_role(path: Path) -> str | None:
    """'encoder', 'decoder' or 'attention decoder', from a lab file name (None: not a lab graph name)."""
    stem = Path(path).name.removesuffix(".onnx")
    for precision in ("", "_fp16", "_int8"):
        for role, ending in (("attention decoder", "_decoder_attention"), ("encoder", "_encoder"), ("decoder", "_decoder")):
            if stem.endswith(ending + precision):
                return role
    return None


def expected_interface(role: str, meta: dict[str, str]) -> Interface:
    if role == "encoder":
        return encoder_interface(meta)
    return decoder_interface(meta, attention=role == "attention decoder")


def _named_interface_problem(path: Path, model, meta: dict[str, str]) -> str | None:
    """The interface problem of a graph saved under a lab name, against what that name promises."""
    role = graph_role(path)
    if role is None:
        return None
    try:
        expected = expected_interface(role, meta)
    except ValueError:
        return f"its metadata does not describe a model ({role} without n_layer)"
    problem = interface_problem(_onnx_ports(model.graph.input), _onnx_ports(model.graph.output), expected)
    return f"not {expected.what} its name says ({problem})" if problem else None


def check_interface(path: Path, expected: Interface, how_to_rebuild: str, session=None) -> None:
    """Refuse, in one line naming the file, a graph whose inputs and outputs are not `expected`.

    `session`: an onnxruntime session of `path` already open (its inputs are read from it,
    without parsing the file again). `how_to_rebuild`: the command that writes a good file.
    """
    from .errors import LabError

    if session is not None:
        inputs, outputs = _ort_ports(session.get_inputs()), _ort_ports(session.get_outputs())
    else:
        try:
            model = _load_graph(path)
        except Exception as exc:  # noqa: BLE001 - any parse error: a damaged file
            raise LabError(f"{path}: not an ONNX file this lab can read (damaged?); rebuild it: {how_to_rebuild}") from exc
        inputs, outputs = _onnx_ports(model.graph.input), _onnx_ports(model.graph.output)
    if problem := interface_problem(inputs, outputs, expected):
        raise LabError(f"{path}: not {expected.what} this lab runs ({problem}); rebuild it: {how_to_rebuild}")


def threads_from_environment() -> int | None:
    """WHISPER_LAB_THREADS, if set: how many CPU threads ONNX Runtime may use (0 or unset: all cores).

    One reading for 03, 04 and 05, so the same setting means the same everywhere."""
    from .errors import LabError

    value = os.environ.get("WHISPER_LAB_THREADS", "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise LabError(f"WHISPER_LAB_THREADS={value!r} is not a number of threads; "
                       "set it to a whole number such as 2, or unset it")  # fmt: skip
    return int(value) or None


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
    from onnx.external_data_helper import ExternalDataInfo, _get_all_tensors, uses_external_data

    model = _load_graph(path)
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
