"""Encode throughput of our from-scratch BPE against tiktoken and Hugging Face `tokenizers`, in one run.

All three encode the same text with GPT-2's vocabulary (the ids are checked equal first), one thread each,
their repetitions interleaved (benchmarks/harness.py) so that noise from other work hits all alike; medians
are compared, min-max shown. Ours is timed twice: with an empty word cache, and warm. A second table times
training a 1,000-token vocabulary on the-verdict: our `train_bpe` against `tokenizers`' trainer.

    python benchmarks/tokenizer_throughput.py [--tokenizer-dir ../shared/data/gpt2-tokenizer] [--repeats 5]

Files are found through gpt2_scratch.resources (set GPT2_SCRATCH_DATA_DIR=../shared/data to use local copies).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import interleaved  # noqa: E402
from gpt2_scratch.resources import fetch  # noqa: E402
from gpt2_scratch.tokenization import BPETokenizer, gpt2_tokenizer, train_bpe, train_tokenizer  # noqa: E402
from gpt2_scratch.tokenization.reference import tiktoken_gpt2  # noqa: E402


def corpus() -> str:
    """The-verdict, every SMS message and every instruction record, as one text (about 0.7 MB)."""
    verdict = fetch("the-verdict").read_text(encoding="utf-8")
    sms = fetch("sms-spam-collection").read_text(encoding="utf-8")
    records = json.loads(fetch("instruction-data").read_text(encoding="utf-8"))
    instructions = "\n\n".join(f"{r['instruction']}\n{r['input']}\n{r['output']}" for r in records)
    return "\n\n".join([verdict, sms, instructions])


def timed(function, before=lambda: None):
    """A candidate for `interleaved`: runs `before` untimed, then returns the seconds `function` takes."""

    def candidate() -> float:
        before()
        start = time.perf_counter()
        function()
        return time.perf_counter() - start

    return candidate


def print_table(title: str, seconds: dict[str, list[float]], unit: str, per_second: float | None) -> None:
    """One row per candidate: median (min-max) in `unit` (throughput when `per_second` is given), and the ratio
    of medians against the first row (above 1: faster than it)."""
    baseline = statistics.median(next(iter(seconds.values())))
    print(f"\n{title}\n{'':<30}{unit:>24}{'speed vs first row':>20}")
    for name, values in seconds.items():
        shown = sorted(per_second / v for v in values) if per_second else sorted(values)
        figure = f"{statistics.median(shown):.3f} ({shown[0]:.3f}-{shown[-1]:.3f})"
        print(f"{name:<30}{figure:>24}{baseline / statistics.median(values):>19.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokenizer-dir", default=None, help="folder with encoder.json + vocab.bpe (default: fetch)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    text = corpus()
    megabytes = len(text.encode("utf-8")) / 1e6
    ours = BPETokenizer.from_gpt2(args.tokenizer_dir)
    openai = tiktoken_gpt2(args.tokenizer_dir)
    hugging_face = gpt2_tokenizer(args.tokenizer_dir).backend_tokenizer  # the Rust tokenizer, no Python wrapper

    expected = openai.encode_ordinary(text)
    if not ours.encode(text) == expected == hugging_face.encode(text).ids:
        raise SystemExit("the three tokenizers give different ids: fix that before timing them")

    encode = interleaved(
        {
            "ours (cold word cache)": timed(lambda: ours.encode(text), before=ours.cache.clear),
            "ours (warm word cache)": timed(lambda: ours.encode(text)),
            "tiktoken": timed(lambda: openai.encode_ordinary(text)),
            "tokenizers": timed(lambda: hugging_face.encode(text)),
        },
        warmup=1,
        repeats=args.repeats,
    )
    print_table(f"encoding {megabytes:.2f} MB ({len(expected):,} tokens), one thread", encode, "MB/s", megabytes)

    verdict = fetch("the-verdict").read_text(encoding="utf-8")
    training = interleaved(
        {
            "ours (train_bpe)": timed(lambda: train_bpe(verdict, 1000, show_progress=False)),
            "tokenizers (train_tokenizer)": timed(lambda: train_tokenizer(verdict, 1000, show_progress=False)),
        },
        warmup=1,
        repeats=args.repeats,
    )
    print_table(f"training a 1,000-token vocabulary on the-verdict ({len(verdict):,} characters)", training, "seconds", None)


if __name__ == "__main__":
    main()
