"""Whisper cut into the two graphs we export: an encoder and a one-step decoder.

A transcription runs the encoder once per 30 s window and the decoder once per
output token, so the cut is made where the work divides:

    encoder  log-mel (batch, 80, 3000)
             -> conv, conv (2x downsampling) -> 6 transformer blocks -> LayerNorm
             -> for each of the 6 decoder layers, its cross-attention key and value
                projections of the audio: the "many parallel branches" at the end
             -> cross_k (n_layer, batch, head, head_dim, 1500), keys transposed for q @ k
                cross_v (n_layer, batch, head, 1500, head_dim)

    decoder  tokens (batch, n); per layer i: the self-attention cache of the tokens
             before them, self_k_i / self_v_i (batch, head, n_past, head_dim), and
             that layer's cross_k_i / cross_v_i
             -> token + position embedding -> 6 blocks of
                self-attention (to earlier tokens) + cross-attention (to the audio) + MLP
             -> logits (batch, n, vocab) and each layer's cache grown by n positions

The audio keys/values never change while a window is decoded, so computing them
once in the encoder saves 12 matrix products per decoder step; the self-attention
cache means each step feeds only the newest token instead of the whole text so
far. Optimum's "decoder with past" and sherpa-onnx's Whisper export cut the model
the same way.

The modules reuse the transformers weights (the same nn.Linear and nn.LayerNorm
objects) but spell attention out in plain torch, so the exported graph holds only
standard ONNX ops and no Python-side cache objects. Module names become node
names in the ONNX file (`/layers.2/cross_attn/...`), which is what Netron shows.
"""

from __future__ import annotations

import torch
from torch import nn


def _split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """(batch, time, d_model) -> (batch, n_head, time, head_dim)"""
    batch, time, d_model = x.shape
    return x.view(batch, time, n_head, d_model // n_head).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(batch, n_head, time, head_dim) -> (batch, time, d_model)"""
    batch, n_head, time, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, time, n_head * head_dim)


class Attention(nn.Module):
    """Multi-head attention of queries from x over keys/values already split into heads.

    key_t is stored transposed, (batch, head, head_dim, n_key), so that the scores are a
    plain q @ key_t with no transpose in the graph; value is (batch, head, n_key, head_dim).
    """

    def __init__(self, hf_attention: nn.Module, n_head: int):
        super().__init__()
        self.q_proj, self.out_proj, self.n_head = hf_attention.q_proj, hf_attention.out_proj, n_head

    def forward(self, x, key_t, value, mask=None, return_scores=False):
        """The attention's output; with return_scores, also its scores before the softmax,
        (batch, head, n_query, n_key). Called through the module (not a second method) so the
        exporter names its nodes under the module's scope (/layers.2/cross_attn/...)."""
        head_dim = key_t.shape[-2]
        q = _split_heads(self.q_proj(x) * head_dim**-0.5, self.n_head)  # scale q first, as Whisper does
        scores = q @ key_t  # (batch, head, n_query, n_key)
        if mask is not None:
            scores = scores + mask
        attended = self.out_proj(_merge_heads(scores.softmax(dim=-1) @ value))
        return (attended, scores) if return_scores else attended


class SelfAttentionWithCache(nn.Module):
    """Attention over the earlier tokens: the cache holds their keys/values, the new ones are appended."""

    def __init__(self, hf_attention: nn.Module, n_head: int):
        super().__init__()
        self.k_proj, self.v_proj, self.n_head = hf_attention.k_proj, hf_attention.v_proj, n_head
        self.attend = Attention(hf_attention, n_head)

    def forward(self, x, k_cache, v_cache, mask):
        # caches: (batch, head, n_past, head_dim); the new tokens' keys/values go at the end
        k = torch.cat([k_cache, _split_heads(self.k_proj(x), self.n_head)], dim=2)
        v = torch.cat([v_cache, _split_heads(self.v_proj(x), self.n_head)], dim=2)
        return self.attend(x, k.transpose(-1, -2), v, mask), k, v


class DecoderBlock(nn.Module):
    """Pre-norm residual block: x += self_attn(x); x += cross_attn(x, audio); x += mlp(x)."""

    def __init__(self, hf_layer: nn.Module, n_head: int):
        super().__init__()
        self.self_attn_layer_norm = hf_layer.self_attn_layer_norm
        self.self_attn = SelfAttentionWithCache(hf_layer.self_attn, n_head)
        self.cross_attn_layer_norm = hf_layer.encoder_attn_layer_norm
        self.cross_attn = Attention(hf_layer.encoder_attn, n_head)
        self.mlp_layer_norm = hf_layer.final_layer_norm
        self.mlp = nn.Sequential(hf_layer.fc1, nn.GELU(), hf_layer.fc2)

    def forward(self, x, k_cache, v_cache, cross_k_t, cross_v, mask):
        """-> x, the grown self-attention cache k and v, and the cross-attention scores (batch, head, n, 1500)."""
        attended, k, v = self.self_attn(self.self_attn_layer_norm(x), k_cache, v_cache, mask)
        x = x + attended
        heard, cross_scores = self.cross_attn(self.cross_attn_layer_norm(x), cross_k_t, cross_v, return_scores=True)
        x = x + heard
        x = x + self.mlp(self.mlp_layer_norm(x))
        return x, k, v, cross_scores


class CrossKV(nn.Module):
    """One decoder layer's key and value projections of the encoded audio, split into heads."""

    def __init__(self, hf_cross_attention: nn.Module, n_head: int):
        super().__init__()
        self.k_proj, self.v_proj, self.n_head = hf_cross_attention.k_proj, hf_cross_attention.v_proj, n_head

    def forward(self, audio):
        # Shaped here, once per window, exactly as the decoder's attention consumes them:
        # otherwise every decoder step would reshape and transpose 1500 x 512 numbers per layer.
        k_t = _split_heads(self.k_proj(audio), self.n_head).transpose(-1, -2)  # (batch, head, head_dim, 1500)
        v = _split_heads(self.v_proj(audio), self.n_head)  # (batch, head, 1500, head_dim)
        return k_t, v


class EncoderWithCrossKV(nn.Module):
    """log-mel -> cross-attention keys and values for every decoder layer."""

    def __init__(self, whisper):  # a WhisperForConditionalGeneration
        super().__init__()
        self.encoder = whisper.model.encoder
        n_head = whisper.config.decoder_attention_heads
        self.cross_kv = nn.ModuleList(CrossKV(layer.encoder_attn, n_head) for layer in whisper.model.decoder.layers)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        audio = self.encoder(mel).last_hidden_state  # (batch, 1500, d_model): one vector per 20 ms
        keys, values = zip(*(layer(audio) for layer in self.cross_kv))
        return torch.stack(keys), torch.stack(values)  # (n_layer, batch, head, ...)


class DecoderStep(nn.Module):
    """tokens + caches -> logits for each new token + self-attention caches grown by n tokens.

    Caches come one tensor per layer (lists), not stacked: picking layer i out of a
    stacked tensor is a copy in ONNX Runtime, on every step.
    """

    def __init__(self, whisper):
        super().__init__()
        decoder = whisper.model.decoder
        n_head = whisper.config.decoder_attention_heads
        # Whisper ties its output projection to the token embedding: logits = hidden @ E^T.
        # We keep E^T (d_model, vocab) as the one stored tensor: token lookup is a Gather of
        # its columns and the output projection a plain MatMul with it. So the file holds the
        # 26.5 M-number table once, and int8 quantization can share a single int8 copy.
        self.token_embedding_t = nn.Parameter(decoder.embed_tokens.weight.detach().t().contiguous())
        self.positional_embedding = decoder.embed_positions.weight  # learned, one row per position
        self.layers = nn.ModuleList(DecoderBlock(layer, n_head) for layer in decoder.layers)
        self.layer_norm = decoder.layer_norm

    def forward(self, tokens, self_k: list, self_v: list, cross_k_t: list, cross_v: list):
        logits, new_k, new_v, _ = self.run_layers(tokens, self_k, self_v, cross_k_t, cross_v)
        return logits, new_k, new_v  # the cross-attention scores are not an output: the tracer drops them

    def run_layers(self, tokens, self_k: list, self_v: list, cross_k_t: list, cross_v: list):
        """logits, the grown caches, and every layer's cross-attention scores (a list, one per layer)."""
        batch, n_new = tokens.shape
        n_past = self_k[0].shape[2]
        d_model = self.token_embedding_t.shape[0]

        token_vectors = torch.index_select(self.token_embedding_t, 1, tokens.reshape(-1))  # (d_model, batch*n)
        positions = torch.arange(n_new, device=tokens.device) + n_past
        x = token_vectors.t().reshape(batch, n_new, d_model) + self.positional_embedding[positions]

        # causal mask: new token i (at position n_past + i) may see positions 0 .. n_past + i
        key_positions = torch.arange(n_past + n_new, device=tokens.device)
        mask = torch.where(key_positions[None, :] > positions[:, None], float("-inf"), 0.0)

        new_k, new_v, cross_scores = [], [], []
        for i, block in enumerate(self.layers):
            x, k, v, scores = block(x, self_k[i], self_v[i], cross_k_t[i], cross_v[i], mask)
            new_k.append(k)
            new_v.append(v)
            cross_scores.append(scores)
        logits = self.layer_norm(x) @ self.token_embedding_t  # (batch, n, vocab)
        return logits, new_k, new_v, cross_scores


class DecoderStepWithAlignment(DecoderStep):
    """The same decoder step with one more output: where the alignment heads look in the audio.

    A few cross-attention heads of Whisper's decoder follow the speech in time:
    when the decoder writes a word, they attend to the 20 ms frames where that
    word is spoken. OpenAI found them by hand for each checkpoint and lists them
    as (layer, head) pairs (`alignment_heads` in generation_config.json); word
    timestamps are read from their attention (transcribe/timing.py).

        alignment_qk  (batch, n_alignment_heads, n_new, 1500): the scores q.k / sqrt(head_dim)
                      of those heads before the softmax; the caller takes the softmax
                      over the frames that hold audio only, as OpenAI's timing.py does.

    It is a separate file (`..._decoder_attention.onnx`): the everyday decoder keeps
    exactly its graph and its speed.
    """

    def __init__(self, whisper, alignment_heads: list[tuple[int, int]]):
        super().__init__(whisper)
        self.alignment_heads = [(int(layer), int(head)) for layer, head in alignment_heads]

    def forward(self, tokens, self_k: list, self_v: list, cross_k_t: list, cross_v: list):
        logits, new_k, new_v, cross_scores = self.run_layers(tokens, self_k, self_v, cross_k_t, cross_v)
        alignment_qk = torch.stack([cross_scores[layer][:, head] for layer, head in self.alignment_heads], dim=1)
        return logits, new_k, new_v, alignment_qk


def alignment_heads_of(whisper) -> list[tuple[int, int]]:
    """The checkpoint's (layer, head) pairs that follow the speech; without a list, every head of the
    upper half of the decoder's layers (OpenAI's default for a checkpoint it has no list for)."""
    heads = getattr(whisper.generation_config, "alignment_heads", None)
    if heads:
        return [(int(layer), int(head)) for layer, head in heads]
    n_layer, n_head = whisper.config.decoder_layers, whisper.config.decoder_attention_heads
    return [(layer, head) for layer in range(n_layer // 2, n_layer) for head in range(n_head)]
