"""`gpt2-scratch pretrain`: train a GPT-2 from scratch on raw text (see docs/pretraining.md).

Runs as is on one process, or under `accelerate launch` / `torchrun` on several.
"""

from __future__ import annotations

import json

HELP = "pretrain a GPT-2 from scratch on raw text"  # the line `gpt2-scratch --help` shows


def register(subparsers) -> None:
    from gpt2_scratch.modeling import PRESETS
    from gpt2_scratch.training import TrainConfig
    from gpt2_scratch.training.pretrain import DEFAULT_RUN_FOLDER

    from . import no_progress_option
    from .prepare_data import add_dataset_arguments
    from .settings import add_settings

    parser = subparsers.add_parser(
        "pretrain", help=HELP,
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
    model.add_argument("--untied-head", action="store_true",
                       help="give the output head its own weights instead of sharing the token embedding's")
    model.add_argument("--no-qkv-bias", action="store_true",
                       help="query/key/value projections without bias (as in the book)")

    training = parser.add_argument_group("training, and the sample at each evaluation")
    add_settings(training, TrainConfig, {"out_dir": DEFAULT_RUN_FOLDER})
    no_progress_option(training)
    parser.set_defaults(func=run)


def run(args) -> int:
    from gpt2_scratch.training import TrainConfig
    from gpt2_scratch.training.pretrain import pretrain

    from .prepare_data import load_source
    from .settings import settings_values

    config = TrainConfig(**settings_values(args, TrainConfig), progress_bar=not args.no_progress)
    overrides = {name: value for name, value in [("n_layer", args.n_layer), ("n_embd", args.n_embd),
                 ("n_head", args.n_head), ("n_positions", args.context)] if value is not None}
    if args.untied_head:
        overrides["tie_word_embeddings"] = False
    if args.no_qkv_bias:
        overrides["qkv_bias"] = False
    if args.dropout is not None:
        from gpt2_scratch.modeling.configuration_scratch_gpt2 import dropouts

        overrides.update(dropouts(args.dropout))
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
