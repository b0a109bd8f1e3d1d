"""Does the exported pair compute what PyTorch computes? Same input, both engines, largest difference.

The reference is the untouched transformers model: its encoder followed by each
decoder layer's cross-attention key/value projections, and its logits for the
decoding prompt. The input is the log-mel of real speech (the shipped sample),
not random numbers: quantization error depends on the values that flow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# fp32 ONNX and PyTorch differ only by float32 rounding, which depends on the CPU's kernels
# and grows with the size of the values. So the limit is relative to the largest value of
# the reference tensor, which also makes it hold for any model size. whisper-base on the
# sample speech: cross K/V up to 8.5, differences of 0.5-1.0e-3 (6e-5 to 1.2e-4 relative,
# depending on the CPU); two PyTorch attention kernels differ by ~2e-4 between themselves.
# A wrong op or a misplaced scale shows up as 1e-2 or more.
FP32_TOLERANCE = 5e-4


@dataclass
class Reference:
    mel: np.ndarray  # (1, n_mels, 3000)
    prompt: list[int]
    cross_k: np.ndarray  # (n_layer, 1, n_head, head_dim, 1500), the layout of the exported encoder
    cross_v: np.ndarray  # (n_layer, 1, n_head, 1500, head_dim)
    logits: np.ndarray  # (1, len(prompt), vocab)


@dataclass
class Validation:
    encoder_max_diff: float  # over cross_k and cross_v
    logits_max_diff: float  # first decoder step: logits of every prompt position
    encoder_scale: float = 1.0  # largest |value| of the reference cross_k/v
    logits_scale: float = 1.0  # largest |logit| of the reference

    @property
    def worst_relative_diff(self) -> float:
        """The larger of the two differences, each divided by its reference's largest value."""
        return max(self.encoder_max_diff / self.encoder_scale, self.logits_max_diff / self.logits_scale)


def pytorch_reference(model, mel: np.ndarray, prompt: list[int]) -> Reference:
    import torch

    features = torch.from_numpy(mel)
    with torch.inference_mode():
        audio = model.model.encoder(features).last_hidden_state
        layers = model.model.decoder.layers
        cross_k = torch.stack([layer.encoder_attn.k_proj(audio) for layer in layers])  # (n_layer, 1, 1500, d)
        cross_v = torch.stack([layer.encoder_attn.v_proj(audio) for layer in layers])
        logits = model(input_features=features, decoder_input_ids=torch.tensor([prompt])).logits
    n_layer, batch, n_audio, d_model = cross_k.shape
    heads = cross_k.reshape(n_layer, batch, n_audio, model.config.decoder_attention_heads, -1)
    cross_k = heads.permute(0, 1, 3, 4, 2)  # split into heads, keys transposed
    cross_v = cross_v.reshape(heads.shape).permute(0, 1, 3, 2, 4)
    return Reference(mel, prompt, cross_k.numpy(), cross_v.numpy(), logits.numpy())


def compare_with_reference(onnx_whisper, reference: Reference) -> Validation:
    cross_k, cross_v = onnx_whisper.encode(reference.mel)
    empty = onnx_whisper.empty_cache()
    logits, _, _ = onnx_whisper.decoder_step([reference.prompt], empty, empty, cross_k, cross_v)
    encoder_diff = max(np.abs(cross_k - reference.cross_k).max(), np.abs(cross_v - reference.cross_v).max())
    encoder_scale = max(np.abs(reference.cross_k).max(), np.abs(reference.cross_v).max())
    return Validation(float(encoder_diff), float(np.abs(logits - reference.logits).max()),
                      float(encoder_scale), float(np.abs(reference.logits).max()))  # fmt: skip
