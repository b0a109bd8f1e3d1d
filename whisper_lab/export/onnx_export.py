"""Export Whisper's encoder and one-step decoder to ONNX (float32), with metadata.

We use PyTorch's current exporter (`torch.onnx.export(..., dynamo=True)`): it
traces the model with torch.export, translates each aten op to ONNX, and
optimizes the graph with onnxscript. Compared with the older TorchScript
exporter it keeps a shared weight shared (the tied token embedding is stored
once) and it checks that the axes we call dynamic really are.

Every file carries metadata (`onnx.ModelProto.metadata_props`): token ids,
language ids, layer and head counts, mel settings, where the weights came from.
A decoding loop needs nothing else, so ONNX inference runs without any Python
model code (see transcribe/onnx_whisper.py).
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import logging
import secrets
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

from ..errors import LabError
from ..files import atomic_file, scratch_dir
from ..onnx_files import (
    ENCODER_INPUTS,
    ENCODER_OUTPUTS,
    EXPORT_VERSION,
    ExportedPair,
    attention_decoder_output_names,
    data_files,
    decoder_input_names,
    decoder_output_names,
    external_data_threshold,
    replace_onnx,
)


def whisper_metadata(model, processor, source, precision: str) -> dict[str, str]:
    """Everything a decoding loop needs, as ONNX metadata (string key -> string value)."""
    from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

    config, generation = model.config, model.generation_config
    tokenizer = processor.tokenizer
    token = tokenizer.convert_tokens_to_ids
    # English-only (.en) models have the task tokens in their vocabulary but no language list:
    # their prompt is <|startoftranscript|> alone (then <|notimestamps|>).
    multilingual = bool(getattr(generation, "is_multilingual", True) and getattr(generation, "lang_to_id", None))
    meta = {
        "model_type": "whisper",
        "model_name": source.name,
        "source": source.origin,
        "precision": precision,
        "export_version": EXPORT_VERSION,
        "n_mels": config.num_mel_bins,
        "n_audio_ctx": config.max_source_positions,
        "n_text_ctx": config.max_target_positions,
        "d_model": config.d_model,
        "n_layer": config.decoder_layers,
        "n_head": config.decoder_attention_heads,
        "n_encoder_layer": config.encoder_layers,
        "vocab_size": config.vocab_size,
        "sample_rate": processor.feature_extractor.sampling_rate,
        "n_fft": processor.feature_extractor.n_fft,
        "hop_length": processor.feature_extractor.hop_length,
        "chunk_seconds": processor.feature_extractor.chunk_length,
        "sot": token("<|startoftranscript|>"),
        "eot": token("<|endoftext|>"),
        "multilingual": int(multilingual),
        "transcribe": token("<|transcribe|>"),
        "translate": token("<|translate|>"),
        "no_timestamps": generation.no_timestamps_token_id,
        "sot_prev": token("<|startofprev|>"),
        "timestamp_begin": generation.no_timestamps_token_id + 1,
        "max_initial_timestamp_index": getattr(generation, "max_initial_timestamp_index", 50),
        "suppress_tokens": json.dumps(list(generation.suppress_tokens or [])),
        "begin_suppress_tokens": json.dumps(list(generation.begin_suppress_tokens or [])),
        "lang_to_id": json.dumps(generation.lang_to_id if multilingual else {}),
        "language_names": json.dumps(TO_LANGUAGE_CODE),
        "tokenizer_file": f"{source.name}_tokenizer.json",
    }
    return {key: str(value) for key, value in meta.items()}


def set_metadata(model_proto, metadata: dict[str, str]) -> None:
    import onnx

    kept = {p.key: p.value for p in model_proto.metadata_props}
    kept.update(metadata)
    del model_proto.metadata_props[:]
    for key, value in kept.items():
        model_proto.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))


def name_nodes_by_module(model_proto) -> None:
    """Rename nodes after the PyTorch module they come from: node_MatMul_36 -> /encoder/layers.0/self_attn/q_proj/MatMul.

    The exporter records each node's module path in its metadata ("name_scopes");
    readable names make the graph explorable in Netron and let us count ops per layer.
    """
    seen: Counter[str] = Counter()
    for node in model_proto.graph.node:
        scopes = next((p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"), None)
        path = ""
        if scopes:
            modules = [s for s in ast.literal_eval(scopes)[:-1] if s]  # the last entry is the aten op itself
            path = modules[-1].replace(".", "/") if modules else ""
            path = path.replace("layers/", "layers.").replace("cross_kv/", "cross_kv.")
        base = f"/{path}/{node.op_type}" if path else f"/{node.op_type}"
        node.name = base if not seen[base] else f"{base}_{seen[base]}"
        seen[base] += 1


def weight_bytes(model_proto) -> int:
    """Bytes of every tensor the graph stores (subgraphs' too): what decides one file or two."""
    from onnx.external_data_helper import _get_all_tensors

    return sum(tensor.ByteSize() for tensor in _get_all_tensors(model_proto))


def save_onnx(model_proto, path: Path) -> None:
    """Check the graph and write it: never a half-written .onnx, nor one beside the wrong weights.

    Up to the external-data threshold (onnx_files.external_data_threshold), one file, written
    under a temporary name and renamed. Above it the weights go to a side file (see
    onnx_files): both are written in a private folder next to `path`, checked from disk
    (the checker cannot hold more than 2 GiB in memory), then moved in by `replace_onnx`.
    The proto's tensors are moved out to the side file as it is written.
    """
    import onnx

    path = Path(path)
    if weight_bytes(model_proto) <= external_data_threshold():
        onnx.checker.check_model(model_proto)
        old_sides = data_files(path)  # a previous save of this file may have had a side file
        with atomic_file(path) as tmp:
            onnx.save(model_proto, str(tmp))
        for side in old_sides:
            side.unlink(missing_ok=True)
        return
    with scratch_dir(path.parent, path.name) as folder:
        written = folder / path.name
        onnx.save_model(model_proto, str(written), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=f"{path.name}.{secrets.token_hex(4)}.data", size_threshold=1024)  # fmt: skip
        onnx.checker.check_model(str(written))
        mode = written.stat().st_mode & 0o777  # the .onnx has the usual rights; onnx makes side files 0600
        for side in data_files(written):
            side.chmod(mode)
        replace_onnx(written, path)


@contextlib.contextmanager
def _quiet_exporter():
    """Hide the exporter's chatter that says nothing about our model.

    It prints progress lines to stdout, warns that torchvision (which we never use) is
    missing, that a PyTorch-internal API is deprecated, and that it merged the "batch"
    axes of several inputs into one name. If the export fails, the chatter is shown.
    """
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated", category=FutureWarning)
        warnings.filterwarnings("ignore", message=r".*The axis name: .* will not be used", category=UserWarning)
        try:
            yield
        except Exception:
            sys.stderr.write(buffer.getvalue())
            raise


def _export(module, args, input_names, output_names, dynamic_shapes):
    import torch

    with torch.no_grad(), _quiet_exporter():
        program = torch.onnx.export(
            module, args, dynamo=True, external_data=False, verbose=False,
            input_names=input_names, output_names=output_names, dynamic_shapes=dynamic_shapes,
        )  # fmt: skip
    return program.model_proto


def _decoder_example(config):
    """The `batch` axis, example inputs of a decoder step and the axes that stay symbolic.

    Example inputs only fix rank and dtype; the axes named here stay symbolic. Each input
    must be a distinct tensor: the tracer treats one tensor passed twice as one input.
    """
    import torch

    n_layer, n_head = config.decoder_layers, config.decoder_attention_heads
    head_dim, n_audio = config.d_model // n_head, config.max_source_positions
    batch = torch.export.Dim("batch", min=1, max=64)
    n_new = torch.export.Dim("n_new", min=1, max=config.max_target_positions)
    n_past = torch.export.Dim("n_past", min=0, max=config.max_target_positions)
    tokens = torch.tensor([[50258, 50259, 50359], [50258, 50259, 50359]])

    def per_layer(*shape):
        return [torch.randn(*shape) for _ in range(n_layer)]

    caches = (per_layer(2, n_head, 2, head_dim), per_layer(2, n_head, 2, head_dim),
              per_layer(2, n_head, head_dim, n_audio), per_layer(2, n_head, n_audio, head_dim))  # fmt: skip
    self_axes, cross_axes = {0: batch, 2: n_past}, {0: batch}
    axes = {"tokens": {0: batch, 1: n_new}, "self_k": [self_axes] * n_layer, "self_v": [self_axes] * n_layer,
            "cross_k_t": [cross_axes] * n_layer, "cross_v": [cross_axes] * n_layer}  # fmt: skip
    return batch, (tokens, *caches), axes


def export_fp32(model, processor, source, pair: ExportedPair, log=print) -> dict[str, float]:
    """Export encoder and decoder of `model` (float32, eager attention) to `pair`; returns seconds per file."""
    import torch

    from .modules import DecoderStep, EncoderWithCrossKV

    metadata = whisper_metadata(model, processor, source, "fp32")
    config = model.config
    n_layer = config.decoder_layers
    encoder, decoder = EncoderWithCrossKV(model).eval(), DecoderStep(model).eval()
    batch, decoder_args, decoder_axes = _decoder_example(config)
    mel = torch.randn(2, config.num_mel_bins, 2 * config.max_source_positions)
    jobs = [
        (pair.encoder, encoder, (mel,), ENCODER_INPUTS, ENCODER_OUTPUTS, {"mel": {0: batch}}),
        (pair.decoder, decoder, decoder_args, decoder_input_names(n_layer), decoder_output_names(n_layer), decoder_axes),
    ]  # fmt: skip
    seconds = {}
    for path, module, args, inputs, outputs, dynamic in jobs:
        log(f"  exporting {path.name} with torch.onnx (dynamo) ...")
        start = time.perf_counter()
        try:
            proto = _export(module, args, inputs, outputs, dynamic)
        except Exception as exc:
            raise LabError(f"torch.onnx.export failed for {path.name}: {type(exc).__name__}: {str(exc)[:300]}") from exc
        name_nodes_by_module(proto)
        set_metadata(proto, metadata)
        proto.doc_string = f"{source.name} {'encoder' if module is encoder else 'decoder'} (whisper-onnx-lab)"
        save_onnx(proto, path)
        seconds[path.name] = time.perf_counter() - start
    return seconds


def export_attention_decoder(model, processor, source, path: Path, log=print) -> float:
    """Export the decoder variant that also outputs its alignment heads' attention (modules.py); returns seconds.

    Same inputs and outputs as the decoder, plus `alignment_qk`; its metadata names the
    heads, so the runtime knows which rows it reads (transcribe/timing.py).
    """
    from .modules import DecoderStepWithAlignment, alignment_heads_of

    n_layer = model.config.decoder_layers
    heads = alignment_heads_of(model)
    metadata = whisper_metadata(model, processor, source, "fp32")
    metadata.update(variant="attention", alignment_heads=json.dumps(heads))
    _, args, dynamic = _decoder_example(model.config)
    log(f"  exporting {path.name} (the decoder + its alignment heads' attention) with torch.onnx (dynamo) ...")
    start = time.perf_counter()
    module = DecoderStepWithAlignment(model, heads).eval()
    try:
        proto = _export(module, args, decoder_input_names(n_layer),
                        attention_decoder_output_names(n_layer), dynamic)  # fmt: skip
    except Exception as exc:
        raise LabError(f"torch.onnx.export failed for {path.name}: {type(exc).__name__}: {str(exc)[:300]}") from exc
    name_nodes_by_module(proto)
    set_metadata(proto, metadata)
    proto.doc_string = f"{source.name} decoder with alignment-head attention (whisper-onnx-lab)"
    save_onnx(proto, path)
    return time.perf_counter() - start
