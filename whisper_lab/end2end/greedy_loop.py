"""The greedy decoding loop as an ONNX `Loop`: its body is the exported one-step decoder.

What `OnnxWhisper.decode_window` does in Python, one iteration per token:

    carried from step to step   the newest token(s), the 6 + 6 self-attention caches,
                                the running sum of log-probabilities, the no-speech probability
    step k                      decoder(tokens, caches, cross K/V)     -> logits, grown caches
                                add the suppression mask                -> allowed logits
                                ArgMax                                  -> the next token
    stops                       at <|endoftext|>, or after 224 steps (half of the 448-token context)

The first iteration feeds the whole prompt (4 tokens), the others one token;
the decoder reads its position from the cache length, so the position travels
with the caches. The suppression rules are the two-graph decoder's own
(`transcribe/logit_rules.py`): without timestamps they do not depend on the logits,
only on whether a token was generated yet, so they become two constant masks of
0 / -inf, one for the first step and one for the rest.

The body refers to the decoder's weights and to the encoder's cross K/V by
name from the main graph (ONNX "outer scope" values): they are stored once and
computed once per clip, not once per step.
"""

from __future__ import annotations

import numpy as np

from .nodes import Nodes

STEP_SCOPE = "step"  # names inside the Loop body: step.tokens, /step/greedy, ...


def suppression_masks(allowed, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(first step, later steps): 0 where a token may come next, -inf where the rules forbid it.

    `allowed(logits, generated)` is the two-graph decoder's rule function. We ask it
    twice, with two different logits, to be sure the rules do not look at the logits
    (the timestamp rules do; a constant mask could not express them).
    """
    masks = []
    for generated in ([], [0]):
        found = []
        for seed in (0, 1):
            logits = np.random.default_rng(seed).normal(size=vocab_size).astype(np.float32)
            found.append(np.where(np.isneginf(allowed(logits, generated)), -np.inf, 0.0).astype(np.float32))
        if not np.array_equal(found[0], found[1]):
            raise ValueError("the decoder's suppression rules depend on the logits; a constant mask cannot hold them")
        masks.append(found[0])
    return masks[0], masks[1]


def rename_graph(graph, value_prefix: str, node_prefix: str, renames: dict[str, str]):
    """A copy of `graph` with every value name prefixed (or renamed by `renames`), node names prefixed.

    The encoder's and decoder's values have generated names (val_12, ...) that clash
    once both live in one file; a prefix per graph keeps them apart.
    """
    import onnx

    renamed = onnx.GraphProto()
    renamed.CopyFrom(graph)

    def new(name: str) -> str:
        return renames.get(name, value_prefix + name) if name else name

    for node in renamed.node:
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            raise ValueError(f"{node.name}: nested graphs are not expected in the exported files")
        node.input[:] = [new(x) for x in node.input]
        node.output[:] = [new(x) for x in node.output]
        node.name = node_prefix + node.name
    for value in [*renamed.input, *renamed.output, *renamed.value_info, *renamed.initializer]:
        value.name = new(value.name)
    return renamed


def loop_nodes(g: Nodes, decoder_graph, spec, prompt: str, cross_kv: dict[str, str], masks, no_speech: int,
               outputs: dict[str, str]) -> str:
    """Add the Loop to `g` (the main graph). Its body holds the decoder's nodes; its weights go to `g`.

    decoder_graph: the exported decoder's GraphProto; cross_kv: decoder input name -> main-graph
    value; outputs: names for "sum_logprob", "no_speech_prob" and "tokens" (every generated token,
    <|endoftext|> included). Returns the name of the tokens output.
    """
    from onnx import TensorProto, helper

    n_layer, n_head, head_dim = spec.n_layer, spec.n_head, spec.d_model // spec.n_head
    scope = STEP_SCOPE
    cache_names = [f"{kind}_{i}" for kind in ("self_k", "self_v") for i in range(n_layer)]
    body_in = {name: f"{scope}.{name}_in" for name in ["index", "go_on", "tokens", *cache_names, "sum_logprob", "no_speech"]}

    renames = {"tokens": body_in["tokens"], **{c: body_in[c] for c in cache_names}, **cross_kv}
    decoder = rename_graph(decoder_graph, "decoder.", "/decoder", renames)
    g.initializers.extend(decoder.initializer)  # the weights live once, in the main graph
    logits = "decoder.logits"
    new_caches = [f"decoder.new_{c}" for c in cache_names]

    # The rules of one step, in the body's own node list.
    b = Nodes(scope)
    first_step = b.op("Equal", body_in["index"], g.const("step_0", np.int64(0)), label="first_step")
    mask = b.op("Where", first_step, g.const("mask_first_step", masks[0]), g.const("mask_later_steps", masks[1]),
                label="suppression_mask")
    last = b.op("Gather", logits, g.const("last", np.int64(-1)), axis=1, label="last_position")  # (1, vocab)
    allowed = b.op("Add", last, mask, label="allowed_logits")
    next_token = b.op("ArgMax", allowed, axis=1, keepdims=1, label="greedy")  # (1, 1): the next step's input
    scalar = g.const("scalar_shape", np.zeros(0, dtype=np.int64))
    token = b.op("Reshape", next_token, scalar, label="token")
    go_on = b.op("Not", b.op("Equal", token, g.const("eot", np.int64(spec.eot))), label="not_end_of_text")
    # avg_logprob as openai/whisper: log-probabilities after suppression, <|endoftext|> included
    logprob = b.op("GatherElements", b.op("LogSoftmax", allowed, axis=1), next_token, axis=1, label="logprob")
    sum_logprob = b.op("Add", body_in["sum_logprob"], b.op("Reshape", logprob, scalar),
                       label="sum_logprob")
    # no_speech_prob: probability of <|nospeech|> at the <|startoftranscript|> position of the first step
    at_sot = b.op("Softmax", b.op("Gather", logits, g.const("sot_position", np.int64(0)), axis=1), axis=1)
    p_no_speech = b.op("Reshape", b.op("Gather", at_sot, g.const("no_speech_id", np.int64(no_speech)), axis=1),
                       scalar, label="p_no_speech")
    no_speech_prob = b.op("Where", first_step, p_no_speech, body_in["no_speech"], label="no_speech_prob")

    f32, i64, flag = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
    cache_type = [1, n_head, None, head_dim]
    inputs = [helper.make_tensor_value_info(body_in["index"], i64, []),
              helper.make_tensor_value_info(body_in["go_on"], flag, []),
              helper.make_tensor_value_info(body_in["tokens"], i64, [1, None])]
    inputs += [helper.make_tensor_value_info(body_in[c], f32, cache_type) for c in cache_names]
    inputs += [helper.make_tensor_value_info(body_in["sum_logprob"], f32, []),
               helper.make_tensor_value_info(body_in["no_speech"], f32, [])]
    body_outputs = [helper.make_tensor_value_info(go_on, flag, []), helper.make_tensor_value_info(next_token, i64, [1, 1])]
    body_outputs += [helper.make_tensor_value_info(name, f32, cache_type) for name in new_caches]
    body_outputs += [helper.make_tensor_value_info(sum_logprob, f32, []),
                     helper.make_tensor_value_info(no_speech_prob, f32, []),
                     helper.make_tensor_value_info(token, i64, [])]  # scan output: all tokens, one per step
    body = helper.make_graph(list(decoder.node) + b.nodes, "one_decoder_step", inputs, body_outputs,
                             value_info=list(decoder.value_info))

    max_steps = min(spec.n_text_ctx // 2, spec.n_text_ctx - 4)  # as decode_window: half the context
    empty = g.const("empty_cache", np.zeros((1, n_head, 0, head_dim), dtype=np.float32))
    zero = g.const("zero", np.float32(0.0))
    g.op("Loop", g.const("max_steps", np.int64(max_steps)), g.const("true", np.array(True)), prompt,
         *[empty] * len(cache_names), zero, zero,
         outputs=[f"{g.scope}.last_token", *[f"{g.scope}.final_{c}" for c in cache_names],
                  outputs["sum_logprob"], outputs["no_speech_prob"], outputs["tokens"]],
         body=body, label="greedy_loop")
    return outputs["tokens"]
