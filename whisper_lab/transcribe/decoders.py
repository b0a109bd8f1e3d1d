"""Decode one 30 s window with the ONNX decoder: greedy, sampled at a temperature, or by beam search.

All three run the same loop over the decoder graph (onnx_whisper.OnnxWhisper):

    step 0  decoder(prompt, empty cache)      -> logits of every prompt position
    step k  decoder(last tokens, cache)       -> logits of the next token, cache + 1

and differ only in how the next token is chosen from the allowed logits
(logit_rules.py): the likeliest one (greedy, temperature 0); one drawn at random
from softmax(logits / temperature) for `best_of` candidates at once, one per row
of the decoder's batch axis (sampling); or the best `beam_size` continuations
(beam_search.py). Every chosen token's log-probability is summed: the fallback
checks (safeguards.py) need the average.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .logit_rules import apply_rules, log_softmax


@dataclass
class Window:
    """What the decoder loops need for one window, computed once and shared by every attempt."""

    cross_k: np.ndarray  # the encoder's cross-attention keys, batch 1
    cross_v: np.ndarray
    prompt: list[int]  # [<|startofprev|> previous text] <|startoftranscript|> <|en|> <|transcribe|> ...
    sot_index: int  # where <|startoftranscript|> is in the prompt: its logits give P(<|nospeech|>)
    timestamps: bool
    max_new_tokens: int

    def cross(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """The same encoder output for `batch` sequences (the decoder's batch axis)."""
        if batch == 1:
            return self.cross_k, self.cross_v
        return np.repeat(self.cross_k, batch, axis=1), np.repeat(self.cross_v, batch, axis=1)


@dataclass
class Decoded:
    tokens: list[int]  # without the prompt and <|endoftext|>
    sum_logprob: float
    no_speech_prob: float


def no_speech_probability(first_logits: np.ndarray, window: Window, no_speech_token: int) -> float:
    """P(<|nospeech|>) at the position of <|startoftranscript|>, before any rule masks it:
    what the model predicts instead of a language token when it hears nothing to transcribe."""
    logits = first_logits[0, window.sot_index].astype(np.float64)
    return float(np.exp(log_softmax(logits)[no_speech_token]))


def sample_token(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """Draw a token from softmax(logits / temperature): higher temperature, flatter choice."""
    probs = np.exp(log_softmax(logits.astype(np.float64) / temperature))
    cumulative = np.cumsum(probs)
    return int(min(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"), len(probs) - 1))


def rank_by_average_logprob(candidates: list[Decoded]) -> Decoded:
    """The candidate with the highest log-probability per token: a plain sum would favour short texts."""
    return max(candidates, key=lambda c: c.sum_logprob / max(len(c.tokens), 1))


def sample_or_greedy(whisper, window: Window, temperature: float = 0.0, n: int = 1,
                     rng: np.random.Generator | None = None) -> list[Decoded]:  # fmt: skip
    """`n` sequences side by side; greedy (the argmax) at temperature 0, else sampled with `rng`."""
    ids, eot = whisper.token_ids, whisper.spec.eot
    cross_k, cross_v = window.cross(n)
    self_k = self_v = whisper.empty_cache(n)
    feed = np.array([window.prompt] * n, dtype=np.int64)
    generated: list[list[int]] = [[] for _ in range(n)]
    sums = np.zeros(n)
    done = np.zeros(n, dtype=bool)
    no_speech = 0.0
    for step in range(window.max_new_tokens):
        logits, self_k, self_v = whisper.decoder_step(feed, self_k, self_v, cross_k, cross_v)
        if step == 0:
            no_speech = no_speech_probability(logits, window, whisper.no_speech)
        chosen = []
        for row in range(n):
            if done[row]:  # a finished sequence keeps feeding <|endoftext|> until all are done
                chosen.append(eot)
                continue
            allowed = apply_rules(logits[row, -1].astype(np.float32), generated[row], ids, window.timestamps)
            token = int(np.argmax(allowed)) if temperature == 0 else sample_token(allowed, temperature, rng)
            sums[row] += log_softmax(allowed)[token]
            if token == eot:
                done[row] = True
            else:
                generated[row].append(token)
            chosen.append(token)
        if done.all():
            break
        feed = np.array(chosen, dtype=np.int64)[:, None]
    return [Decoded(generated[row], float(sums[row]), no_speech) for row in range(n)]
