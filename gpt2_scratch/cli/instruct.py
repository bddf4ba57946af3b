"""`gpt2-scratch instruct`: instruction fine-tuning (full or LoRA), then greedy responses for the test split.

The same arguments drive examples/instruct.py, which runs under `python`, `accelerate launch` or `torchrun`.
"""

from __future__ import annotations

import argparse
import json
import os

COURSE_SETTINGS = "defaults follow the course: lr 5e-5, weight decay 0.1, batch 8, 2 epochs, constant rate, dropout 0"


HELP = "instruction fine-tuning on Alpaca-style data, then test-set responses"  # the line `gpt2-scratch --help` shows


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "instruct",
        help=HELP,
        description="Fine-tune a GPT-2 on instruction data (full or LoRA) and write greedy responses for the "
        f"test split in the course's format; {COURSE_SETTINGS}.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..instruct import LORA_TARGET_MODULES, TEMPLATES
    from . import no_progress_option

    what = parser.add_argument_group("model and data")
    what.add_argument("--model", required=True, help="a preset (tiny, small, medium, ...: random weights) or a "
                      "checkpoint: our folder, transformers' GPT-2 (e.g. openai-community/gpt2-medium), OpenAI's release")
    what.add_argument("--out-dir", required=True, help="folder for checkpoints, logs, the final model and responses")
    what.add_argument("--data", help="JSON/JSONL file, saved dataset folder or Hub dataset name "
                      "(default: the course's instruction-data.json, downloaded and verified)")
    what.add_argument("--template", choices=sorted(TEMPLATES), default="alpaca", help="prompt template")
    what.add_argument("--split", type=float, nargs="+", default=[0.85, 0.10], metavar="RATIO",
                      help="TRAIN TEST [VALIDATION] ratios in file order; validation defaults to the rest")
    what.add_argument("--tokenizer", help="folder with GPT-2's encoder.json + vocab.bpe (default: the model's own "
                      "tokenizer if saved with it, else GPT-2's, downloaded and verified)")
    what.add_argument("--dropout", type=float, default=0.0, help="dropout rate while fine-tuning (default 0.0)")
    what.add_argument("--max-length", type=int, help="truncate sequences to this many tokens (default: context)")
    what.add_argument("--mask-prompt", action="store_true", help="learn only from the response tokens")

    lora = parser.add_argument_group("LoRA")
    lora.add_argument("--lora", action="store_true", help="train LoRA adapters instead of every weight")
    lora.add_argument("--lora-rank", type=int, default=16)
    lora.add_argument("--lora-alpha", type=int, default=16)
    lora.add_argument("--lora-dropout", type=float, default=0.05)
    lora.add_argument("--lora-targets", nargs="+", default=list(LORA_TARGET_MODULES),
                      help="module names to adapt (default: %(default)s)")

    optim = parser.add_argument_group("training")
    optim.add_argument("--epochs", type=int, default=2)
    optim.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    optim.add_argument("--lr", type=float, default=5e-5, help="peak learning rate")
    optim.add_argument("--weight-decay", type=float, default=0.1)
    optim.add_argument("--warmup-steps", type=int, default=0)
    optim.add_argument("--min-lr-ratio", type=float, default=1.0, help="cosine decay floor (1.0: constant rate)")
    optim.add_argument("--grad-clip", type=float, default=None, help="clip the gradient norm (default: no clipping)")
    optim.add_argument("--batch-size", type=int, default=8, help="micro-batch size per process")
    optim.add_argument("--grad-accum-steps", type=int, default=1)
    optim.add_argument("--eval-every", type=int, default=5, help="evaluate every N steps (0: at the end only)")
    optim.add_argument("--eval-batches", type=int, default=5, help="batches per evaluation (0: all)")
    optim.add_argument("--save-every", type=int, default=0, help="checkpoint every N steps (0: at the end only)")
    optim.add_argument("--keep-last", type=int, default=2, help="checkpoints kept")
    optim.add_argument("--seed", type=int, default=123)
    optim.add_argument("--mixed-precision", choices=["auto", "no", "fp16", "bf16"], default="auto",
                       help="auto: Accelerate's configured setting, else bf16 (or fp16) on a GPU, none on CPU")
    optim.add_argument("--report-to", nargs="+", help="trackers, e.g. tensorboard wandb")
    optim.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                       help="continue from the latest checkpoint in --out-dir, or from CHECKPOINT")
    no_progress_option(optim)

    after = parser.add_argument_group("responses and judging")
    after.add_argument("--max-new-tokens", type=int, default=256)
    after.add_argument("--generation-batch-size", type=int, default=8)
    after.add_argument("--num-responses", type=int, help="respond to the first N test records only")
    after.add_argument("--judge-url", help="score the responses with this chat-completions endpoint, "
                       "e.g. http://localhost:11434/v1 (Ollama)")
    after.add_argument("--judge-model", default="llama3", help="the judge's model name (default: %(default)s)")


def resolve_mixed_precision(choice: str) -> str:
    """'auto': what `accelerate config` chose, else bf16 on GPUs that have it, fp16 on older GPUs, none on CPU."""
    if choice != "auto":
        return choice
    configured = os.environ.get("ACCELERATE_MIXED_PRECISION")
    if configured:
        return configured
    import torch

    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


def configs_from_args(args: argparse.Namespace):
    from ..instruct.finetune import InstructConfig
    from ..training import TrainConfig

    if len(args.split) not in (2, 3):
        raise ValueError(f"--split takes TRAIN TEST [VALIDATION] ratios, got {args.split}.")
    split = (*args.split, None) if len(args.split) == 2 else tuple(args.split)
    instruct = InstructConfig(
        model=args.model, data=args.data, template=args.template, split=split, tokenizer=args.tokenizer,
        dropout=args.dropout, max_length=args.max_length, mask_prompt=args.mask_prompt, lora=args.lora,
        lora_rank=args.lora_rank, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
        lora_targets=tuple(args.lora_targets), max_new_tokens=args.max_new_tokens,
        generation_batch_size=args.generation_batch_size, num_responses=args.num_responses,
        judge_url=args.judge_url, judge_model=args.judge_model,
    )
    train = TrainConfig(
        out_dir=args.out_dir, epochs=args.epochs, max_steps=args.max_steps, learning_rate=args.lr,
        weight_decay=args.weight_decay, warmup_steps=args.warmup_steps, min_lr_ratio=args.min_lr_ratio,
        grad_clip=args.grad_clip, grad_accum_steps=args.grad_accum_steps, batch_size=args.batch_size,
        eval_every=args.eval_every, eval_batches=args.eval_batches or None, save_every=args.save_every,
        keep_last=args.keep_last, seed=args.seed, mixed_precision=resolve_mixed_precision(args.mixed_precision),
        report_to=args.report_to, resume=args.resume, progress_bar=not args.no_progress,
    )
    return instruct, train


def run(args: argparse.Namespace) -> int:
    from ..instruct.finetune import finetune

    metrics = finetune(*configs_from_args(args))
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(metrics, indent=2))
    return 0
