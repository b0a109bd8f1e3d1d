"""How far one int8 transcript may differ from another made by other kernels, and why: one rule for every test.

fp32 is held to identity wherever the same graph runs (a float32 difference in
the last bit almost never moves an argmax, and when it does it is a bug worth
seeing). int8 is not, when the two runs used different kernels: onnxruntime-web's
WebAssembly against the native ones, AVX2 against AVX-512 VNNI, AMX or ARM, one
thread against two. The integer products are exact everywhere
(benchmarks/int8_exactness.py checks it), but the float work around them
(LayerNorm, softmax, GELU, each DynamicQuantizeLinear's scale) rounds its last
bit differently per kernel, and a last-bit change can move an activation to the
next 8-bit step: 1/255 of its range, a thousand times a float32 rounding. Where
two tokens were nearly tied, that picks the other one ("Americans," or
"Americans"). On a VNNI Xeon the browser and Python differed by exactly that
comma on the sample speech.

So across kernels an int8 transcript may differ by at most INT8_TOKEN_EDITS
tokens (insertions, deletions, substitutions) per clip, and each must still be
a good transcript of the clip on its own.
"""

from __future__ import annotations

INT8_TOKEN_EDITS = 1  # per clip of up to 30 s: one near-tie flipped, and the decoding came back on track


def token_edits(a: list[int], b: list[int]) -> int:
    """Levenshtein distance between two token sequences (insertions, deletions, substitutions)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def assert_int8_close(tokens: list[int], other: list[int], what: str) -> None:
    edits = token_edits(tokens, other)
    assert edits <= INT8_TOKEN_EDITS, f"{what}: int8 differs by {edits} tokens (at most {INT8_TOKEN_EDITS} allowed)"
