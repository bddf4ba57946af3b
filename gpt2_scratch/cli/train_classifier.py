"""`gpt2-scratch train-classifier --base CKPT --data FILE_OR_DATASET --out DIR`: fine-tune a checkpoint into a text
classifier (a thin layer over gpt2_scratch.classification.train_classifier)."""

from __future__ import annotations

import argparse

POLICY_HELP = (
    "what stays frozen: all-but-head (train the head only), all-but-last-block (the course's: last block + final "
    "LayerNorm + head; default), all-but-last-N-blocks (e.g. all-but-last-2-blocks), nothing (train everything), "
    "lora (LoRA adapters + head)"
)


HELP = "fine-tune a checkpoint into a text classifier"  # the line `gpt2-scratch --help` shows


def register(subparsers) -> None:
    from . import no_progress_option

    parser = subparsers.add_parser(
        "train-classifier",
        help=HELP,
        description="Fine-tune CKPT on labelled texts with transformers' Trainer; save the classifier, metrics.json "
        "(accuracy before/after on every split), the settings and the loss/accuracy/confusion-matrix plots in DIR.",
    )
    parser.add_argument("--base", required=True, metavar="CKPT", help="checkpoint folder (causal LM or converted OpenAI weights)")
    parser.add_argument(
        "--data",
        required=True,
        metavar="FILE_OR_DATASET",
        help="'sms-spam', a CSV/TSV/JSON/JSONL/Parquet file (split 70/10/20), a folder of *train*/*val*/*test* "
        "files, a save_to_disk folder, or a datasets name",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the classifier (must not exist, unless --overwrite)")
    parser.add_argument("--freeze", default="all-but-last-block", metavar="POLICY", help=POLICY_HELP)
    parser.add_argument("--epochs", type=float, default=5.0)
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps, whatever --epochs says")
    parser.add_argument("--lr", type=float, default=5e-5, dest="learning_rate", help="AdamW learning rate")
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--eval-batch-size", type=int, default=32)
    parser.add_argument("--lr-scheduler", default="constant", help="a transformers scheduler name, e.g. linear, cosine")
    parser.add_argument("--max-length", type=int, help="tokens kept per text (default: the model's context)")
    parser.add_argument("--dropout", type=float, help="override the checkpoint's dropout rates (the course used 0)")
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument(
        "--labels", type=lambda s: s.split(","), dest="label_names",
        help="comma-separated label names, in id order (integer labels index into them), e.g. ham,spam",
    )
    parser.add_argument("--tokenizer", help="tokenizer folder (default: the base checkpoint's, else GPT-2's)")
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--lora-alpha", type=int, default=16)
    parser.add_argument("--overwrite", action="store_true", help="replace DIR if it exists")
    no_progress_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gpt2_scratch.classification import train_classifier

    settings = {
        name: getattr(args, name)
        for name in (
            "freeze", "epochs", "max_steps", "learning_rate", "weight_decay", "batch_size", "eval_batch_size",
            "lr_scheduler", "max_length", "dropout", "seed", "text_column", "label_column", "label_names", "tokenizer",
            "lora_rank", "lora_alpha",
        )
    }
    result = train_classifier(
        args.base, args.data, args.out, overwrite=args.overwrite, progress=not args.no_progress, **settings
    )
    print(result.accuracy_table())
    print(f"classifier, metrics and plots saved in {result.output_dir}")
    return 0
