"""One ONNX file from the exported pair: audio in, tokens and text out.

    audio [n]  ->  front end (log-mel, front_end.py)  ->  the exported encoder's nodes
               ->  cross K/V, one tensor per decoder layer
               ->  Loop (greedy_loop.py): the exported decoder's nodes, once per token
               ->  tokens, text (byte_table.py), no_speech_prob, avg_logprob

The encoder's and decoder's nodes are copied from the files 03 wrote, at the
precision they were written in: the int8 file is built from the int8 pair, so
it is quantized exactly as 03 quantizes, and the front end's two MatMuls stay
float32. Every node is in the default ONNX domain, so any ONNX runtime (the
browser's onnxruntime-web included) can run the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..export.onnx_export import set_metadata
from ..files import file_sha256
from ..onnx_files import ExportedPair
from ..transcribe.logit_rules import apply_rules
from .byte_table import padded_table, text_nodes, token_bytes
from .front_end import ENCODER_INPUT_PADDING, log_mel_nodes
from .greedy_loop import loop_nodes, rename_graph, suppression_masks
from .nodes import IR_VERSION, OPSET, Nodes

# Bump when the graph this module builds changes, so older files are rebuilt.
END2END_VERSION = "2"  # 2: the loop stops after 224 steps as the two-graph decoder does (was 220)
INPUTS, OUTPUTS = ("audio", "language", "task"), ("tokens", "text", "no_speech_prob", "avg_logprob")
MAX_SAMPLES = 480_000  # 30 s at 16 kHz: longer audio is cut to its first 30 s


@dataclass(frozen=True)
class Origin:
    """What a file was built from: when any of it changes, the file is out of date."""

    encoder_sha256: str
    decoder_sha256: str
    padding: str

    @classmethod
    def of(cls, pair: ExportedPair, padding: str = ENCODER_INPUT_PADDING) -> Origin:
        return cls(file_sha256(pair.encoder), file_sha256(pair.decoder), padding)

    def metadata(self) -> dict[str, str]:
        return {"end2end_version": END2END_VERSION, "built_from_encoder_sha256": self.encoder_sha256,
                "built_from_decoder_sha256": self.decoder_sha256, "front_end_padding": self.padding}  # fmt: skip


def no_speech_token(tokenizer) -> int:
    """<|nospeech|> (called <|nocaptions|> in older tokenizer files): whose probability says 'silence'."""
    for name in ("<|nospeech|>", "<|nocaptions|>"):
        token_id = tokenizer.token_to_id(name)
        if token_id is not None:
            return token_id
    raise ValueError("the tokenizer has no <|nospeech|> token")


def build_end2end(whisper, pair: ExportedPair, origin: Origin):
    """The end-to-end ModelProto from an `OnnxWhisper` over `pair` (its spec, rules and tokenizer)."""
    import onnx
    from onnx import TensorProto, helper

    spec = whisper.spec
    encoder_model, decoder_model = onnx.load(str(pair.encoder)), onnx.load(str(pair.decoder))
    g = Nodes("front_end")
    mel = log_mel_nodes(g, "audio", origin.padding, spec.n_mels)

    # The encoder, fed by the front end; its stacked cross K/V split per decoder layer.
    encoder = rename_graph(encoder_model.graph, "encoder.", "", {"mel": mel})
    g.nodes.extend(encoder.node)
    g.initializers.extend(encoder.initializer)
    value_info = list(encoder.value_info)
    g.scope = "cross_kv"
    cross_kv = {}
    for kind in ("cross_k", "cross_v"):
        for i in range(spec.n_layer):
            cross_kv[f"{kind}_{i}"] = g.op("Gather", f"encoder.{kind}", g.const("layer", np.int64(i)), axis=0,
                                           outputs=[f"{kind}_{i}"], label=f"{kind}_{i}")

    # The prompt: <|startoftranscript|> <|language|> <|task|> <|notimestamps|>; language and task are inputs.
    # English-only (.en) models: <|startoftranscript|> <|notimestamps|>, and the two inputs are not used.
    g.scope = "prompt"
    as_1d = g.const("one_element", np.array([1], dtype=np.int64))
    language_task = [g.op("Reshape", "language", as_1d), g.op("Reshape", "task", as_1d)] if spec.multilingual else []
    prompt = g.op("Concat", g.const("sot", np.array([spec.sot])), *language_task,
                  g.const("no_timestamps", np.array([spec.no_timestamps])), axis=0)
    prompt = g.op("Unsqueeze", prompt, g.const("batch_axis", np.array([0], dtype=np.int64)), label="prompt")

    # The decoding loop.
    g.scope = "decoding"
    vocab = int(decoder_model.graph.output[0].type.tensor_type.shape.dim[2].dim_value)  # logits (batch, n, vocab)
    masks = suppression_masks(lambda logits, generated: apply_rules(logits, generated, whisper.token_ids, False), vocab)
    generated = loop_nodes(g, decoder_model.graph, spec, prompt, cross_kv, masks, no_speech_token(whisper.tokenizer),
                           {"sum_logprob": "decoding.sum_logprob", "no_speech_prob": "no_speech_prob",
                            "tokens": "decoding.generated"})  # fmt: skip

    # Outputs: text tokens (no special tokens), their bytes, the average log-probability.
    g.scope = "output"
    eot = g.const("eot", np.int64(spec.eot))
    tokens = g.op("Compress", generated, g.op("Less", generated, eot), axis=0, outputs=["tokens"], label="text_tokens")
    not_eot = g.op("Cast", g.op("Not", g.op("Equal", generated, eot)), to=TensorProto.FLOAT)
    count = g.op("ReduceSum", not_eot, keepdims=0, label="n_tokens")
    g.op("Div", "decoding.sum_logprob", g.op("Add", count, g.const("one", np.float32(1.0))),
         outputs=["avg_logprob"], label="avg_logprob")  # openai/whisper: sum / (tokens + 1)
    table, lengths = padded_table(token_bytes(whisper.tokenizer, spec.eot))
    g.scope = "text"
    text_nodes(g, tokens, table, lengths, "text")

    english = spec.lang_to_id["<|en|>"] if spec.multilingual else whisper.tokenizer.token_to_id("<|en|>")
    defaults = [helper.make_tensor("language", TensorProto.INT64, [], [english]),
                helper.make_tensor("task", TensorProto.INT64, [], [spec.transcribe])]
    graph = helper.make_graph(
        g.nodes, f"{spec.precision} whisper end to end",
        inputs=[helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["n_samples"]),
                helper.make_tensor_value_info("language", TensorProto.INT64, []),
                helper.make_tensor_value_info("task", TensorProto.INT64, [])],
        outputs=[helper.make_tensor_value_info("tokens", TensorProto.INT64, ["n_tokens"]),
                 helper.make_tensor_value_info("text", TensorProto.UINT8, ["n_bytes"]),
                 helper.make_tensor_value_info("no_speech_prob", TensorProto.FLOAT, []),
                 helper.make_tensor_value_info("avg_logprob", TensorProto.FLOAT, [])],
        initializer=defaults + g.initializers, value_info=value_info)  # fmt: skip
    # One opset for the whole file: ours, or the pair's if 03 moves to a newer one.
    opset = max([OPSET] + [o.version for m in (encoder_model, decoder_model) for o in m.opset_import if o.domain in ("", "ai.onnx")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=IR_VERSION,
                              producer_name="whisper-onnx-lab")
    # The decoder's metadata (token ids, languages, precision, source) and what this file was built from.
    model.metadata_props.extend(decoder_model.metadata_props)
    set_metadata(model, {**origin.metadata(), "interface": json.dumps(INTERFACE)})
    model.doc_string = (f"{spec.precision} whisper end to end (whisper-onnx-lab): 16 kHz audio in, text out, "
                        "standard ONNX ops only")
    return model


INTERFACE = {
    "audio": "float32 [n_samples], 16 kHz mono, 1 to 480000 samples (longer: the first 30 s)",
    "language": "int64 scalar, the language token id (default <|en|>; English-only models ignore it)",
    "task": "int64 scalar, the task token id (default <|transcribe|>; English-only models ignore it)",
    "tokens": "int64 [n], the text tokens without special tokens",
    "text": "uint8 [m], the transcript as UTF-8 bytes",
    "no_speech_prob": "float32 scalar, probability of <|nospeech|> at the first step",
    "avg_logprob": "float32 scalar, mean log-probability of the tokens (end of text included)",
}
