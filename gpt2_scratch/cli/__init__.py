"""The `gpt2-scratch` command line: one thin sub-command per library function.

Each sub-command lives in its own module of this package and exposes `register(subparsers)`, which adds
an argparse parser whose `func` default receives the parsed arguments. Add a command by writing such a
module and naming it in COMMAND_MODULES.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

COMMAND_MODULES = [
    "pretrain",
    "generate",
    "card",
    "push",
    "convert",
    "verify",
    "train_classifier",
    "classify",
    "tokenize",
    "train_tokenizer",
    "instruct",
    "evaluate",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpt2-scratch", description="GPT-2 from scratch, on the Hugging Face stack.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = notice_printer(args.command, warnings.showwarning)
            return args.func(args) or 0
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        # Errors raised by the library are written for people: print them without a traceback.
        print(f"gpt2-scratch {args.command}: error: {error}", file=sys.stderr)
        return 2


def notice_printer(command: str, show_other_warnings):
    """A `warnings.showwarning` that prints the library's notices to its users (assumed hyperparameters) as one line,
    like its errors, and leaves every other warning to `show_other_warnings`."""
    from gpt2_scratch.conversion.engine import AssumedHyperparametersWarning, IncompleteCheckpointWarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, (AssumedHyperparametersWarning, IncompleteCheckpointWarning)):
            print(f"gpt2-scratch {command}: warning: {message}", file=sys.stderr)
        else:
            show_other_warnings(message, category, filename, lineno, file, line)

    return show


if __name__ == "__main__":
    sys.exit(main())
