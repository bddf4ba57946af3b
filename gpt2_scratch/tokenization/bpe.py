"""GPT-2's byte-level BPE tokenizer, written from scratch.

Encoding a text takes three steps:
1. special tokens (`<|endoftext|>`, ...) that the caller allows are cut out and map straight to their ids;
2. the rest is cut into words by GPT-2's pre-tokenisation pattern;
3. each word becomes its UTF-8 bytes, and adjacent pieces are merged again and again, always taking the
   pair whose merge was learned first (lowest rank), until no learned merge applies. The pieces left are
   vocabulary tokens. Words repeat a lot, so each word's ids are cached.
Decoding joins the bytes of the tokens and reads them as UTF-8.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from operator import index
from pathlib import Path

import regex

from .byte_level import BYTE_TO_UNICODE, pretokenize, symbols_to_bytes, to_symbols
from .vocab_files import check_vocab_matches_merges, find_vocab_files, read_merges, read_vocab, write_vocab_files

ENDOFTEXT = "<|endoftext|>"
CACHE_LIMIT = 100_000  # words; the cache is emptied when it grows past this, so memory stays bounded


class BPETokenizer:
    """A byte-level BPE tokenizer: a vocabulary (token -> id), ranked merges and special tokens.

    Special tokens are the vocabulary entries that no merge produces and that are not single bytes (GPT-2
    has one, `<|endoftext|>`), plus any added with `add_special_tokens`.
    """

    def __init__(self, vocab: dict[str, int], merges: Sequence[tuple[str, str]], source: str = "tokenizer"):
        check_vocab_matches_merges(vocab, list(merges), source)
        self.vocab = dict(vocab)
        self.merges = list(merges)
        self.merge_ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        reachable = set(BYTE_TO_UNICODE.values()) | {left + right for left, right in self.merges}
        self.special_tokens = {token: token_id for token, token_id in vocab.items() if token not in reachable}
        self.id_to_bytes = {
            token_id: token.encode("utf-8") if token in self.special_tokens else symbols_to_bytes(token)
            for token, token_id in vocab.items()
        }
        self.cache: dict[str, list[int]] = {}
        self._special_pattern_for: dict[frozenset[str], regex.Pattern] = {}

    @classmethod
    def from_files(cls, vocab_path: str | os.PathLike, merges_path: str | os.PathLike) -> BPETokenizer:
        """Load encoder.json + vocab.bpe (OpenAI) or vocab.json + merges.txt (Hugging Face)."""
        return cls(read_vocab(vocab_path), read_merges(merges_path), source=f"{vocab_path} + {merges_path}")

    @classmethod
    def from_gpt2(cls, path: str | os.PathLike | None = None) -> BPETokenizer:
        """GPT-2's tokenizer from a folder holding its files, or fetched (pinned sha256) when `path` is None."""
        return cls.from_files(*find_vocab_files(path))

    def save(self, directory: str | os.PathLike) -> Path:
        """Write vocab.json + merges.txt into `directory`; `from_files` reads them back."""
        write_vocab_files(directory, self.vocab, self.merges)
        return Path(directory)

    @property
    def vocab_size(self) -> int:
        return max(self.id_to_bytes) + 1

    def add_special_tokens(self, tokens: Iterable[str]) -> list[int]:
        """Give each new special token the next free id; return the ids of all of `tokens`."""
        for token in tokens:
            if token not in self.vocab:
                self.vocab[token] = self.vocab_size
                self.special_tokens[token] = self.vocab[token]
                self.id_to_bytes[self.vocab[token]] = token.encode("utf-8")
            elif token not in self.special_tokens:
                raise ValueError(f"{token!r} is already an ordinary token of the vocabulary; it cannot become special.")
        self._special_pattern_for.clear()
        return [self.special_tokens[token] for token in tokens]

    def encode(self, text: str, allowed_special: Iterable[str] | str = ()) -> list[int]:
        """Token ids of `text`.

        Special-token text in the input is plain text unless named in `allowed_special` (or "all" of them
        are allowed), so text from users cannot smuggle in control tokens by accident.
        """
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}; decode bytes to str first.")
        allowed = self._allowed_special(allowed_special)
        if not allowed:
            return self.encode_ordinary(text)
        ids = []
        # With a capturing group, split() returns [plain, special, plain, special, ..., plain].
        for position, chunk in enumerate(self._special_pattern(allowed).split(text)):
            if position % 2:
                ids.append(self.special_tokens[chunk])
            else:
                ids.extend(self.encode_ordinary(chunk))
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of `text`, with special-token text treated as plain text."""
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(f"the text cannot be written as UTF-8 ({error}); it holds a lone surrogate.") from error
        ids = []
        for word in pretokenize(text):
            ids.extend(self._encode_word(word))
        return ids

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """The text of `ids`. Bytes that are not valid UTF-8 (a token sequence cut mid-character) become
        U+FFFD, unless `errors="strict"`."""
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        pieces = []
        for token_id in ids:
            token_id = index(token_id)  # accepts numpy / torch integers, refuses floats and strings
            if token_id not in self.id_to_bytes:
                raise ValueError(f"token id {token_id} is not in the vocabulary (ids 0 to {self.vocab_size - 1}).")
            pieces.append(self.id_to_bytes[token_id])
        return b"".join(pieces)

    def _encode_word(self, word: str) -> list[int]:
        if word not in self.cache:
            if len(self.cache) >= CACHE_LIMIT:
                self.cache.clear()
            self.cache[word] = [self.vocab[token] for token in self._merge(to_symbols(word))]
        return self.cache[word]

    def _merge(self, symbols: list[str]) -> list[str]:
        """Apply the lowest-ranked applicable merge, everywhere it occurs, until none applies."""
        no_rank = len(self.merge_ranks)
        while len(symbols) > 1:
            pair = min(zip(symbols, symbols[1:]), key=lambda p: self.merge_ranks.get(p, no_rank))
            if pair not in self.merge_ranks:
                break
            symbols = merge_pair(symbols, pair)
        return symbols

    def _allowed_special(self, allowed_special: Iterable[str] | str) -> frozenset[str]:
        if allowed_special == "all":
            return frozenset(self.special_tokens)
        if isinstance(allowed_special, str):
            raise TypeError('allowed_special must be "all" or a collection of special tokens, e.g. {"<|endoftext|>"}.')
        allowed = frozenset(allowed_special)
        unknown = allowed - self.special_tokens.keys()
        if unknown:
            raise ValueError(
                f"{sorted(unknown)} are not special tokens of this tokenizer (it has {sorted(self.special_tokens)}); "
                "add them with add_special_tokens first."
            )
        return allowed

    def _special_pattern(self, allowed: frozenset[str]) -> regex.Pattern:
        if allowed not in self._special_pattern_for:
            self._special_pattern_for[allowed] = special_token_pattern(allowed)
        return self._special_pattern_for[allowed]


def special_token_pattern(tokens: Iterable[str]) -> regex.Pattern:
    """Matches any of `tokens` (at least one), as a capturing group, so `split` keeps them between the plain
    chunks: [plain, special, plain, ..., plain]."""
    # Longest first, so a special token that starts with another one wins.
    return regex.compile("(" + "|".join(regex.escape(token) for token in sorted(tokens, key=len, reverse=True)) + ")")


def merge_pair(symbols: list[str], pair: tuple[str, str]) -> list[str]:
    """`symbols` with every occurrence of `pair`, left to right, joined into one symbol."""
    merged, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            merged.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            merged.append(symbols[i])
            i += 1
    return merged
