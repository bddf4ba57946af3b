"""`gpt2-scratch train-tokenizer FILE... -o DIR`: train a GPT-2-style byte-level BPE tokenizer and save it."""

from __future__ import annotations

import argparse
from pathlib import Path


HELP = "train a byte-level BPE tokenizer on text files and save it in the Hugging Face format"  # the line `gpt2-scratch --help` shows


def register(subparsers) -> None:
    from . import no_progress_option

    parser = subparsers.add_parser(
        "train-tokenizer",
        help=HELP,
        description="Train a GPT-2-style byte-level BPE tokenizer on UTF-8 text files with `tokenizers` (or with "
        "the from-scratch trainer) and save it so AutoTokenizer.from_pretrained(OUTPUT) loads it.",
    )
    parser.add_argument("files", nargs="+", type=Path, help="UTF-8 text files to train on")
    parser.add_argument("--output", "-o", required=True, help="folder to save the tokenizer in")
    parser.add_argument("--vocab-size", type=int, required=True, help="tokens in all: 256 bytes + merges + special")
    parser.add_argument("--special-token", action="append", dest="special_tokens",
                        help="a special token (repeat for more; default <|endoftext|>); the first is eos/bos/unk")
    parser.add_argument("--pad", default="eos",
                        help='padding token: "eos" (reuse the first special token), a new token such as "<|pad|>", '
                        'or "none"')
    parser.add_argument("--from-scratch", action="store_true",
                        help="use the from-scratch Python trainer (slow, for small corpora) instead of `tokenizers`")
    no_progress_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..tokenization import ENDOFTEXT, save_tokenizer, to_hf_tokenizer, train_bpe, train_tokenizer

    special_tokens = args.special_tokens or [ENDOFTEXT]
    pad = None if args.pad == "none" else args.pad
    if args.from_scratch:
        bpe = train_bpe(args.files, args.vocab_size, special_tokens)
        tokenizer = to_hf_tokenizer(bpe, pad=pad, eos_token=special_tokens[0])
    else:
        tokenizer = train_tokenizer(args.files, args.vocab_size, special_tokens, pad=pad)
    save_tokenizer(tokenizer, args.output)
    print(f"saved a {len(tokenizer)}-token tokenizer to {args.output}")
    return 0
