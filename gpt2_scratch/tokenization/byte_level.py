"""The two fixed tables of GPT-2's byte-level BPE: which character stands for each byte, and how text is cut
into words before any merging happens.

Byte-level BPE works on the UTF-8 bytes of the text, so every string can be encoded and nothing is ever
"unknown". The vocabulary files, however, are text: each byte is written as a visible Unicode character.
Bytes that are already printable (and not a space) stand for themselves; the other 68 (control characters,
space, a few Latin-1 ones) are shifted to the characters 256, 257, ... in byte order. That is why a word's
leading space shows up as "Ġ" (256 + 32) in GPT-2's vocabulary.
"""

from __future__ import annotations

import regex


def _bytes_to_unicode() -> dict[int, str]:
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {byte: chr(byte) for byte in printable}
    shifted = 0
    for byte in range(256):
        if byte not in table:
            table[byte] = chr(256 + shifted)
            shifted += 1
    return table


# Insertion order matters: it is the order of GPT-2's first 256 vocabulary ids ("!" is id 0).
BYTE_TO_UNICODE: dict[int, str] = _bytes_to_unicode()
UNICODE_TO_BYTE: dict[str, int] = {char: byte for byte, char in BYTE_TO_UNICODE.items()}

# GPT-2's pre-tokenisation pattern, as released by OpenAI. Merges never cross the boundaries it draws:
# English contractions, letters with an optional leading space, numbers likewise, runs of other symbols,
# then whitespace (a run of spaces gives all but its last space to the run, so " word" keeps its space).
GPT2_SPLIT_PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def pretokenize(text: str) -> list[str]:
    """Cut text into the pieces that BPE encodes one at a time."""
    return GPT2_SPLIT_PATTERN.findall(text)


def to_symbols(piece: str) -> list[str]:
    """The UTF-8 bytes of `piece`, each written as its vocabulary character."""
    return [BYTE_TO_UNICODE[byte] for byte in piece.encode("utf-8")]


def symbols_to_bytes(token: str) -> bytes:
    """Inverse of `to_symbols` for one vocabulary entry: the raw bytes a token stands for."""
    return bytes(UNICODE_TO_BYTE[char] for char in token)
