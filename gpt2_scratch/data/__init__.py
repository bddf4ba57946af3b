"""The text corpus pipeline of pretraining: raw text to sharded token files to input/target windows.

- `prepare_corpus(source, out_dir, tokenizer, num_proc)`: files, folders, globs or a `datasets` dataset -> token
  shards + index.json, in bounded memory, on several processes, resumable; `tokenize_corpus` does it into a cache
- `TokenShards`: the shards read back, memory-mapped, as one sequence
- `TokenWindows`, `split_tokens`, `window_loaders`: the course's sliding window, the 90/10 split, the loaders
- `corpus_files`, `read_pieces`: which files a path names, and reading them safely in pieces
"""

from .corpus import TEXT_SUFFIXES, corpus_files, read_pieces
from .prepare import TokenShards, prepare_corpus, tokenize_corpus
from .windows import TokenWindows, split_tokens, window_loaders

__all__ = ["TEXT_SUFFIXES", "corpus_files", "read_pieces", "prepare_corpus", "tokenize_corpus", "TokenShards",
           "TokenWindows", "split_tokens", "window_loaders"]
