"""Step 9's one-file models on the real whisper-base: the graph, its interface, and tokens equal to the pair's.

The reference for every token is the lab's two-graph greedy decoder
(`OnnxWhisper.decode_window`), fed the features of the same padding mode.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from end2end_files import built_end2end

from whisper_lab.audio.loading import load_audio
from whisper_lab.audio.speech_data import JFK, english_test_set
from whisper_lab.end2end.assemble import INPUTS, OUTPUTS, no_speech_token
from whisper_lab.end2end.front_end import (
    ENCODER_INPUT_PADDING,
    front_end_model,
    numpy_features,
)
from whisper_lab.end2end.session import EndToEnd
from whisper_lab.onnx_files import onnx_pair
from whisper_lab.transcribe.logit_rules import apply_rules
from whisper_lab.transcribe.onnx_whisper import OnnxWhisper

N_CLIPS = 30  # the lab's real English test set, as 04 uses it
MAX_EXTRA_BYTES = 5_000_000


@pytest.fixture(scope="module")
def built(exported_run, tmp_path_factory):
    folder, _ = exported_run
    return built_end2end(folder, tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def clips():
    return [(u.id, load_audio(u.path)) for u in english_test_set(N_CLIPS)]


def all_nodes(graph):
    """Every node of a graph and of the graphs inside its nodes (the Loop body)."""
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            for sub in ([attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else list(attribute.graphs)):
                yield from all_nodes(sub)


def loop_of(model):
    (loop,) = [n for n in model.graph.node if n.op_type == "Loop"]
    return loop, onnx.helper.get_attribute_value(loop.attribute[0])


# --- the files ------------------------------------------------------------------------------------------


def test_script_builds_both_files_and_checks_them_on_the_sample(built):
    names = sorted(p.name for p in built.folder.iterdir() if not p.is_symlink())
    assert names == ["whisper-base_end2end.onnx", "whisper-base_end2end_int8.onnx"]  # no temporary litter
    rows = [line for line in built.stdout.splitlines() if line.startswith("| whisper-base_end2end")]
    assert len(rows) == 2 and all("same" in row for row in rows), built.stdout


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_only_standard_onnx_ops(built, precision):
    model = onnx.load(str(built.file(precision)), load_external_data=False)
    onnx.checker.check_model(model)
    ops = Counter((n.domain or "ai.onnx", n.op_type) for n in all_nodes(model.graph))
    print(f"\n{precision}: IR version {model.ir_version}, opsets {[(o.domain or 'ai.onnx', o.version) for o in model.opset_import]}, "
          f"{sum(ops.values())} nodes, {len(ops)} op types: {sorted(op for _, op in ops)}")
    assert {domain for domain, _ in ops} == {"ai.onnx"}, "every node must be in the default ONNX domain"
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 20)] and model.ir_version == 10
    assert not model.functions
    assert ops[("ai.onnx", "Loop")] == 1
    if precision == "int8":  # 03's int8 ops, all standard: DynamicQuantizeLinear feeding MatMulInteger
        assert ops[("ai.onnx", "MatMulInteger")] > 0 and ops[("ai.onnx", "DynamicQuantizeLinear")] > 0


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_interface(built, precision):
    session = EndToEnd(built.file(precision)).session
    inputs = {i.name: (i.type, i.shape) for i in session.get_inputs()}
    overridable = {i.name: (i.type, i.shape) for i in session.get_overridable_initializers()}
    outputs = {o.name: (o.type, o.shape) for o in session.get_outputs()}
    assert inputs == {"audio": ("tensor(float)", ["n_samples"]), "timestamps": ("tensor(bool)", []),
                      "prompt": ("tensor(int64)", ["n_prompt"]), "temperature": ("tensor(float)", [])}  # fmt: skip
    assert overridable == {"language": ("tensor(int64)", []), "task": ("tensor(int64)", []),
                           "seed": ("tensor(int64)", [])}  # fmt: skip
    assert set(inputs) | set(overridable) == set(INPUTS)
    assert outputs == {"tokens": ("tensor(int64)", ["n_tokens"]), "text": ("tensor(uint8)", ["n_bytes"]),
                       "text_end": ("tensor(int64)", ["n_tokens"]), "no_speech_prob": ("tensor(float)", []),
                       "avg_logprob": ("tensor(float)", []), "speech_seconds": ("tensor(float)", [])}  # fmt: skip
    assert tuple(outputs) == OUTPUTS
    graph = onnx.load(str(built.file(precision)), load_external_data=False).graph
    defaults = {i.name: int(onnx.numpy_helper.to_array(i)) for i in graph.initializer if i.name in ("language", "task")}
    assert defaults == {"language": 50259, "task": 50359}  # <|en|>, <|transcribe|>


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_weights_live_once_in_the_main_graph(built, precision):
    model = onnx.load(str(built.file(precision)))
    _, body = loop_of(model)
    assert not body.initializer and "Constant" not in {n.op_type for n in body.node}
    pair = onnx_pair(built.folder, "whisper-base", precision)
    decoder = onnx.load(str(pair.decoder)).graph
    main = {i.name: i for i in model.graph.initializer}
    for weight in decoder.initializer:
        assert f"decoder.{weight.name}" in main, weight.name  # used from the body by name (outer scope)
    used_in_body = {x for n in body.node for x in n.input}
    assert {f"decoder.{w.name}" for w in decoder.initializer} <= used_in_body
    from_pair = [n for n in main if n.startswith(("encoder.", "decoder."))]
    assert len(from_pair) == sum(len(onnx.load(str(f)).graph.initializer) for f in pair)  # each once, none copied


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_size_is_the_pair_plus_less_than_5_mb(built, precision):
    one = built.file(precision).stat().st_size
    pair = sum(p.stat().st_size for p in onnx_pair(built.folder, "whisper-base", precision))
    print(f"\n{precision}: one file {one / 1e6:.1f} MB, encoder + decoder {pair / 1e6:.1f} MB, +{(one - pair) / 1e6:.2f} MB")
    assert pair < one <= pair + MAX_EXTRA_BYTES


def test_byte_table_spells_every_token_as_the_tokenizer_does(built):
    whisper = OnnxWhisper(*onnx_pair(built.folder, "whisper-base", "int8"))
    graph = onnx.load(str(built.file("int8")), load_external_data=False).graph
    arrays = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer if i.name.startswith("text.byte_")}
    table, lengths = arrays["text.byte_table"], arrays["text.byte_lengths"]
    eot = whisper.spec.eot
    assert table.shape[0] > eot and not lengths[eot:].any()  # special tokens and timestamps write nothing
    mismatches = [t for t in range(eot)
                  if bytes(table[t, : lengths[t]]).decode("utf-8", "replace") != whisper.tokenizer.decode([t])]  # fmt: skip
    assert not mismatches, mismatches[:10]


# --- tokens, against the two-graph greedy decoder ------------------------------------------------------


def test_the_padding_switch_matches_what_the_two_graph_path_feeds_its_encoder(built, jfk_audio):
    """ENCODER_INPUT_PADDING must describe the features OnnxWhisper.transcribe gives the encoder."""

    class FeaturesSeen(OnnxWhisper):
        def encode(self, mel):
            self.seen = mel[0]
            return super().encode(mel)

    whisper = FeaturesSeen(*onnx_pair(built.folder, "whisper-base", "int8"))
    whisper.transcribe(jfk_audio)
    assert np.array_equal(whisper.seen, numpy_features(jfk_audio, ENCODER_INPUT_PADDING)), ENCODER_INPUT_PADDING


def greedy_with_scores(whisper: OnnxWhisper, mel: np.ndarray, no_speech: int):
    """openai/whisper's no_speech_prob and avg_logprob, computed in numpy beside the two-graph decoder's tokens.

    no_speech_prob: softmax of the first step's logits at <|startoftranscript|>, at <|nospeech|>;
    avg_logprob: log-softmax of the suppressed logits at each chosen token, <|endoftext|> included,
    summed and divided by (text tokens + 1).
    """
    prompt = whisper.prompt("en", "transcribe", timestamps=False)
    cross_k, cross_v = whisper.encode(mel[None])
    self_k = self_v = whisper.empty_cache()
    feed, tokens, total = prompt, [], 0.0
    for step in range(whisper.max_new_tokens(len(prompt))):
        logits, self_k, self_v = whisper.decoder_step([feed], self_k, self_v, cross_k, cross_v)
        if step == 0:
            at_sot = logits[0, 0].astype(np.float64)
            no_speech_prob = np.exp(at_sot[no_speech] - np.logaddexp.reduce(at_sot))
        allowed = apply_rules(logits[0, -1].astype(np.float32), tokens, whisper.token_ids, False).astype(np.float64)
        choice = int(np.argmax(allowed))
        total += allowed[choice] - np.logaddexp.reduce(allowed[np.isfinite(allowed)])
        if choice == whisper.spec.eot:
            break
        tokens.append(choice)
        feed = [choice]
    return tokens, no_speech_prob, total / (len(tokens) + 1)


@pytest.fixture(scope="module")
def transcripts(built, clips):  # a few minutes: 30 clips, two precisions, three ways each
    """Per precision and clip: the one file's tokens, the two-graph decoder's on numpy's features (int8: also on the graph's)."""
    graph_front_end = ort.InferenceSession(front_end_model().SerializeToString(), providers=["CPUExecutionProvider"])
    found = {}
    for precision in ("fp32", "int8"):
        whisper = OnnxWhisper(*onnx_pair(built.folder, "whisper-base", precision))
        one_file = EndToEnd(built.file(precision))
        prompt = whisper.prompt("en", "transcribe", timestamps=False)

        def text_only(tokens, eot=whisper.spec.eot):
            return [t for t in tokens if t < eot]

        for clip_id, audio in clips:
            numpy_mel = numpy_features(audio)
            found[precision, clip_id] = {
                "one_file": one_file.window(audio).tokens,  # one greedy window, as the two graphs here
                "two_graphs": text_only(whisper.decode_window(numpy_mel, prompt, timestamps=False)),
                "text": whisper.text,
            }
            if precision == "int8":  # where int8 differs, is it the front end's last bits or the loop?
                graph_mel = graph_front_end.run(None, {"audio": audio})[0][0]
                found[precision, clip_id]["two_graphs_graph_mel"] = text_only(whisper.decode_window(graph_mel, prompt, False))
    return found


@pytest.mark.slow
def test_fp32_tokens_equal_the_two_graph_decoder_on_every_clip(transcripts, clips):
    differ = [c for c, _ in clips if transcripts["fp32", c]["one_file"] != transcripts["fp32", c]["two_graphs"]]
    n_tokens = sum(len(transcripts["fp32", c]["one_file"]) for c, _ in clips)
    print(f"\nfp32: {len(clips) - len(differ)} of {len(clips)} clips ({n_tokens} tokens) identical")
    assert not differ, differ


@pytest.mark.slow
def test_int8_tokens_against_the_int8_pair(transcripts, clips):
    """Exact with the same features; with numpy's features the last-bit differences of the front end
    (about 1e-5) can move an int8 rounding and change a token: those clips are listed."""
    exact = [c for c, _ in clips if transcripts["int8", c]["one_file"] == transcripts["int8", c]["two_graphs_graph_mel"]]
    same_numpy = [c for c, _ in clips if transcripts["int8", c]["one_file"] == transcripts["int8", c]["two_graphs"]]
    print(f"\nint8: {len(same_numpy)} of {len(clips)} clips identical to the int8 pair fed numpy's log-mel, "
          f"{len(exact)} of {len(clips)} identical when fed the graph's own log-mel")
    for clip_id, _ in clips:
        t = transcripts["int8", clip_id]
        if clip_id not in same_numpy:
            print(f"  {clip_id}: one file {t['text'](t['one_file'])!r} / pair {t['text'](t['two_graphs'])!r}")
    assert len(exact) == len(clips)
    assert len(same_numpy) >= 0.8 * len(clips)


def test_scores_match_openai_definitions(built, jfk_audio):
    for precision, tolerance in (("fp32", 1e-4), ("int8", 1e-3)):
        whisper = OnnxWhisper(*onnx_pair(built.folder, "whisper-base", precision))
        graph_mel = ort.InferenceSession(front_end_model().SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, {"audio": jfk_audio})[0][0]
        tokens, no_speech_prob, avg_logprob = greedy_with_scores(whisper, graph_mel, no_speech_token(whisper.tokenizer))
        result = EndToEnd(built.file(precision)).window(jfk_audio)
        print(f"\n{precision}: no_speech_prob {result.no_speech_prob:.5f} (numpy {no_speech_prob:.5f}), "
              f"avg_logprob {result.avg_logprob:.5f} (numpy {avg_logprob:.5f})")
        assert result.tokens == tokens
        assert abs(result.no_speech_prob - no_speech_prob) < tolerance
        assert abs(result.avg_logprob - avg_logprob) < tolerance


def test_language_and_task_inputs_override_the_defaults(built, jfk_audio):
    """Feeding `language` replaces the <|en|> default in the prompt: same tokens as the pair with <|de|>."""
    whisper = OnnxWhisper(*onnx_pair(built.folder, "whisper-base", "fp32"))
    one_file = EndToEnd(built.file("fp32"))
    for language, task in (("de", "transcribe"), ("de", "translate")):
        expected = whisper.decode_window(numpy_features(jfk_audio), whisper.prompt(language, task, False), False)
        result = one_file.window(jfk_audio, language=language, task=task)
        print(f"\n{language} {task}: {result.text}")
        assert result.tokens == [t for t in expected if t < whisper.spec.eot]
    assert one_file.window(jfk_audio, "de").tokens != one_file.window(jfk_audio).tokens


# --- no Python of ours needed -----------------------------------------------------------------------------

ISOLATED = r"""
import json, sys, wave
import numpy as np, onnxruntime as ort
with wave.open(sys.argv[1]) as f:
    assert (f.getframerate(), f.getnchannels(), f.getsampwidth()) == (16000, 1, 2)
    audio = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").astype(np.float32) / 32768
found = {}
for path in sys.argv[2:]:
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = {"audio": audio, "timestamps": np.array(False), "prompt": np.zeros(0, dtype=np.int64),
             "temperature": np.array(0.0, dtype=np.float32)}
    tokens, text, text_end, no_speech_prob, avg_logprob, speech_seconds = session.run(None, feeds)
    found[path] = {"tokens": tokens.tolist(), "text": bytes(text).decode("utf-8").strip()}
try:
    import whisper_lab
    found["lab_importable"] = True
except ImportError:
    found["lab_importable"] = False
found["lab_modules"] = [m for m in sys.modules if m.startswith("whisper_lab")]
print(json.dumps(found))
"""


def test_runs_with_plain_onnxruntime_in_a_process_that_imports_nothing_from_the_lab(built, tmp_path, jfk_audio):
    files = [str(built.file(p)) for p in ("fp32", "int8")]
    # -I: isolated mode, neither the current folder nor PYTHONPATH is on sys.path; run from an empty folder
    result = subprocess.run([sys.executable, "-I", "-c", ISOLATED, str(JFK.path), *files], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["lab_importable"] is False and found["lab_modules"] == []
    for precision, path in zip(("fp32", "int8"), files):
        expected = EndToEnd(built.file(precision)).window(jfk_audio)  # the lab's own wrapper, in this process
        print(f"\n{precision} in a plain process: {found[path]['text']}")
        assert found[path]["tokens"] == expected.tokens and found[path]["text"] == expected.text
    assert found[files[0]]["text"] == JFK.text  # fp32: what the two-graph decoder and PyTorch write
