"""`gpt2-scratch train-classifier --base CKPT --data FILE_OR_DATASET --out DIR`: fine-tune a checkpoint into a text
classifier (a thin layer over gpt2_scratch.classification.train_classifier)."""

from __future__ import annotations

import argparse

HELP = "fine-tune a checkpoint into a text classifier"  # the line `gpt2-scratch --help` shows


def register(subparsers) -> None:
    from gpt2_scratch.classification import FineTuningSettings

    from . import no_progress_option
    from .settings import add_settings

    parser = subparsers.add_parser(
        "train-classifier",
        help=HELP,
        description="Fine-tune CKPT on labelled texts with transformers' Trainer; save the classifier, metrics.json "
        "(accuracy before/after on every split), the settings and the loss/accuracy/confusion-matrix plots in DIR.",
    )
    add_settings(parser, FineTuningSettings)
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the classifier (must not exist, unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace DIR if it exists")
    no_progress_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gpt2_scratch.classification import FineTuningSettings, train_classifier

    from .settings import settings_values

    result = train_classifier(out=args.out, overwrite=args.overwrite, progress=not args.no_progress,
                              **settings_values(args, FineTuningSettings))
    print(result.accuracy_table())
    print(f"classifier, metrics and plots saved in {result.output_dir}")
    return 0
