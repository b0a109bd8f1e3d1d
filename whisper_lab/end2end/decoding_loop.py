"""The decoding loop of one window as an ONNX `Loop`: its body is the exported one-step decoder.

What `transcribe/decoders.py: sample_or_greedy` does in Python, one iteration per token:

    carried from step to step   the newest token(s), the 6 + 6 self-attention caches, the
                                running sum of log-probabilities, the no-speech probability,
                                and what the timestamp rules remember (was the last token a
                                timestamp? the one before? the last timestamp's value)
    step k                      decoder(tokens, caches, cross K/V)     -> logits, grown caches
                                the rules of logit_rules.py             -> allowed logits
                                ArgMax, or a sample at `temperature`    -> the next token
    stops                       at <|endoftext|>, or after 224 steps (half of the 448-token
                                context; fewer when a long previous-text prompt fills it)

The first iteration feeds the whole prompt, the others one token; the decoder
reads its position from the cache length, so the position travels with the
caches. The rules that never look at the logits (non-speech symbols, no blank
first) are two constant masks of 0 / -inf, one for the first step and one for
the rest; the timestamp rules look at the tokens so far and, for "prefer a
timestamp", at the probabilities, so they are comparisons against the
vocabulary's ids, computed each step.

Sampling uses the Gumbel-max trick: argmax(logits / T + g), g = -log(-log(u)) with
u uniform, draws a token with probability softmax(logits / T), in standard ops
and without a cumulative sum over the vocabulary. The uniform numbers come from
a small integer hash of (seed, step, token id), not from RandomUniformLike: the
same window, seed and temperature give the same text in every runtime, as 03's
seeded generator does.

The body refers to the decoder's weights and to the encoder's cross K/V by
name from the main graph (ONNX "outer scope" values): they are stored once and
computed once per window, not once per step.
"""

from __future__ import annotations

import numpy as np

from .nodes import Nodes

STEP_SCOPE = "step"  # names inside the Loop body: step.tokens, /step/next_token, ...


def suppression_masks(rules, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(first step, later steps): 0 where a token may come next, -inf where the rules forbid it.

    `rules(logits, generated)` applies the rules that do not depend on the logits (non-speech
    symbols, no blank first). We ask it twice, with two different logits, to be sure of that.
    """
    masks = []
    for generated in ([], [0]):
        found = []
        for seed in (0, 1):
            logits = np.random.default_rng(seed).normal(size=vocab_size).astype(np.float32)
            rules(logits, generated)
            found.append(np.where(np.isneginf(logits), -np.inf, 0.0).astype(np.float32))
        if not np.array_equal(found[0], found[1]):
            raise ValueError("these suppression rules depend on the logits; a constant mask cannot hold them")
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


def timestamp_rule_nodes(b: Nodes, g: Nodes, logits: str, state: dict[str, str], ids, vocab: int,
                         timestamps: str) -> str:
    """`logit_rules.timestamp_rules` and `prefer_timestamp` as nodes; without timestamps, none may come.

    state: "last_ts", "penultimate_ts" (bool scalars) and "last_stamp" (int64 scalar, the last
    timestamp's index from <|0.00|>, -1 before the first). Returns the allowed logits (1, vocab).
    """
    begin = ids.timestamp_begin
    token_id = np.arange(vocab, dtype=np.int64)
    is_ts = g.const("is_timestamp", token_id >= begin)
    below_eot = g.const("text_token", token_id < ids.eot)
    too_late_or_text = g.const("not_an_initial_timestamp",
                               (token_id < begin) | (token_id > begin + ids.max_initial_timestamp_index))
    no_ts_token = g.const("is_no_timestamps", token_id == ids.no_timestamps)

    pair_closed = b.op("And", state["last_ts"], state["penultimate_ts"], label="pair_closed")
    segment_ended = b.op("And", state["last_ts"], b.op("Not", state["penultimate_ts"]), label="segment_ended")
    # no going back in time; a segment's end is later than its start
    one = g.const("one_i64", np.int64(1))
    floor = b.op("Add", b.op("Where", segment_ended, state["last_stamp"], b.op("Add", state["last_stamp"], one)),
                 g.const("timestamp_begin", np.int64(begin)), label="earliest_timestamp")
    earlier = b.op("And", is_ts, b.op("Less", g.const("token_id", token_id), floor), label="back_in_time")
    first_stamp = b.op("Less", state["last_stamp"], g.const("zero_i64", np.int64(0)), label="no_timestamp_yet")
    forbid = no_ts_token
    for condition, tokens, label in ((pair_closed, is_ts, "text_must_follow"),
                                     (segment_ended, below_eot, "timestamp_or_end_must_follow"),
                                     (first_stamp, too_late_or_text, "start_with_a_timestamp")):
        forbid = b.op("Or", forbid, b.op("And", condition, tokens), label=label)
    forbid = b.op("Or", forbid, earlier, label="timestamp_rules")
    # without timestamps: none of them (And/Or, as onnxruntime has no Where for booleans)
    forbid = b.op("Or", b.op("And", timestamps, forbid), b.op("And", b.op("Not", timestamps), is_ts), label="forbidden")
    minus_inf = g.const("minus_inf", np.float32(-np.inf))
    ruled = b.op("Where", forbid, minus_inf, logits, label="ruled_logits")

    # prefer_timestamp: all timestamps together likelier than the likeliest text token -> a timestamp
    p = b.op("Softmax", ruled, axis=1, label="probabilities")
    zero = g.const("zero_f32", np.float32(0.0))
    ts_mass = b.op("ReduceSum", b.op("Where", is_ts, p, zero), keepdims=0, label="timestamp_mass")
    text_best = b.op("ReduceMax", b.op("Where", is_ts, zero, p), keepdims=0, label="best_text")
    prefer = b.op("And", timestamps, b.op("Greater", ts_mass, text_best), label="prefer_timestamp")
    return b.op("Where", b.op("And", prefer, b.op("Not", is_ts)), minus_inf, ruled, label="allowed_logits")


PRIME = 2_147_483_629  # below 2**31: a square still fits in int64


def uniform_noise(b: Nodes, g: Nodes, step: str, seed: str, vocab: int) -> str:
    """(vocab,) float32 numbers in (0, 1), a hash of (seed, step, token id): two rounds of x -> x*x + c (mod p),
    which mixes far better than one multiplication, then one multiplication to spread the result."""
    x = b.op("Add", g.const("token_id_x_7919", (np.arange(vocab, dtype=np.int64) * 7919) % PRIME),
             b.op("Add", b.op("Mul", step, g.const("m_step", np.int64(104_729))),
                  b.op("Mul", seed, g.const("m_seed", np.int64(1_299_709)))), label="hash_start")
    modulus = g.const("prime", np.int64(PRIME))
    x = b.op("Mod", x, modulus)
    for c in (1_013_904_223, 1_664_525):
        x = b.op("Mod", b.op("Add", b.op("Mul", x, x), g.const("c", np.int64(c))), modulus)
    x = b.op("Mod", b.op("Mul", x, g.const("m", np.int64(48_271))), modulus)
    half = g.const("half", np.float32(0.5))
    return b.op("Div", b.op("Add", b.op("Cast", x, to=1), half), g.const("prime_f", np.float32(PRIME)), label="uniform")


def loop_nodes(g: Nodes, decoder_graph, spec, ids, vocab: int, inputs: dict[str, str], cross_kv: dict[str, str],
               masks, no_speech: int, outputs: dict[str, str]) -> str:
    """Add the Loop to `g` (the main graph). Its body holds the decoder's nodes; its weights go to `g`.

    decoder_graph: the exported decoder's GraphProto; ids: the rules' `TokenIds`; inputs: main-graph
    names of "prompt" (int64 (1, n)), "sot_position" (where <|startoftranscript|> is in it), "max_steps",
    "timestamps" (bool), "temperature" (float) and "seed" (int64); cross_kv: decoder input name -> main-graph value;
    outputs: names for "sum_logprob", "no_speech_prob" and "tokens" (every generated token,
    <|endoftext|> included). Returns the name of the tokens output.
    """
    from onnx import TensorProto, helper

    n_layer, n_head, head_dim = spec.n_layer, spec.n_head, spec.d_model // spec.n_head
    scope = STEP_SCOPE
    cache_names = [f"{kind}_{i}" for kind in ("self_k", "self_v") for i in range(n_layer)]
    carried = ["sum_logprob", "no_speech", "last_ts", "penultimate_ts", "last_stamp"]
    body_in = {name: f"{scope}.{name}_in" for name in ["index", "go_on", "tokens", *cache_names, *carried]}

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
    state = {k: body_in[k] for k in ("last_ts", "penultimate_ts", "last_stamp")}
    allowed = timestamp_rule_nodes(b, g, b.op("Add", last, mask, label="suppressed"), state, ids, vocab,
                                   inputs["timestamps"])  # fmt: skip

    # Greedy at temperature 0; else a sample from softmax(allowed / T) by the Gumbel-max trick.
    temperature = inputs["temperature"]
    u = uniform_noise(b, g, body_in["index"], inputs["seed"], vocab)
    gumbel = b.op("Neg", b.op("Log", b.op("Neg", b.op("Log", u))), label="gumbel_noise")
    sharpened = b.op("Div", allowed, b.op("Max", temperature, g.const("tiny_t", np.float32(1e-6))))
    sampled = b.op("Greater", temperature, g.const("zero_t", np.float32(0.0)), label="sampling")
    scores = b.op("Where", sampled, b.op("Add", sharpened, gumbel), allowed, label="scores")
    next_token = b.op("ArgMax", scores, axis=1, keepdims=1, label="next_token")  # (1, 1): the next step's input
    scalar = g.const("scalar_shape", np.zeros(0, dtype=np.int64))
    token = b.op("Reshape", next_token, scalar, label="token")
    go_on = b.op("Not", b.op("Equal", token, g.const("eot", np.int64(spec.eot))), label="not_end_of_text")
    # avg_logprob as openai/whisper: log-probabilities of the allowed logits (not divided by T),
    # <|endoftext|> included
    logprob = b.op("GatherElements", b.op("LogSoftmax", allowed, axis=1), next_token, axis=1, label="logprob")
    sum_logprob = b.op("Add", body_in["sum_logprob"], b.op("Reshape", logprob, scalar),
                       label="sum_logprob")
    # no_speech_prob: probability of <|nospeech|> at the <|startoftranscript|> position of the first step
    # (later steps feed one token: position 0 there, and the value is not used)
    sot = b.op("Where", first_step, inputs["sot_position"], g.const("zero_position", np.int64(0)), label="sot")
    at_sot = b.op("Softmax", b.op("Gather", logits, sot, axis=1), axis=1)
    p_no_speech = b.op("Reshape", b.op("Gather", at_sot, g.const("no_speech_id", np.int64(no_speech)), axis=1),
                       scalar, label="p_no_speech")
    no_speech_prob = b.op("Where", first_step, p_no_speech, body_in["no_speech"], label="no_speech_prob")
    # What the timestamp rules remember for the next step
    token_is_ts = b.op("GreaterOrEqual", token, g.const("timestamp_begin", np.int64(ids.timestamp_begin)),
                       label="token_is_timestamp")
    penultimate = b.op("Or", first_step, body_in["last_ts"], label="penultimate_ts")  # fewer than 2: as if it were
    last_stamp = b.op("Where", token_is_ts, b.op("Sub", token, g.const("timestamp_begin", np.int64(ids.timestamp_begin))),
                      body_in["last_stamp"], label="last_stamp")

    f32, i64, flag = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
    cache_type = [1, n_head, None, head_dim]
    inputs_ = [helper.make_tensor_value_info(body_in["index"], i64, []),
               helper.make_tensor_value_info(body_in["go_on"], flag, []),
               helper.make_tensor_value_info(body_in["tokens"], i64, [1, None])]
    inputs_ += [helper.make_tensor_value_info(body_in[c], f32, cache_type) for c in cache_names]
    inputs_ += [helper.make_tensor_value_info(body_in["sum_logprob"], f32, []),
                helper.make_tensor_value_info(body_in["no_speech"], f32, []),
                helper.make_tensor_value_info(body_in["last_ts"], flag, []),
                helper.make_tensor_value_info(body_in["penultimate_ts"], flag, []),
                helper.make_tensor_value_info(body_in["last_stamp"], i64, [])]
    body_outputs = [helper.make_tensor_value_info(go_on, flag, []), helper.make_tensor_value_info(next_token, i64, [1, 1])]
    body_outputs += [helper.make_tensor_value_info(name, f32, cache_type) for name in new_caches]
    body_outputs += [helper.make_tensor_value_info(sum_logprob, f32, []),
                     helper.make_tensor_value_info(no_speech_prob, f32, []),
                     helper.make_tensor_value_info(token_is_ts, flag, []),
                     helper.make_tensor_value_info(penultimate, flag, []),
                     helper.make_tensor_value_info(last_stamp, i64, []),
                     helper.make_tensor_value_info(token, i64, [])]  # scan output: all tokens, one per step
    body = helper.make_graph(list(decoder.node) + b.nodes, "one_decoder_step", inputs_, body_outputs,
                             value_info=list(decoder.value_info))

    empty = g.const("empty_cache", np.zeros((1, n_head, 0, head_dim), dtype=np.float32))
    zero = g.const("zero", np.float32(0.0))
    g.op("Loop", inputs["max_steps"], g.const("true", np.array(True)), inputs["prompt"],
         *[empty] * len(cache_names), zero, zero, g.const("false", np.array(False)), g.const("true", np.array(True)),
         g.const("no_stamp", np.int64(-1)),
         outputs=[f"{g.scope}.last_token", *[f"{g.scope}.final_{c}" for c in cache_names],
                  outputs["sum_logprob"], outputs["no_speech_prob"], f"{g.scope}.final_last_ts",
                  f"{g.scope}.final_penultimate_ts", f"{g.scope}.final_last_stamp", outputs["tokens"]],
         body=body, label="decoding_loop")
    return outputs["tokens"]
