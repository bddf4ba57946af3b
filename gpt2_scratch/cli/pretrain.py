"""`gpt2-scratch pretrain`: train a GPT-2 from scratch on raw text (see docs/pretraining.md).

Runs as is on one process, or under `accelerate launch` / `torchrun` on several.
"""

from __future__ import annotations

import json


def register(subparsers) -> None:
    from gpt2_scratch.modeling import PRESETS

    from . import no_progress_option, text
    from .prepare_data import add_dataset_arguments

    parser = subparsers.add_parser(
        "pretrain", help="pretrain a GPT-2 from scratch on raw text",
        description="Pretrain a ScratchGPT2 on text files, folders or a datasets dataset (default: the-verdict), "
        "with evaluation, samples, plots and resumable checkpoints.",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--data", nargs="+", metavar="PATH", help="text files or folders (default: the-verdict, downloaded)")
    add_dataset_arguments(data)
    data.add_argument("--max-length", type=int, help="window length in tokens (default: the model's context)")
    data.add_argument("--stride", type=int, help="distance between window starts (default: max-length)")
    data.add_argument("--train-ratio", type=float, default=0.9, help="share of tokens for training (default: 0.9)")
    data.add_argument("--tokenizer", metavar="PATH", help="GPT-2 tokenizer folder (default: OpenAI's, downloaded)")
    data.add_argument("--cache-dir", help="token cache folder (default: ~/.cache/gpt2_scratch/tokens)")
    data.add_argument("--num-proc", type=int, default=1, help="processes tokenising the corpus (default: 1)")

    model = parser.add_argument_group("model")
    model.add_argument("--preset", default="tiny", choices=list(PRESETS), help="model size (default: tiny)")
    model.add_argument("--n-layer", type=int, help="override the preset's number of blocks")
    model.add_argument("--n-embd", type=int, help="override the preset's width")
    model.add_argument("--n-head", type=int, help="override the preset's attention heads")
    model.add_argument("--context", type=int, help="override the preset's context length (n_positions)")
    model.add_argument("--dropout", type=float, help="dropout on embeddings, attention and residuals")

    training = parser.add_argument_group("training")
    training.add_argument("--out", default="runs/pretrain", help="run folder (default: runs/pretrain)")
    training.add_argument("--epochs", type=int, default=10)
    training.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    training.add_argument("--batch-size", type=int, default=8, help="windows per batch and process (default: 8)")
    training.add_argument("--grad-accum-steps", type=int, default=1)
    training.add_argument("--lr", type=float, default=4e-4, help="peak learning rate (default: 4e-4)")
    training.add_argument("--weight-decay", type=float, default=0.1)
    training.add_argument("--warmup-steps", type=int, default=0)
    training.add_argument("--min-lr-ratio", type=float, default=0.1, help="final lr / peak lr of the cosine decay")
    training.add_argument("--grad-clip", type=float, default=1.0, help="max gradient norm (0: off)")
    training.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default="no")
    training.add_argument("--seed", type=int, default=123)
    training.add_argument("--eval-every", type=int, default=50, help="steps between evaluations (0: at the end)")
    training.add_argument("--eval-batches", type=int, default=5, help="batches per evaluation (0: all)")
    training.add_argument("--save-every", type=int, default=0, help="steps between checkpoints (0: at the end)")
    training.add_argument("--keep-last", type=int, default=2, help="checkpoints kept")
    training.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                          help="continue the run in --out from its latest checkpoint (or from CHECKPOINT)")
    training.add_argument("--report-to", nargs="+", help="trackers: tensorboard, wandb, ...")
    no_progress_option(training)

    sampling = parser.add_argument_group("sampling at each evaluation")
    sampling.add_argument("--prompt", default="Every effort moves you", type=text)
    sampling.add_argument("--max-new-tokens", type=int, default=25)
    sampling.add_argument("--top-k", type=int, default=25)
    sampling.add_argument("--temperature", type=float, default=1.4)
    parser.set_defaults(func=run)


def run(args) -> int:
    from gpt2_scratch.training import TrainConfig
    from gpt2_scratch.training.pretrain import pretrain

    from .prepare_data import load_source

    config = TrainConfig(
        out_dir=args.out, epochs=args.epochs, max_steps=args.max_steps, learning_rate=args.lr,
        weight_decay=args.weight_decay, warmup_steps=args.warmup_steps, min_lr_ratio=args.min_lr_ratio,
        grad_clip=args.grad_clip or None, grad_accum_steps=args.grad_accum_steps, batch_size=args.batch_size,
        eval_every=args.eval_every, eval_batches=args.eval_batches or None, save_every=args.save_every,
        keep_last=args.keep_last, seed=args.seed, mixed_precision=args.mixed_precision, report_to=args.report_to,
        resume=args.resume, sample_prompt=args.prompt, sample_max_new_tokens=args.max_new_tokens,
        sample_top_k=args.top_k, sample_temperature=args.temperature, progress_bar=not args.no_progress,
    )
    overrides = {name: value for name, value in [("n_layer", args.n_layer), ("n_embd", args.n_embd),
                 ("n_head", args.n_head), ("n_positions", args.context)] if value is not None}
    if args.dropout is not None:
        overrides.update(embd_pdrop=args.dropout, attn_pdrop=args.dropout, resid_pdrop=args.dropout)
    tokenizer = None
    if args.tokenizer:
        from gpt2_scratch.tokenization import gpt2_tokenizer

        tokenizer = gpt2_tokenizer(args.tokenizer)
    result = pretrain(config, data=load_source(args.data, args), preset=args.preset, model_overrides=overrides,
                      max_length=args.max_length, stride=args.stride, train_ratio=args.train_ratio,
                      tokenizer=tokenizer, text_column=args.text_column, cache_dir=args.cache_dir,
                      num_proc=args.num_proc)
    if "plots" in result:  # only the main process reports
        summary = {k: v for k, v in result.items() if k not in ("sample", "plots")}
        print(json.dumps(summary, indent=2))
        print(f"\nsample: {config.sample_prompt}{result.get('sample', '')}")
        print(f"\ncheckpoint: {result['checkpoint']}")
        print("plots: " + ", ".join(result["plots"].values()))
        print(f'continue a prompt: gpt2-scratch generate {result["checkpoint"]} "{config.sample_prompt}"')
    return 0
