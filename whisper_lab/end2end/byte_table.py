"""Tokens to text inside the graph: a table of each token's UTF-8 bytes, a Gather and a Compress.

Whisper's tokenizer is byte-level BPE: every text token stands for a fixed
string of bytes (" Americans" = 10 bytes, one Chinese character = 3 bytes, and
some tokens hold only part of a character). Decoding is therefore a lookup and
a concatenation, which ONNX can do with a padded table:

    table    (50257, 33) uint8   row t = the bytes of token t, padded with zeros
    lengths  (50257,)    uint8   how many bytes of row t are real

    Gather the rows of the generated tokens -> (n, 33); keep the real bytes
    (column < length) with one Compress over the flattened rows -> the text.

A second output, `text_end`, is the running sum of the lengths: where each
token's bytes end. The host cuts a window's text into segments with it (the
bytes between two timestamps), reads the bytes as UTF-8 (a token that ends
inside a character leaves U+FFFD there, as in the tokenizer) and strips the
outer spaces of each segment, as the Python transcript does with `.strip()`.
Timestamps and other special tokens have rows of length 0: they write nothing.
"""

from __future__ import annotations

import numpy as np

from .nodes import Nodes, i64

def token_bytes(tokenizer, n_text_tokens: int) -> list[bytes]:
    """The bytes each of the first `n_text_tokens` token ids stands for (`tokenizers.Tokenizer`).

    Byte-level BPE writes every byte as a printable character (GPT-2's trick, so a
    vocabulary file is plain text: " " is "Ġ", byte 0xE4 is "ä"); we map them back.
    """
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    char_to_byte = {char: byte for byte, char in bytes_to_unicode().items()}
    vocab = tokenizer.get_vocab(with_added_tokens=False)
    table: list[bytes | None] = [None] * n_text_tokens
    for token, token_id in vocab.items():
        if token_id < n_text_tokens:
            table[token_id] = bytes(char_to_byte[char] for char in token)
    missing = [i for i, b in enumerate(table) if b is None]
    if missing:
        raise ValueError(f"the tokenizer has no text token for ids {missing[:5]}")
    return table  # type: ignore[return-value]


def padded_table(tokens: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """(n_tokens, longest) uint8 rows padded with zeros, and each row's length (uint8)."""
    width = max(len(b) for b in tokens)
    table = np.zeros((len(tokens), width), dtype=np.uint8)
    for i, b in enumerate(tokens):
        table[i, : len(b)] = np.frombuffer(b, dtype=np.uint8)
    return table, np.array([len(b) for b in tokens], dtype=np.uint8)


def text_nodes(g: Nodes, tokens: str, table: np.ndarray, lengths: np.ndarray, output: str, end_output: str) -> str:
    """Add the detokenizer: int64 tokens [n] -> `output`, their UTF-8 bytes [m], and `end_output` [n]."""
    rows = g.op("Gather", g.const("byte_table", table), tokens, axis=0, label="token_bytes")  # (n, width)
    length = g.op("Cast", g.op("Gather", g.const("byte_lengths", lengths), tokens, axis=0), to=7, label="lengths")
    g.op("CumSum", length, g.const("axis_0", np.int64(0)), outputs=[end_output], label="text_end")
    column = g.const("column", np.arange(table.shape[1], dtype=np.int64)[None, :])
    real = g.op("Less", column, g.op("Unsqueeze", length, g.const("axis_1", i64(1))), label="real_bytes")
    flat = g.op("Reshape", rows, g.const("flat", i64(-1)), label="all_bytes")
    return g.op("Compress", flat, g.op("Reshape", real, g.const("flat", i64(-1))), axis=0, outputs=[output],
                label="joined")
