"""`gpt2-scratch chat CKPT`: chat in the terminal with an instruction-tuned checkpoint (gpt2_scratch.serving.chat)."""

from __future__ import annotations

HELP = "chat in the terminal with an instruction-tuned checkpoint"  # the line `gpt2-scratch --help` shows


def register(subparsers) -> None:
    from . import no_progress_option

    parser = subparsers.add_parser(
        "chat", help=HELP,
        description="Type a message, read the answer as it is generated; Ctrl-D or /exit ends the chat. Each turn is "
        "written in the checkpoint's chat template, the prompt format it was instruction-tuned with.",
    )
    parser.add_argument("checkpoint", help="a model folder written by instruct, or its run folder")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.0, help="0 picks the likeliest token (greedy)")
    parser.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest tokens (0: all)")
    parser.add_argument("--seed", type=int, help="seed for a repeatable sample")
    parser.add_argument("--dtype", help="decoding precision: float32 (default), bfloat16, float16 or int8")
    no_progress_option(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from gpt2_scratch.serving.chat import chat

    chat(args.checkpoint, args.max_new_tokens, args.temperature, args.top_k or None, args.seed, args.dtype)
    return 0
