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

# Letters and numbers (first, last code point) in the `regex` package's Unicode tables that Unicode 16.0 has not
# assigned yet. tiktoken cuts text with Rust's regex crate, whose tables are Unicode 16.0, so to give its ids on
# every string these must count as "other symbols", not letters or numbers. When either package updates its tables,
# tests/test_tokenization_parity.py::test_every_code_point_is_classed_as_tiktoken_classes_it lists the new ranges.
NEWER_THAN_UNICODE_16 = (
    (0x00558, 0x00558), (0x0058B, 0x0058C), (0x0088F, 0x0088F), (0x00C5C, 0x00C5C), (0x00CDC, 0x00CDC),
    (0x0208F, 0x0208F), (0x0209D, 0x0209F), (0x0A7CE, 0x0A7CF), (0x0A7D2, 0x0A7D2), (0x0A7D4, 0x0A7D4),
    (0x0A7DD, 0x0A7DD), (0x0A7E2, 0x0A7E2), (0x0A7F1, 0x0A7F1), (0x0AB6C, 0x0AB6D), (0x107BB, 0x107BF),
    (0x10940, 0x10959), (0x10EC5, 0x10EC7), (0x10ED9, 0x10EEE), (0x11B0A, 0x11B0A), (0x11DB0, 0x11DDB),
    (0x11DE0, 0x11DE9), (0x11DF1, 0x11DF1), (0x1246F, 0x1246F), (0x12475, 0x1247F), (0x12550, 0x12686),
    (0x16EA0, 0x16EB8), (0x16EBB, 0x16ED3), (0x16FF2, 0x16FF6), (0x187F8, 0x187FF), (0x18CD6, 0x18CDA),
    (0x18D09, 0x18D20), (0x18D80, 0x18DF2), (0x18E00, 0x19191), (0x191A0, 0x191D2), (0x1B123, 0x1B128),
    (0x1B168, 0x1B168), (0x1D6A6, 0x1D6A6), (0x1DF1F, 0x1DF24), (0x1DF2B, 0x1DF81), (0x1DF90, 0x1DF96),
    (0x1DFCD, 0x1DFFF), (0x1E6C0, 0x1E6DE), (0x1E6E0, 0x1E6E2), (0x1E6E4, 0x1E6E5), (0x1E6E7, 0x1E6ED),
    (0x1E6F0, 0x1E6F4), (0x1E6FE, 0x1E6FF), (0x2B73A, 0x2B73F), (0x2B81E, 0x2B81E), (0x2CEA2, 0x2CEAD),
    (0x323B0, 0x33479), (0x3D000, 0x3FC3F),
)
NEWER_CHARACTERS = frozenset(chr(point) for first, last in NEWER_THAN_UNICODE_16 for point in range(first, last + 1))


def gpt2_split_pattern(letter: str, number: str) -> regex.Pattern:
    """GPT-2's pre-tokenisation pattern, as released by OpenAI, with its letter and number classes given.

    Merges never cross the boundaries it draws: English contractions, letters with an optional leading space,
    numbers likewise, runs of other symbols, then whitespace (a run of spaces gives all but its last space to the
    run, so " word" keeps its space).
    """
    return regex.compile(
        rf"""(?V1)'s|'t|'re|'ve|'m|'ll|'d| ?{letter}+| ?{number}+| ?[^\s{letter}{number}]+|\s+(?!\S)|\s+"""
    )


_newer_class = "[" + "".join(f"\\U{first:08X}-\\U{last:08X}" for first, last in NEWER_THAN_UNICODE_16) + "]"
GPT2_SPLIT_PATTERN = gpt2_split_pattern(r"\p{L}", r"\p{N}")
GPT2_SPLIT_PATTERN_UNICODE_16 = gpt2_split_pattern(rf"[\p{{L}}--{_newer_class}]", rf"[\p{{N}}--{_newer_class}]")


def pretokenize(text: str) -> list[str]:
    """Cut text into the pieces that BPE encodes one at a time, with Unicode 16.0's letters and numbers."""
    # The Unicode 16.0 classes cost 1.5-3x the time, so they are used only for texts that hold a newer character.
    if text.isascii() or NEWER_CHARACTERS.isdisjoint(text):
        return GPT2_SPLIT_PATTERN.findall(text)
    return GPT2_SPLIT_PATTERN_UNICODE_16.findall(text)


def to_symbols(piece: str) -> list[str]:
    """The UTF-8 bytes of `piece`, each written as its vocabulary character."""
    return [BYTE_TO_UNICODE[byte] for byte in piece.encode("utf-8")]


def symbols_to_bytes(token: str) -> bytes:
    """Inverse of `to_symbols` for one vocabulary entry: the raw bytes a token stands for."""
    return bytes(UNICODE_TO_BYTE[char] for char in token)
