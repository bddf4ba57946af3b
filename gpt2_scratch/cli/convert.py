"""`gpt2-scratch convert SRC DST`: convert a GPT-2 checkpoint between layouts (see docs/conversion.md)."""

from __future__ import annotations


HELP = "convert a GPT-2 checkpoint between layouts"  # the line `gpt2-scratch --help` shows


def register(subparsers) -> None:
    from gpt2_scratch.conversion import LAYOUTS

    from . import no_progress_option

    parser = subparsers.add_parser(
        "convert",
        help=HELP,
        description="Convert a GPT-2 checkpoint (file, folder or Hub repo id) into a new folder in another layout, "
        "one tensor at a time.",
    )
    parser.add_argument("src", help="checkpoint: a file, a folder or a Hub repo id")
    parser.add_argument("dst", help="new folder to write")
    parser.add_argument("--from", dest="from_layout", choices=list(LAYOUTS), help="layout of SRC (default: detected)")
    parser.add_argument(
        "--to",
        dest="to_layout",
        choices=[name for name, layout in LAYOUTS.items() if layout.can_export],
        default="scratch",
        help="layout to write (default: scratch, this package's model)",
    )
    parser.add_argument(
        "--dtype", choices=["float32", "float16", "bfloat16", "q8_0"],
        help="dtype to write (default: SRC's); q8_0 (llama.cpp's 8-bit blocks) for the gguf layout only",
    )
    parser.add_argument(
        "--n-head", type=int, help="attention heads, for layouts that do not record them (default: width / 64)"
    )
    parser.add_argument(
        "--tokenizer", help="folder whose tokenizer to write with the weights (GPT-2's encoder.json + vocab.bpe, or "
        "a saved tokenizer); default: the one beside SRC, if any"
    )
    parser.add_argument(
        "--max-shard-size", type=float, default=2.0, help="largest safetensors shard, in GiB (default 2)"
    )
    no_progress_option(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from gpt2_scratch.conversion import convert

    overrides = {"n_head": args.n_head} if args.n_head else {}
    folder = convert(
        args.src,
        args.dst,
        from_layout=args.from_layout,
        to_layout=args.to_layout,
        dtype=args.dtype,
        max_shard_bytes=int(args.max_shard_size * 1024**3),
        tokenizer=args.tokenizer,
        **overrides,
    )
    print(f"wrote {folder}")
    return 0
