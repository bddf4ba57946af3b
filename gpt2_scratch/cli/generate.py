"""`gpt2-scratch generate CKPT "prompt"`: continue a prompt with a checkpoint, printing tokens as they come."""

from __future__ import annotations


HELP = "continue a prompt with a trained checkpoint"  # the line `gpt2-scratch --help` shows


def register(subparsers) -> None:
    from . import no_progress_option, text

    parser = subparsers.add_parser(
        "generate", help=HELP,
        description="Sample a continuation of PROMPT with top-k and temperature (or greedily), streaming it as it "
        "is generated, with the lean decoding loop of gpt2_scratch.generation.",
    )
    parser.add_argument("checkpoint", help="a model folder, or a run folder (its latest checkpoint is used)")
    parser.add_argument("prompt", type=text)
    parser.add_argument("--max-new-tokens", type=int, default=50)
    parser.add_argument("--top-k", type=int, default=25, help="sample among the k likeliest tokens (0: all)")
    parser.add_argument("--temperature", type=float, default=1.0, help="0 picks the likeliest token (greedy)")
    parser.add_argument("--seed", type=int, help="seed for a repeatable sample")
    parser.add_argument(
        "--dtype", default="float32", metavar="float32|bfloat16|float16|int8",
        help="precision to decode in: bfloat16 and float16 halve the bytes read per token, int8 (weights only, one "
        "scale per output row) quarters them (default float32)",
    )
    no_progress_option(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from gpt2_scratch.training.decoding_models import generate_text

    generate_text(
        args.checkpoint, args.prompt, args.max_new_tokens, args.top_k, args.temperature, args.seed, stream=True,
        precision=args.dtype,
    )
    return 0
