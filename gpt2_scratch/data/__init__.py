"""The text corpus pipeline of pretraining: raw text to cached token arrays to input/target windows.

- `tokenize_corpus(source, tokenizer, cache_dir=None)`: files, folders or a `datasets` dataset -> memory-mapped ids
- `TokenWindows`, `split_tokens`, `window_loaders`: the course's sliding window, the 90/10 split, the loaders
- `corpus_files`, `read_pieces`: which files a path names, and reading them safely in pieces
"""

from .corpus import TEXT_SUFFIXES, corpus_files, read_pieces, tokenize_corpus
from .windows import TokenWindows, split_tokens, window_loaders

__all__ = ["TEXT_SUFFIXES", "corpus_files", "read_pieces", "tokenize_corpus", "TokenWindows", "split_tokens", "window_loaders"]
