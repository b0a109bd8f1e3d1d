"""Word error rate, the standard yardstick of speech recognition.

WER = (substituted + deleted + inserted words) / words in the reference.
Before counting, both texts go through Whisper's English text normalizer (the
one OpenAI used for the paper, shipped with transformers): lower case, no
punctuation, "ten" and "10" alike, "Mr." and "mister" alike. Otherwise a
transcript would be "wrong" for writing "Mr. Dashwood" where the reference
says "mister dashwood".
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _normalizer():
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    # OpenAI's British->American spelling table (english.json) is not shipped with
    # transformers' code; without it "colour" and "color" count as different words.
    return EnglishTextNormalizer({})


def normalize(text: str) -> str:
    return _normalizer()(text)


def word_error_rate(references: list[str] | str, hypotheses: list[str] | str) -> float:
    """Corpus WER over normalized texts (errors summed over all utterances / reference words)."""
    import jiwer

    if isinstance(references, str):
        references, hypotheses = [references], [hypotheses]
    refs = [normalize(r) for r in references]
    hyps = [normalize(h) for h in hypotheses]
    if not any(refs):
        raise ValueError("references are empty after normalization")
    return jiwer.wer(refs, hyps)


def word_count(text: str) -> int:
    return len(normalize(text).split())


def utterance_errors(reference: str, hypothesis: str) -> int:
    """Substituted + deleted + inserted words of one utterance, after normalization."""
    import jiwer

    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return len(hyp.split())
    out = jiwer.process_words(ref, hyp or "")
    return out.substitutions + out.deletions + out.insertions


def paired_difference(errors_a: list[int], errors_b: list[int], words: list[int], draws: int = 10_000,
                      seed: int = 0) -> tuple[float, float, float]:  # fmt: skip
    """WER(b) - WER(a) on the same utterances, with a 95% paired bootstrap interval: (difference, low, high).

    Paired: both transcribed the same utterances, so we resample *utterances* (with
    replacement, `draws` times) and recompute both error rates on each resample. An
    utterance that is hard for both moves both rates together and does not widen the
    interval; only the words where the two differ do.
    """
    import numpy as np

    a, b, n = (np.asarray(x, dtype=np.float64) for x in (errors_a, errors_b, words))
    difference = (b.sum() - a.sum()) / n.sum()
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(n), size=(draws, len(n)))
    resampled = (b[picks].sum(1) - a[picks].sum(1)) / n[picks].sum(1)
    low, high = np.percentile(resampled, [2.5, 97.5])
    return float(difference), float(low), float(high)
