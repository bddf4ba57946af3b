"""The Hugging Face side: GPT-2's tokenizer as a `PreTrainedTokenizerFast`, and training new ones with `tokenizers`.

Both build the same pipeline as the from-scratch `BPETokenizer`: GPT-2's pre-tokenisation pattern and byte
alphabet (`ByteLevel`), a BPE model with ranked merges, and special tokens that are never split. Saved with
`save_pretrained(folder)`, they load back with `AutoTokenizer.from_pretrained(folder)` without any network.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from ..provenance import is_hub_id
from ..staging import temporary_folder
from .bpe import ENDOFTEXT, BPETokenizer
from .training import corpus_texts
from .vocab_files import FILE_NAME_PAIRS

GPT2_MAX_LENGTH = 1024  # GPT-2's context window


def gpt2_tokenizer(path: str | os.PathLike | None = None, pad: str | None = "eos") -> PreTrainedTokenizerFast:
    """GPT-2's tokenizer, built from encoder.json + vocab.bpe (or vocab.json + merges.txt) in folder `path`.

    With `path=None` OpenAI's files are fetched (pinned sha256) and cached. GPT-2 has no padding token, so
    `pad` picks one for batching: "eos" reuses `<|endoftext|>` (id 50256, the vocabulary stays 50257), any
    other string such as "<|pad|>" is added as a new special token (id 50257: resize the model's embeddings
    to `len(tokenizer)`), and None leaves the tokenizer without one, as released.
    """
    return to_hf_tokenizer(BPETokenizer.from_gpt2(path), pad=pad, model_max_length=GPT2_MAX_LENGTH)


def load_tokenizer(model: str | os.PathLike, tokenizer: str | os.PathLike | None = None) -> PreTrainedTokenizerBase:
    """The tokenizer to train or run `model` with, always with a padding token (<|endoftext|> when it has none).

    `tokenizer`, when given, wins: a saved tokenizer (tokenizer.json or tokenizer_config.json), a folder of GPT-2's
    files (encoder.json + vocab.bpe or vocab.json + merges.txt), or a Hub id. Otherwise the model's own: the one
    saved in its folder, the GPT-2 files beside OpenAI's release, or a Hub repository's; a preset's random model,
    or a folder without any, gets GPT-2's (fetched and verified)."""
    source = Path(tokenizer if tokenizer is not None else model)
    saved = ("tokenizer.json", "tokenizer_config.json")
    if source.is_dir() and any((source / name).is_file() for name in saved):
        loaded = AutoTokenizer.from_pretrained(source)
    elif source.is_dir() and any((source / v).is_file() and (source / m).is_file() for v, m in FILE_NAME_PAIRS):
        loaded = gpt2_tokenizer(source)
    elif not source.exists() and is_hub_id(str(source)):
        loaded = AutoTokenizer.from_pretrained(str(source))
    elif tokenizer is not None:
        raise FileNotFoundError(
            f"{tokenizer} holds no tokenizer: give a saved tokenizer folder, one with GPT-2's encoder.json and "
            "vocab.bpe (or vocab.json and merges.txt), or a Hub id."
        )
    else:
        loaded = gpt2_tokenizer()
    if loaded.pad_token is None:
        loaded.pad_token = loaded.eos_token  # GPT-2's usual choice; attention masks keep it out of the results
    return loaded


def to_hf_tokenizer(
    bpe: BPETokenizer, pad: str | None = "eos", eos_token: str = ENDOFTEXT, model_max_length: int = GPT2_MAX_LENGTH
) -> PreTrainedTokenizerFast:
    """The `PreTrainedTokenizerFast` that encodes exactly as `bpe` does (special tokens included)."""
    if eos_token not in bpe.special_tokens:
        raise ValueError(
            f"eos_token {eos_token!r} is not a special token of this tokenizer ({sorted(bpe.special_tokens)}); "
            "pass one of them as eos_token, or add it with add_special_tokens first."
        )
    tokenizer = _byte_level_tokenizer(models.BPE(vocab=bpe.vocab, merges=bpe.merges))
    tokenizer.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in bpe.special_tokens])
    return _wrap(tokenizer, eos_token, pad, model_max_length)


def train_tokenizer(
    texts_or_files: str | os.PathLike | Iterable[str | os.PathLike],
    vocab_size: int,
    special_tokens: Sequence[str] = (ENDOFTEXT,),
    pad: str | None = "eos",
    min_frequency: int = 2,
    model_max_length: int = GPT2_MAX_LENGTH,
    show_progress: bool = True,
) -> PreTrainedTokenizerFast:
    """Train a GPT-2-style byte-level BPE tokenizer on a corpus with `tokenizers` (fast, in Rust).

    `texts_or_files` is a text, a file path (`pathlib.Path`), or an iterable mixing both: `str` items are
    texts, path objects are UTF-8 files. The special tokens get the first ids; the first one is also the
    eos/bos/unk token. `vocab_size` counts the 256 byte tokens and the special tokens. The merges learned
    are those of `train_bpe` on the same corpus.
    """
    special_tokens = list(special_tokens)
    if vocab_size < 256 + len(special_tokens):
        raise ValueError(f"vocab_size={vocab_size} is too small: it must hold 256 byte tokens + {len(special_tokens)} special.")
    if not special_tokens and pad == "eos":
        raise ValueError('pad="eos" needs an end-of-text token: pass special_tokens, or pad=None / pad="<|pad|>".')
    tokenizer = _byte_level_tokenizer(models.BPE())
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[AddedToken(token, special=True, normalized=False) for token in special_tokens],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte, seen in the corpus or not
        show_progress=show_progress,
    )
    tokenizer.train_from_iterator(corpus_texts(texts_or_files, special_tokens), trainer=trainer)
    return _wrap(tokenizer, special_tokens[0] if special_tokens else None, pad, model_max_length)


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, directory: str | os.PathLike) -> Path:
    """`save_pretrained` into `directory` (created if needed, e.g. a checkpoint folder) without ever leaving a
    half-written file: the files are written in a temporary folder inside it, then each renamed into place."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with temporary_folder(directory / "tokenizer") as staging:
        tokenizer.save_pretrained(staging)
        for written in staging.iterdir():
            os.replace(written, directory / written.name)
    return directory


def _byte_level_tokenizer(model: models.BPE) -> Tokenizer:
    tokenizer = Tokenizer(model)
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)  # GPT-2's split pattern + byte alphabet
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    return tokenizer


def _wrap(tokenizer: Tokenizer, eos_token: str | None, pad: str | None, model_max_length: int) -> PreTrainedTokenizerFast:
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=eos_token,
        eos_token=eos_token,
        unk_token=eos_token,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,  # decode must give back the exact text
    )
    if pad == "eos":
        wrapped.pad_token = eos_token
    elif pad is not None:
        wrapped.add_special_tokens({"pad_token": pad})
    return wrapped
