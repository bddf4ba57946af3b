"""`gpt2-scratch evaluate judge|mmlu|loss`: LLM-as-judge scores of saved responses, MMLU-format accuracy, and
validation loss / perplexity. Each prints its result as JSON and can save it with --output."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "judge responses with an LLM, score MMLU-format questions, or measure loss and perplexity"  # the line `gpt2-scratch --help` shows


def register(subparsers) -> None:
    from . import no_progress_option

    parser = subparsers.add_parser(
        "evaluate",
        help=HELP,
        description="Evaluate an instruction-tuned or pretrained model.",
    )
    kinds = parser.add_subparsers(dest="evaluation", required=True, metavar="EVALUATION")

    judge = kinds.add_parser("judge", help="score responses 0-100 against the references with an LLM judge")
    judge.add_argument("responses", help="JSON/JSONL records with output and model_response "
                       "(e.g. OUT_DIR/instruction-data-with-response.json)")
    where = judge.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="chat-completions API root, e.g. http://localhost:11434/v1 (Ollama), "
                       "http://localhost:8000/v1 (vLLM)")
    where.add_argument("--local", metavar="MODEL", help="a local transformers causal LM (folder or Hub name) as judge")
    judge.add_argument("--model", default="llama3", help="the judge's model name at --url (default: %(default)s)")
    judge.add_argument("--api-key", help="bearer token for the endpoint (default: $OPENAI_API_KEY, if set)")
    judge.add_argument("--template", default="alpaca", help="prompt template the instructions are shown in")
    judge.add_argument("--max-tokens", type=int, default=64, help="longest reply the judge may give")
    judge.add_argument("--output", help="where to save the scores (default: judge-scores.json beside RESPONSES)")
    no_progress_option(judge)
    judge.set_defaults(func=run_judge)

    mmlu = kinds.add_parser("mmlu", help="multiple-choice accuracy by log-likelihood of the answer letters")
    add_model_arguments(mmlu)
    mmlu.add_argument("--data", help="local MMLU-format file or folder (.json/.jsonl/.parquet/.csv with question, "
                      "subject, choices, answer); default: cais/mmlu from the Hub")
    mmlu.add_argument("--split", default="test", help="Hub split (default: %(default)s)")
    mmlu.add_argument("--subjects", nargs="+", help="evaluate only these subjects")
    mmlu.add_argument("--batch-size", type=int, default=8)
    mmlu.add_argument("--output", help="save accuracy per subject and predictions as JSON")
    no_progress_option(mmlu)
    mmlu.set_defaults(func=run_mmlu)

    loss = kinds.add_parser("loss", help="loss per token and perplexity on instruction data or a text file")
    add_model_arguments(loss)
    source = loss.add_mutually_exclusive_group()
    source.add_argument("--data", help="instruction records (default: the course's instruction-data.json)")
    source.add_argument("--text", help="a plain-text file, cut into windows of --context-length tokens")
    loss.add_argument("--split-name", choices=["train", "validation", "test", "all"], default="validation",
                      help="which part of the instruction data (course split; default: %(default)s)")
    loss.add_argument("--template", default="alpaca")
    loss.add_argument("--context-length", type=int, help="window length for --text (default: 256, or the "
                      "model's n_positions when shorter; a longer one than n_positions is refused)")
    loss.add_argument("--batch-size", type=int, default=8)
    loss.add_argument("--output", help="save the result as JSON")
    no_progress_option(loss)
    loss.set_defaults(func=run_loss)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="checkpoint folder, Hub name, or any layout load_model reads")
    parser.add_argument("--tokenizer", help="folder with GPT-2's encoder.json + vocab.bpe (default: the model's own, "
                        "else GPT-2's)")


def load_model_and_tokenizer(args):
    from ..instruct.finetune import load_base_model
    from ..tokenization import load_tokenizer

    return load_base_model(args.model, dropout=None).eval(), load_tokenizer(args.model, args.tokenizer)


def report(result: dict, output: str | None) -> None:
    from ..resources import write_atomically

    text = json.dumps(result, indent=2)
    if output:
        write_atomically(output, text + "\n")
    print(text)


def run_judge(args) -> int:
    from ..evaluation import ChatCompletionsJudge, TransformersJudge, judge_responses
    from ..instruct import get_template, load_records

    records = load_records(Path(args.responses))
    if args.url:
        judge = ChatCompletionsJudge(args.url, args.model, api_key=args.api_key, max_tokens=args.max_tokens)
    else:
        judge = TransformersJudge.from_pretrained(args.local, max_new_tokens=args.max_tokens)
    result = judge_responses(records, judge, get_template(args.template))
    output = args.output or Path(args.responses).with_name("judge-scores.json")
    result.save(output)
    print(json.dumps({"average": result.average, "num_scored": len(records) - result.num_unparsable,
                      "num_unparsable": result.num_unparsable, "saved": str(output)}, indent=2))
    return 0


def run_mmlu(args) -> int:
    from ..evaluation import load_mmlu, score_mmlu

    examples = load_mmlu(args.data, subjects=args.subjects, split=args.split)
    model, tokenizer = load_model_and_tokenizer(args)
    result = score_mmlu(model, tokenizer, examples, batch_size=args.batch_size)
    if args.output:
        result.save(args.output)
    print(json.dumps({"accuracy": result.accuracy, "per_subject": result.per_subject}, indent=2))
    return 0


def run_loss(args) -> int:
    from ..evaluation import text_loss
    from ..instruct.finetune import instruction_loss

    model, tokenizer = load_model_and_tokenizer(args)
    if args.text:
        result = text_loss(model, tokenizer, args.text, args.context_length, args.batch_size)
    else:
        result = instruction_loss(model, tokenizer, args.data, args.split_name, args.template, args.batch_size)
    report(result, args.output)
    return 0
