"""`gpt2-scratch serve CKPT`: an OpenAI-compatible HTTP server for a checkpoint (gpt2_scratch.serving.serve)."""

from __future__ import annotations

HELP = "serve a checkpoint over HTTP to any OpenAI client"  # the line `gpt2-scratch --help` shows


def register(subparsers) -> None:
    from . import no_progress_option

    parser = subparsers.add_parser(
        "serve", help=HELP,
        description="Serve CKPT with OpenAI's API: /v1/completions and /v1/chat/completions (streaming too) for a "
        "causal LM, its concurrent requests decoded together (continuous batching); /v1/classify for a classifier; "
        "/v1/models and /health. Stop it with Ctrl-C.",
    )
    parser.add_argument("checkpoint", help="a model folder, or a run folder (its latest checkpoint is used)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-batch-size", type=int, default=16, help="sequences decoded together at most")
    parser.add_argument("--dtype", help="decoding precision: float32 (default), bfloat16, float16 or int8 "
                        "(gpt2_scratch.precision); a classifier: float32, bfloat16 or float16")
    parser.add_argument("--name", help="the model name clients ask for (default: the checkpoint folder's name)")
    no_progress_option(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from gpt2_scratch.serving import serve

    serve(args.checkpoint, args.host, args.port, args.max_batch_size, args.dtype, args.name)
    return 0
