"""One ONNX file from the exported pair: audio in, tokens and text out.

    audio [n]  ->  front end (log-mel, front_end.py)  ->  the exported encoder's nodes
               ->  cross K/V, one tensor per decoder layer
    prompt, language, task, timestamps  ->  the decoder's prompt
               ->  Loop (decoding_loop.py): the exported decoder's nodes, once per token,
                   greedy or sampled at `temperature`
               ->  tokens, text and text_end (byte_table.py), no_speech_prob, avg_logprob
    audio      ->  speech_seconds (speech_amount.py)

One run decodes one window of at most 30 s. The host loop around it
(end2end/host.py, web/host.js, docs/one-file-model.md) moves the window
along a recording of any length and applies Whisper's safeguards with the
numbers the graph returns.

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
from ..transcribe.logit_rules import suppress_blank_start, suppress_non_speech
from .byte_table import padded_table, text_nodes, token_bytes
from .decoding_loop import loop_nodes, rename_graph, suppression_masks
from .front_end import ENCODER_INPUT_PADDING, log_mel_nodes
from .nodes import IR_VERSION, OPSET, Nodes, i64
from .speech_amount import speech_seconds_nodes

# Bump when the graph this module builds changes, so older files are rebuilt.
# 3: one window per run with prompt, timestamps and temperature inputs, for the host loop
END2END_VERSION = "3"
INPUTS = ("audio", "language", "task", "timestamps", "prompt", "temperature", "seed")
OUTPUTS = ("tokens", "text", "text_end", "no_speech_prob", "avg_logprob", "speech_seconds")
MAX_SAMPLES = 480_000  # 30 s at 16 kHz: one window; longer audio is cut to its first 30 s


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

    # The prompt: [<|startofprev|> previous text] <|startoftranscript|> <|language|> <|task|> [<|notimestamps|>],
    # as OnnxWhisper.prompt_with_previous; English-only (.en) models have no language and task tokens.
    g.scope = "prompt"
    begin = spec.timestamp_begin
    previous = g.op("Compress", "prompt", g.op("Or", g.op("Less", "prompt", g.const("eot", np.int64(spec.eot))),
                                               g.op("GreaterOrEqual", "prompt", g.const("ts", np.int64(begin)))),
                    axis=0, label="text_and_timestamps")  # fmt: skip
    previous = g.op("Slice", previous, g.const("keep_last", i64(-(spec.n_text_ctx // 2 - 1))),
                    g.const("to_end", i64(2**62)), label="previous_text")  # at most 223 tokens: half the context
    n_previous = g.op("Shape", previous, label="n_previous")
    has_previous = g.op("Min", n_previous, g.const("one", i64(1)), label="has_previous")  # 0 or 1
    start_of_prev = g.op("Slice", g.const("sot_prev", np.array([whisper.sot_prev])), g.const("zero", i64(0)),
                         has_previous, label="start_of_prev")  # fmt: skip
    as_1d = g.const("one_element", i64(1))
    language_task = [g.op("Reshape", "language", as_1d), g.op("Reshape", "task", as_1d)] if spec.multilingual else []
    without_timestamps = g.op("Sub", g.const("one", i64(1)), g.op("Cast", g.op("Reshape", "timestamps", as_1d), to=TensorProto.INT64))
    no_timestamps = g.op("Slice", g.const("no_timestamps", np.array([spec.no_timestamps])), g.const("zero", i64(0)),
                         without_timestamps, label="no_timestamps_unless_asked")  # fmt: skip
    prompt = g.op("Concat", start_of_prev, previous, g.const("sot", np.array([spec.sot])), *language_task,
                  no_timestamps, axis=0)
    prompt_length = g.op("Squeeze", g.op("Shape", prompt), label="prompt_length")
    prompt = g.op("Unsqueeze", prompt, g.const("batch_axis", i64(0)), label="prompt")
    sot_position = g.op("Squeeze", g.op("Add", n_previous, has_previous), label="sot_position")
    # as OnnxWhisper.max_new_tokens: half the context (224), less if a long prompt leaves less room
    max_steps = g.op("Min", g.const("half_context", np.int64(spec.n_text_ctx // 2)),
                     g.op("Sub", g.const("context", np.int64(spec.n_text_ctx)), prompt_length), label="max_steps")

    # The decoding loop.
    g.scope = "decoding"
    vocab = int(decoder_model.graph.output[0].type.tensor_type.shape.dim[2].dim_value)  # logits (batch, n, vocab)
    ids = whisper.token_ids

    def constant_rules(logits, generated):
        suppress_non_speech(logits, ids)
        suppress_blank_start(logits, generated, ids)

    masks = suppression_masks(constant_rules, vocab)
    ports = {"prompt": prompt, "sot_position": sot_position, "max_steps": max_steps, "timestamps": "timestamps",
             "temperature": "temperature", "seed": "seed"}
    generated = loop_nodes(g, decoder_model.graph, spec, ids, vocab, ports, cross_kv, masks,
                           no_speech_token(whisper.tokenizer),
                           {"sum_logprob": "decoding.sum_logprob", "no_speech_prob": "no_speech_prob",
                            "tokens": "decoding.generated"})  # fmt: skip

    # Outputs: the tokens without <|endoftext|>, their bytes and where each token's bytes end,
    # the average log-probability, and how much of the window is speech.
    g.scope = "output"
    eot = g.const("eot", np.int64(spec.eot))
    tokens = g.op("Compress", generated, g.op("Not", g.op("Equal", generated, eot)), axis=0, outputs=["tokens"],
                  label="without_end_of_text")
    count = g.op("Cast", g.op("Size", tokens), to=TensorProto.FLOAT, label="n_tokens")
    g.op("Div", "decoding.sum_logprob", g.op("Add", count, g.const("one", np.float32(1.0))),
         outputs=["avg_logprob"], label="avg_logprob")  # openai/whisper: sum / (tokens + 1)
    # special tokens and timestamps write no bytes
    table, lengths = padded_table(token_bytes(whisper.tokenizer, spec.eot) + [b""] * (vocab - spec.eot))
    g.scope = "text"
    text_nodes(g, tokens, table, lengths, "text", "text_end")
    g.scope = "speech"
    speech_seconds_nodes(g, "front_end.first_30_s", "speech_seconds")

    english = spec.lang_to_id["<|en|>"] if spec.multilingual else whisper.tokenizer.token_to_id("<|en|>")
    # timestamps, prompt and temperature are fed on every run (onnxruntime-web accepts no feed for an
    # input that has a default); language, task and seed have defaults a host may leave alone.
    defaults = [helper.make_tensor("language", TensorProto.INT64, [], [english]),
                helper.make_tensor("task", TensorProto.INT64, [], [spec.transcribe])] if spec.multilingual else []
    defaults.append(helper.make_tensor("seed", TensorProto.INT64, [], [0]))
    graph = helper.make_graph(
        g.nodes, f"{spec.precision} whisper end to end",
        inputs=[helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["n_samples"]),
                helper.make_tensor_value_info("timestamps", TensorProto.BOOL, []),
                helper.make_tensor_value_info("prompt", TensorProto.INT64, ["n_prompt"]),
                helper.make_tensor_value_info("temperature", TensorProto.FLOAT, []),
                *[helper.make_tensor_value_info(d.name, d.data_type, []) for d in defaults]],
        outputs=[helper.make_tensor_value_info("tokens", TensorProto.INT64, ["n_tokens"]),
                 helper.make_tensor_value_info("text", TensorProto.UINT8, ["n_bytes"]),
                 helper.make_tensor_value_info("text_end", TensorProto.INT64, ["n_tokens"]),
                 helper.make_tensor_value_info("no_speech_prob", TensorProto.FLOAT, []),
                 helper.make_tensor_value_info("avg_logprob", TensorProto.FLOAT, []),
                 helper.make_tensor_value_info("speech_seconds", TensorProto.FLOAT, [])],
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
    "audio": "float32 [n_samples], 16 kHz mono, one window of 1 to 480000 samples (longer: the first 30 s)",
    "language": "int64 scalar, the language token id (default <|en|>; English-only models have no such input)",
    "task": "int64 scalar, the task token id (default <|transcribe|>; English-only models have no such input)",
    "timestamps": "bool scalar: decode with timestamp tokens (the host loop's seeking needs them)",
    "prompt": "int64 [k], may be empty: the previous text's tokens as `tokens` gave them; the last 223 are used",
    "temperature": "float32 scalar: 0 greedy, above 0 sampled from softmax(logits / temperature)",
    "seed": "int64 scalar (default 0): of the sampling above temperature 0; the same seed, the same text",
    "tokens": "int64 [n], the generated tokens without <|endoftext|>; ids from timestamp_begin on are timestamps",
    "text": "uint8 [m], the tokens' UTF-8 bytes (timestamps write none), not stripped",
    "text_end": "int64 [n], where each token's bytes end in text",
    "no_speech_prob": "float32 scalar, probability of <|nospeech|> at the first step",
    "avg_logprob": "float32 scalar, mean log-probability of the tokens (end of text included)",
    "speech_seconds": "float32 scalar, seconds of the window louder than its noise floor (the dropped-speech check)",
}
