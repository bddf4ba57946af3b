"""`gpt2-scratch prepare-data SRC... OUT`: tokenise a corpus into sharded token files (see docs/pretraining.md).

The dataset options and their loading live here too: `pretrain`, which prepares its corpus itself, uses them.
"""

from __future__ import annotations

import json


def register(subparsers) -> None:
    from . import no_progress_option

    parser = subparsers.add_parser(
        "prepare-data", help="tokenise text files, folders, globs or a datasets dataset into sharded token files",
        description="Tokenise a corpus into uint16 token shards plus index.json in OUT, in bounded memory, on "
        "--num-proc processes. An interrupted run, started again with the same arguments, resumes.",
    )
    parser.add_argument("src", nargs="*", metavar="SRC", help="text files, folders or glob patterns (or --dataset)")
    parser.add_argument("out", metavar="OUT", help="output folder")
    parser.add_argument("--num-proc", type=int, default=1, help="tokenising processes (default: 1)")
    parser.add_argument("--tokenizer", metavar="PATH", help="GPT-2 tokenizer folder (default: OpenAI's, downloaded)")
    add_dataset_arguments(parser)
    no_progress_option(parser)
    parser.set_defaults(func=run)


def add_dataset_arguments(parser) -> None:
    parser.add_argument("--dataset", metavar="NAME", help="a datasets dataset name or local folder, instead of paths")
    parser.add_argument("--dataset-config", help="the dataset's configuration name")
    parser.add_argument("--split", default="train", help="dataset split (default: train)")
    parser.add_argument("--text-column", default="text", help="dataset column holding the documents (default: text)")
    parser.add_argument("--streaming", action="store_true", help="stream the dataset instead of downloading it whole")


def load_source(paths, args):
    """The paths, or the dataset that --dataset names."""
    if args.dataset and paths:
        raise ValueError("pass either paths or --dataset, not both.")
    if not args.dataset:
        return paths
    import datasets

    return datasets.load_dataset(args.dataset, args.dataset_config, split=args.split, streaming=args.streaming)


def run(args) -> int:
    from gpt2_scratch.data import prepare_corpus
    from gpt2_scratch.tokenization import gpt2_tokenizer

    if not args.src and not args.dataset:
        raise ValueError("name the corpus: text files, folders or glob patterns before OUT, or --dataset NAME.")
    shards = prepare_corpus(load_source(args.src, args), args.out, gpt2_tokenizer(args.tokenizer), args.num_proc,
                            args.text_column)
    index = shards.index
    print(json.dumps({"out": args.out, "num_tokens": index["num_tokens"], "shards": len(index["shards"]),
                      "dtype": index["dtype"], "source": index["source"]}, indent=2))
    return 0
