"""Beam search: keep the `beam_size` likeliest partial transcripts instead of only one.

Greedy decoding commits to the likeliest token at every step, and one early
mistake can send the rest of the sentence astray. Beam search keeps several
hypotheses alive, one per row of the decoder's batch axis:

    each step   every beam proposes its beam_size + 1 likeliest next tokens;
                of all proposals, the beam_size best (by summed log-probability)
                continue; a proposal ending in <|endoftext|> is finished instead
    the caches  row i of the new batch continues the proposal's source beam, so
                each layer's self-attention cache is reordered: cache[sources]
    the end     once beam_size hypotheses have finished, the one with the best
                log-probability per token wins

It costs about beam_size decoder rows per step, so it is an option
(`--beam-size 5`, the default of OpenAI's and faster-whisper's command lines),
not the lab's default. With one beam it is exactly greedy decoding.
"""

from __future__ import annotations

import numpy as np

from .decoders import Decoded, Window, no_speech_probability, rank_by_average_logprob
from .logit_rules import apply_rules, log_softmax


def _proposals(logits: np.ndarray, beams: list[list[int]], sums: np.ndarray, rows: int, window: Window, ids,
               beam_size: int) -> tuple[dict, dict]:  # fmt: skip
    """Every beam's beam_size + 1 best continuations: {tokens: summed log-prob}, {tokens: source beam}."""
    scores, sources = {}, {}
    for row in range(rows):
        allowed = apply_rules(logits[row, -1].astype(np.float32), beams[row], ids, window.timestamps)
        logprobs = log_softmax(allowed)
        best = np.argsort(logprobs)[::-1][: beam_size + 1]
        for token in best:
            if np.isfinite(logprobs[token]):
                sequence = (*beams[row], int(token))
                scores[sequence] = sums[row] + float(logprobs[token])
                sources[sequence] = row
    return scores, sources


def beam_search(whisper, window: Window, beam_size: int, patience: float = 1.0) -> Decoded:
    """The best transcript of one window found with `beam_size` beams (OpenAI's BeamSearchDecoder)."""
    eot = whisper.spec.eot
    wanted = round(beam_size * patience)  # finished hypotheses to collect before stopping
    cross_k, cross_v = window.cross(beam_size)
    self_k = self_v = whisper.empty_cache(beam_size)
    feed = np.array([window.prompt] * beam_size, dtype=np.int64)
    beams: list[list[int]] = [[] for _ in range(beam_size)]
    sums = np.zeros(beam_size)
    finished: dict[tuple, float] = {}
    no_speech = 0.0
    for step in range(window.max_new_tokens):
        logits, self_k, self_v = whisper.decoder_step(feed, self_k, self_v, cross_k, cross_v)
        if step == 0:
            no_speech = no_speech_probability(logits, window, whisper.no_speech)
        # at step 0 all beams hold the same prompt: expand one, or the beams would be copies
        scores, sources = _proposals(logits, beams, sums, 1 if step == 0 else beam_size, window,
                                     whisper.token_ids, beam_size)  # fmt: skip
        kept, kept_sums, kept_sources = [], [], []
        for sequence in sorted(scores, key=scores.get, reverse=True):
            if sequence[-1] == eot:
                if len(finished) < wanted:
                    finished[sequence[:-1]] = scores[sequence]
            else:
                kept.append(list(sequence))
                kept_sums.append(scores[sequence])
                kept_sources.append(sources[sequence])
                if len(kept) == beam_size:
                    break
        if len(finished) >= wanted or len(kept) < beam_size:
            break
        # row i now continues beam kept_sources[i]: its cache must come along
        order = np.array(kept_sources)
        self_k = [k[order] for k in self_k]
        self_v = [v[order] for v in self_v]
        beams, sums = kept, np.array(kept_sums)
        feed = np.array([[b[-1]] for b in beams], dtype=np.int64)
    else:
        kept, kept_sums = beams, list(sums)
    # too few finished (the window ran out of tokens): the live beams compete as they are
    for beam, total in sorted(zip(kept, kept_sums), key=lambda bt: bt[1], reverse=True):
        if len(finished) >= beam_size:
            break
        finished.setdefault(tuple(beam), total)
    candidates = [Decoded(list(tokens), total, no_speech) for tokens, total in finished.items()]
    return rank_by_average_logprob(candidates)
