"""`gpt2-scratch classify CKPT "text" ...`: label texts with a fine-tuned classifier (gpt2_scratch.classification.classify)."""

from __future__ import annotations

import argparse
import json


HELP = "label texts with a fine-tuned classifier"  # the line `gpt2-scratch --help` shows


def register(subparsers) -> None:
    from . import no_progress_option, text

    parser = subparsers.add_parser(
        "classify",
        help=HELP,
        description="Print the most probable label of each TEXT and its probability (tab-separated), or JSON.",
    )
    parser.add_argument("checkpoint", help="a classifier folder written by train-classifier")
    parser.add_argument("texts", nargs="+", metavar="TEXT", type=text)
    parser.add_argument("--json", action="store_true", help="print a JSON list of {label, score} instead")
    no_progress_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gpt2_scratch.classification import classify

    results = classify(args.texts, args.checkpoint)
    if args.json:
        print(json.dumps(results))
    else:
        for text, result in zip(args.texts, results):
            print(f"{result['label']}\t{result['score']:.4f}\t{text}")
    return 0
