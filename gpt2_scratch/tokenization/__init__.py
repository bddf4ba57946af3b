"""Tokenization: GPT-2's byte-level BPE from scratch, and its Hugging Face equivalent.

- `BPETokenizer`: the from-scratch tokenizer (`from_files`, `from_gpt2`, `encode`, `decode`, `save`).
- `train_bpe`: byte-level BPE training written here, for teaching and small corpora.
- `gpt2_tokenizer`: GPT-2's tokenizer as a `PreTrainedTokenizerFast`, with a padding policy.
- `load_tokenizer`: the tokenizer of a checkpoint, a folder or a Hub id, ready for batching.
- `train_tokenizer`: train a GPT-2-style tokenizer on a corpus with `tokenizers` (the fast path).
- `to_hf_tokenizer`: any `BPETokenizer` as a `PreTrainedTokenizerFast`.
- `save_tokenizer`: `save_pretrained` that never leaves a half-written file (e.g. into a checkpoint folder).
"""

from .bpe import ENDOFTEXT, BPETokenizer
from .hf import gpt2_tokenizer, load_tokenizer, save_tokenizer, to_hf_tokenizer, train_tokenizer
from .training import train_bpe
from .vocab_files import find_vocab_files

__all__ = [
    "ENDOFTEXT",
    "BPETokenizer",
    "find_vocab_files",
    "gpt2_tokenizer",
    "load_tokenizer",
    "save_tokenizer",
    "to_hf_tokenizer",
    "train_bpe",
    "train_tokenizer",
]
