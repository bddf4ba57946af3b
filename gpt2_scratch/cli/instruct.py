"""`gpt2-scratch instruct`: instruction fine-tuning (full or LoRA), then greedy responses for the test split.

Runs as is on one process, or on several under `accelerate launch -m gpt2_scratch.cli instruct ...` or torchrun.
"""

from __future__ import annotations

import argparse
import json
import os

HELP = "instruction fine-tuning on Alpaca-style data, then test-set responses"  # the line `gpt2-scratch --help` shows


def register(subparsers) -> None:
    from ..instruct.finetune import TRAINING_DEFAULTS, InstructConfig
    from ..training import TrainConfig
    from . import no_progress_option
    from .settings import add_settings

    parser = subparsers.add_parser(
        "instruct",
        help=HELP,
        description="Fine-tune a GPT-2 on instruction data (full or LoRA) and write greedy responses for the "
        "test split in the course's format; the training defaults are the course's.",
    )
    add_settings(parser.add_argument_group("model, data, LoRA and responses"), InstructConfig)
    training = parser.add_argument_group("training")
    # finetune's evaluation sample is the first validation record's prompt, answered greedily
    sampling = ("sample_prompt", "sample_max_new_tokens", "sample_top_k", "sample_temperature")
    add_settings(training, TrainConfig, TRAINING_DEFAULTS, skip=sampling)
    no_progress_option(training)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..instruct.finetune import InstructConfig, finetune
    from ..training import TrainConfig
    from .settings import settings_values

    metrics = finetune(InstructConfig(**settings_values(args, InstructConfig)),
                       TrainConfig(**settings_values(args, TrainConfig), progress_bar=not args.no_progress))
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(metrics, indent=2))
    return 0
