"""`gpt2-scratch card CKPT`: write the model card (README.md) of a checkpoint, without pushing anything."""

from __future__ import annotations

import argparse


HELP = "write a checkpoint's model card (README.md) from its config and recorded metrics"  # the line `gpt2-scratch --help` shows


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "card",
        help=HELP,
        description="Build the model card of a checkpoint directory from its config, provenance.json, "
        "training_args.json, metrics.json and plots, and write it as README.md. Nothing is pushed.",
    )
    parser.add_argument("checkpoint", help="checkpoint directory (written by save_pretrained)")
    parser.add_argument("--repo-id", help="the Hub repository the card will live in, USER/NAME (used in the usage "
                        "snippets and model-index); default USER/<checkpoint folder name>")
    parser.add_argument("--output", "-o", help="where to write the card (default: CHECKPOINT/README.md)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..hub_cards import write_card

    path = write_card(args.checkpoint, repo_id=args.repo_id, output=args.output)
    print(f"wrote {path}")
    return 0
