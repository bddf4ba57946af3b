"""`gpt2-scratch push CKPT USER/REPO`: publish a checkpoint to the Hugging Face Hub in one commit."""

from __future__ import annotations

import argparse


HELP = "publish a checkpoint (weights, code, tokenizer, model card, plots) to the Hugging Face Hub"  # the line `gpt2-scratch --help` shows


def register(subparsers) -> None:
    from . import no_progress_option

    parser = subparsers.add_parser(
        "push",
        help=HELP,
        description="Stage a clean copy of the checkpoint (safetensors, config with auto_map, modeling code, "
        "tokenizer, generation config, README.md model card, plots) and upload it in one commit. The token comes "
        "from HF_TOKEN or `hf auth login`, the Hub from HF_ENDPOINT (default huggingface.co); it is checked, with "
        "the right to write to USER, before anything is staged. The weights are checked and copied, not loaded.",
    )
    parser.add_argument("checkpoint", help="checkpoint directory (written by save_pretrained)")
    parser.add_argument("repo_id", metavar="USER/REPO", help="the Hub repository, created if it does not exist")
    visibility = parser.add_mutually_exclusive_group()
    visibility.add_argument("--private", dest="private", action="store_true", default=None,
                            help="create the repository private (ignored if it exists)")
    visibility.add_argument("--public", dest="private", action="store_false", help="create it public")
    parser.add_argument("--revision", help="branch to commit to (created from main if missing)")
    parser.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    parser.add_argument("--message", "-m", help="commit message")
    parser.add_argument("--max-shard-size", default="1GB", help="largest safetensors file before sharding "
                        "(default 1GB)")
    no_progress_option(parser, " (staging, uploading)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..hub_cards import publish

    commit = publish(args.checkpoint, args.repo_id, private=args.private, revision=args.revision,
                     create_pr=args.create_pr, commit_message=args.message, max_shard_size=args.max_shard_size,
                     progress=not args.no_progress)
    print(f"pushed {args.checkpoint} to {args.repo_id}: {commit.pr_url or commit.commit_url}")
    return 0
