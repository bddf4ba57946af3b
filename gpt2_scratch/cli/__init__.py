"""The `gpt2-scratch` command line: one thin sub-command per library function.

Each sub-command lives in its own module of this package and exposes `HELP`, its one line in `gpt2-scratch --help`,
and `register(subparsers)`, which adds an argparse parser whose `func` default receives the parsed arguments. Add a
command by writing such a module and naming it in COMMAND_MODULES. Only the command being run registers its
options (which may import the library, and so torch): the others show their HELP line, so that `--help` is quick.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
import warnings

from gpt2_scratch.progress import progress_bars

COMMAND_MODULES = [
    "prepare_data",
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
    "serve",
    "chat",
]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every command with its options; given `command`, that one's options and the others' HELP lines only."""
    parser = argparse.ArgumentParser(prog="gpt2-scratch", description="GPT-2 from scratch, on the Hugging Face stack.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        if command is None or command == name.replace("_", "-") or not hasattr(module, "HELP"):
            module.register(subparsers)
        else:
            subparsers.add_parser(name.replace("_", "-"), help=module.HELP)
    return parser


class Terminated(BaseException):
    """SIGTERM, raised where Python has control so that cleanup runs as for Ctrl-C (the default action of SIGTERM
    ends the process at once, leaving temporary output behind). A BaseException, so `except Exception` lets it by."""


class NotUTF8Error(Exception):
    """A text argument that is not UTF-8. Not a ValueError, which argparse would turn into a usage message."""


def text(value: str) -> str:
    """The argparse type of free-text arguments (prompts, texts to classify). The shell hands over bytes; those
    that are not UTF-8 reach Python as lone surrogates, which no tokenizer takes."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        byte = value[error.start].encode("utf-8", "surrogateescape")[0]
        raise NotUTF8Error(
            f"a text argument is not valid UTF-8 (byte 0x{byte:02x} at character {error.start}): pass UTF-8 text "
            "(check the terminal's encoding, LANG or LC_ALL)."
        ) from None
    return value


def no_progress_option(parser, shows: str = "") -> None:
    """Add --no-progress, which `main` turns into `progress_bars(False)` around the command."""
    parser.add_argument("--no-progress", action="store_true", help=f"no progress bars{shows}")


def raise_terminated(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((word for word in argv if not word.startswith("-")), "")
    in_main_thread = threading.current_thread() is threading.main_thread()  # only there may signals be handled
    previous = signal.signal(signal.SIGTERM, raise_terminated) if in_main_thread else None
    try:
        args = build_parser(command).parse_args(argv)
        importlib.import_module("gpt2_scratch.modeling")  # registers the model with transformers' Auto classes
        with warnings.catch_warnings(), progress_bars(shown=not getattr(args, "no_progress", False)):
            warnings.showwarning = notice_printer(command, warnings.showwarning)
            return args.func(args) or 0
    except (ValueError, OSError, RuntimeError, NotUTF8Error) as error:
        # Errors raised by the library are written for people: print them without a traceback.
        print(f"gpt2-scratch {command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gpt2-scratch {command}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"gpt2-scratch {command}: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


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
