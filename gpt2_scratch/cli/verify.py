"""`gpt2-scratch verify A B`: do two checkpoints, in any layouts, hold the same model? Exit status 1 if not."""

from __future__ import annotations


HELP = "compare two checkpoints in any layouts"  # the line `gpt2-scratch --help` shows


def register(subparsers) -> None:
    from . import no_progress_option

    parser = subparsers.add_parser(
        "verify",
        help=HELP,
        description="Load two checkpoints in any layouts; report differing hyperparameters, per-tensor equality, the "
        "largest logit difference on fixed prompts and whether greedy continuations agree. Exit status 1 when they "
        "disagree.",
    )
    parser.add_argument("a", help="first checkpoint (file, folder or Hub repo id)")
    parser.add_argument("b", help="second checkpoint")
    parser.add_argument(
        "--atol", type=float, default=1e-4, help="largest logit difference that still agrees (default 1e-4)"
    )
    parser.add_argument(
        "--exact", action="store_true", help="disagree unless every hyperparameter and tensor is identical"
    )
    parser.add_argument("--n-head", type=int, help="attention heads, for layouts that do not record them")
    no_progress_option(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from gpt2_scratch.conversion import verify

    overrides = {"n_head": args.n_head} if args.n_head else {}
    report = verify(args.a, args.b, atol=args.atol, **overrides)
    print(report.summary())
    passing = ("identical",) if args.exact else ("identical", "agree")
    return 0 if report.verdict in passing else 1
