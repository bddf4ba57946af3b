"""Byte-level BPE training, written to be read.

Start from the 256 byte tokens. Count every adjacent pair of tokens inside the words of the corpus (words
as GPT-2's pre-tokenisation pattern cuts them, so merges never cross a word boundary), merge the most
frequent pair into a new token, and repeat until the vocabulary is full. The list of merges, in the order
they were learned, is the tokenizer: encoding replays them by rank.

Each distinct word is stored once with its count, and pair counts are updated only for the words that
contain the merged pair, which keeps training on a short story to well under a second.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ..progress import progress_bar
from .bpe import ENDOFTEXT, BPETokenizer, merge_pair, special_token_pattern
from .byte_level import BYTE_TO_UNICODE, pretokenize, to_symbols
from .text_files import read_pieces

Pair = tuple[str, str]


def train_bpe(
    texts_or_files: str | os.PathLike | Iterable[str | os.PathLike],
    vocab_size: int,
    special_tokens: Sequence[str] = (ENDOFTEXT,),
    min_frequency: int = 2,
    show_progress: bool = True,
) -> BPETokenizer:
    """Learn a byte-level BPE tokenizer of at most `vocab_size` tokens from a corpus (see `corpus_texts`).

    Ids 0-255 are the bytes (in GPT-2's order), then the merged tokens in the order learned, then the special
    tokens. Special-token text in the corpus is cut out, never learned from. Training stops early when no
    pair occurs `min_frequency` times.
    """
    special_tokens = list(special_tokens)
    n_learned = vocab_size - 256 - len(special_tokens)
    if n_learned < 0:
        raise ValueError(f"vocab_size={vocab_size} is too small: it must hold 256 byte tokens + {len(special_tokens)} special.")
    words, counts = _count_words(corpus_texts(texts_or_files, special_tokens))

    vocab = {char: token_id for token_id, char in enumerate(BYTE_TO_UNICODE.values())}
    merges: list[Pair] = []
    # Ties between equally frequent pairs go to the pair of older tokens: bytes (by character), then merged
    # tokens in the order learned. This is the rule of `tokenizers`' trainer, so both learn the same merges.
    age = {char: rank for rank, char in enumerate(sorted(vocab))}
    pair_counts, words_with = _count_pairs(words, counts)
    progress = progress_bar(total=n_learned, desc="learning merges", disable=not show_progress)
    while len(vocab) < 256 + n_learned and pair_counts:
        top_count = max(pair_counts.values())
        if top_count < min_frequency:
            break
        tied = [pair for pair, count in pair_counts.items() if count == top_count]
        best = min(tied, key=lambda pair: (age[pair[0]], age[pair[1]]))
        merges.append(best)
        new_token = best[0] + best[1]
        if new_token not in vocab:  # two different pairs can spell the same token: it keeps its first id
            vocab[new_token] = age[new_token] = len(vocab)
            progress.update()
        for i in words_with.pop(best):
            _replace_word(i, merge_pair(words[i], best), words, counts, pair_counts, words_with)
        del pair_counts[best]
    progress.close()

    for token in special_tokens:
        vocab[token] = len(vocab)
    return BPETokenizer(vocab, merges, source="train_bpe")


def corpus_texts(texts_or_files: str | os.PathLike | Iterable[str | os.PathLike], special_tokens: Sequence[str]) -> Iterator[str]:
    """The training corpus as texts. `texts_or_files` is a text, a file path, or an iterable mixing both: `str`
    items are texts, path objects (`pathlib.Path`) UTF-8 files, read in pieces cut where tokenisation is unaffected.
    Special-token text is cut out, so no merge is ever learned from it.

    Raises ValueError, once every text is read, when the corpus holds nothing but whitespace and special tokens:
    a tokenizer learned from it would know the 256 bytes and nothing else.
    """
    special = special_token_pattern(special_tokens) if special_tokens else None
    holds_text = False
    for text in _read_corpus(texts_or_files):
        for part in special.split(text)[::2] if special else [text]:
            holds_text = holds_text or not (part.isspace() or part == "")
            yield part
    if not holds_text:
        raise ValueError(
            f"{describe_corpus(texts_or_files)} holds no text (nothing but whitespace"
            f"{' and special tokens' if special else ''}), so there is nothing to learn merges from. "
            "Train on files that hold text."
        )


def describe_corpus(texts_or_files: str | os.PathLike | Iterable[str | os.PathLike]) -> str:
    """The training corpus as an error message names it: its files, and how many texts."""
    items = [texts_or_files] if isinstance(texts_or_files, (str, os.PathLike)) else texts_or_files
    if not isinstance(items, Sequence):  # an iterator, already read
        return "the training corpus"
    files = [str(item) for item in items if isinstance(item, os.PathLike)]
    texts = len(items) - len(files)
    named = [*files, *([f"{texts} text{'s' if texts > 1 else ''}"] if texts else [])]
    return f"the training corpus ({', '.join(named) or 'empty'})"


def _read_corpus(texts_or_files: str | os.PathLike | Iterable[str | os.PathLike]) -> Iterator[str]:
    items = [texts_or_files] if isinstance(texts_or_files, (str, os.PathLike)) else texts_or_files
    for item in items:
        if isinstance(item, str):
            yield item
        elif isinstance(item, os.PathLike):
            path = Path(item)
            if not path.is_file():
                raise FileNotFoundError(f"training file {path} does not exist.")
            yield from read_pieces(path)
        else:
            raise TypeError(f"training input must be str texts or pathlib.Path files, got {type(item).__name__}.")


def _count_words(texts: Iterable[str]) -> tuple[list[list[str]], list[int]]:
    """Each distinct word of the corpus as a list of byte tokens, and how often it occurs."""
    word_counts: Counter[str] = Counter()
    for text in texts:
        word_counts.update(pretokenize(text))
    return [to_symbols(word) for word in word_counts], list(word_counts.values())


def _count_pairs(words: list[list[str]], counts: list[int]) -> tuple[Counter[Pair], defaultdict[Pair, set[int]]]:
    """How often each adjacent pair occurs in the corpus, and which words hold it."""
    pair_counts: Counter[Pair] = Counter()
    words_with: defaultdict[Pair, set[int]] = defaultdict(set)
    for i, word in enumerate(words):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += counts[i]
            words_with[pair].add(i)
    return pair_counts, words_with


def _replace_word(i, new_word, words, counts, pair_counts, words_with) -> None:
    """Swap word i for its merged form, moving its pair counts from the old pairs to the new ones."""
    for pair in zip(words[i], words[i][1:]):
        pair_counts[pair] -= counts[i]
        if pair_counts[pair] <= 0:
            del pair_counts[pair]
    words[i] = new_word
    for pair in zip(new_word, new_word[1:]):
        pair_counts[pair] += counts[i]
        words_with[pair].add(i)
