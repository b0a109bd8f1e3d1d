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
