"""`gpt2-scratch tokenize TEXT`: print the token ids of a text (or the text of ids) with the from-scratch tokenizer."""

from __future__ import annotations

import argparse


HELP = "print the GPT-2 token ids of a text, or decode ids back to text"  # the line `gpt2-scratch --help` shows


def register(subparsers) -> None:
    from . import no_progress_option, text

    parser = subparsers.add_parser(
        "tokenize",
        help=HELP,
        description="Encode TEXT with the from-scratch byte-level BPE tokenizer and print its ids, space-separated. "
        "With --decode, TEXT is a list of ids and the decoded text is printed.",
    )
    parser.add_argument("text", nargs="+", type=text,
                        help="the text to encode (words are joined with spaces), or ids with --decode")
    parser.add_argument("--tokenizer", help="folder with encoder.json + vocab.bpe or vocab.json + merges.txt "
                        "(default: GPT-2's files, fetched with pinned sha256 and cached)")
    parser.add_argument("--allow-special", action="store_true",
                        help="encode special-token text such as <|endoftext|> as the special token, not as plain text")
    parser.add_argument("--show-tokens", action="store_true", help="print each id with the text of its token")
    parser.add_argument("--decode", action="store_true", help="decode the given ids instead of encoding")
    no_progress_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..tokenization import BPETokenizer

    tokenizer = BPETokenizer.from_gpt2(args.tokenizer)
    if args.decode:
        try:
            ids = [int(word) for word in args.text]
        except ValueError as error:
            raise ValueError(f"--decode takes integer token ids ({error})") from error
        print(tokenizer.decode(ids))
        return 0
    ids = tokenizer.encode(" ".join(args.text), allowed_special="all" if args.allow_special else ())
    if args.show_tokens:
        for token_id in ids:
            print(f"{token_id}\t{tokenizer.decode([token_id])!r}")
    else:
        print(" ".join(map(str, ids)))
    return 0
