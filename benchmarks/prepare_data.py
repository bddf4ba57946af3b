"""Corpus preparation: MB/s and peak anonymous memory of `prepare_corpus` on 1 and 2 processes, against tiktoken's
`encode_ordinary_batch` on one process writing the same uint16 ids (the anchor, as nanoGPT's prepare.py uses it).

    python benchmarks/prepare_data.py [--sizes 10 100 1000] [--repeats 2] [--work /tmp/prepare-bench]

The text is made from the shared data: every SMS message and every instruction record (instruction, input and
output on one line) as one line each, shuffled with a seeded generator and repeated, a new order each pass, until
the file holds SIZE MB; one file per size, one document each. Each measurement runs in a fresh process; the parent
samples RssAnon of that process and all its children every 20 ms (summed) and reports the peak. Candidates
alternate (anchor, 1 process, 2 processes, rotating) so that other work on the machine hits all alike; the ratios
to the anchor measured in the same run are the figures to read. Time counts tokenising and writing, not imports.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MB = 1_000_000


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (the worker processes, once joined)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def report(start: float, cpu_start: float) -> None:
    print(json.dumps({"seconds": time.perf_counter() - start, "cpu_seconds": cpu_seconds() - cpu_start}))


def make_text(path: Path, size_mb: int, data: Path) -> None:
    if path.is_file() and path.stat().st_size >= size_mb * MB:
        return
    sms = [line.split("\t", 1)[1] for line in (data / "SMSSpamCollection").read_text(encoding="utf-8").splitlines()]
    records = json.loads((data / "instruction-data.json").read_text(encoding="utf-8"))
    lines = sms + [" ".join(filter(None, (r["instruction"], r["input"], r["output"]))).replace("\n", " ") for r in records]
    rng, written = random.Random(0), 0
    with path.open("w", encoding="utf-8") as out:
        while written < size_mb * MB:
            rng.shuffle(lines)
            for line in lines:
                written += out.write(line + "\n")
                if written >= size_mb * MB:
                    break


def run_anchor(text: Path, out: Path, data: Path) -> None:
    """tiktoken's encode_ordinary_batch, one thread, on batches of 1 MiB blocks of lines, ids appended as uint16."""
    import numpy as np

    from gpt2_scratch.tokenization.reference import tiktoken_gpt2

    encoding = tiktoken_gpt2(data / "gpt2-tokenizer")
    start, cpu_start = time.perf_counter(), cpu_seconds()
    with text.open(encoding="utf-8") as source, out.open("wb") as sink:
        while lines := source.readlines(1 << 20):
            for ids in encoding.encode_ordinary_batch(["".join(lines)], num_threads=1):
                np.asarray(ids, dtype=np.uint16).tofile(sink)
    report(start, cpu_start)


def run_ours(text: Path, out: Path, data: Path, num_proc: int) -> None:
    from gpt2_scratch.data import prepare_corpus
    from gpt2_scratch.tokenization import gpt2_tokenizer

    tokenizer = gpt2_tokenizer(data / "gpt2-tokenizer")
    start, cpu_start = time.perf_counter(), cpu_seconds()
    prepare_corpus(text, out, tokenizer, num_proc=num_proc, show_progress=False)
    report(start, cpu_start)


def tree(pid: int) -> list[int]:
    """`pid` and its descendants."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    pending += [int(child) for child in children.read().split()]
        except OSError:
            pass
    return found


def anonymous_memory(pid: int) -> tuple[int, int]:
    """(RssAnon, Pss_Anon) in bytes, summed over `pid`'s process tree. RssAnon counts a page that forked workers
    share with their parent (copy-on-write, never written) in each of them; Pss_Anon divides it among them."""
    rss = pss = 0
    for member in tree(pid):
        try:
            with open(f"/proc/{member}/status") as status:
                rss += next(int(line.split()[1]) * 1024 for line in status if line.startswith("RssAnon:"))
            with open(f"/proc/{member}/smaps_rollup") as rollup:
                pss += next(int(line.split()[1]) * 1024 for line in rollup if line.startswith("Pss_Anon:"))
        except (OSError, StopIteration):
            pass
    return rss, pss


def measure(command: list[str]) -> tuple[float, float, int, int]:
    """(seconds the child reports, CPU seconds of its process tree, peak RssAnon, peak Pss_Anon of the tree)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak_rss = peak_pss = 0
    while True:
        pid, status = os.waitpid(process.pid, os.WNOHANG)
        if pid:
            break
        rss, pss = anonymous_memory(process.pid)
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(0.02)
    output = process.stdout.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{command} failed")
    process.returncode = 0
    timings = json.loads(output.strip().splitlines()[-1])
    return timings["seconds"], timings["cpu_seconds"], peak_rss, peak_pss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100], help="text sizes in MB")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/prepare-bench"))
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--run", choices=["anchor", "ours"], help=argparse.SUPPRESS)  # one measurement, in a child
    parser.add_argument("--text", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--num-proc", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run == "anchor":
        return run_anchor(args.text, args.out, args.data)
    if args.run == "ours":
        return run_ours(args.text, args.out, args.data, args.num_proc)

    import shutil

    args.work.mkdir(parents=True, exist_ok=True)
    candidates = {"tiktoken 1 process (anchor)": ("anchor", 1), "prepare_corpus 1 process": ("ours", 1),
                  "prepare_corpus 2 processes": ("ours", 2)}
    print("| text | candidate | MB/s (median) | ratio to anchor | MB per CPU-second | ratio to anchor | "
          "peak RssAnon MB, summed | peak Pss_Anon MB, summed |")
    print("|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        text = args.work / f"text-{size}MB.txt"
        make_text(text, size, args.data)
        results = {name: [] for name in candidates}
        names = list(candidates)
        for repetition in range(args.repeats):
            shift = repetition % len(names)
            for name in names[shift:] + names[:shift]:
                kind, num_proc = candidates[name]
                out = args.work / f"out-{kind}-{num_proc}"
                shutil.rmtree(out, ignore_errors=True)
                command = [sys.executable, __file__, "--run", kind, "--text", str(text), "--out", str(out),
                           "--num-proc", str(num_proc), "--data", str(args.data)]
                results[name].append(measure(command))
                shutil.rmtree(out, ignore_errors=True)
        anchor = [statistics.median(row[i] for row in results[names[0]]) for i in (0, 1)]
        for name in names:
            seconds, cpu = (statistics.median(row[i] for row in results[name]) for i in (0, 1))
            rss, pss = (max(row[i] for row in results[name]) for i in (2, 3))
            print(f"| {size} MB | {name} | {size / seconds:.1f} | {anchor[0] / seconds:.2f} | {size / cpu:.1f} | "
                  f"{anchor[1] / cpu:.2f} | {rss / MB:.0f} | {pss / MB:.0f} |", flush=True)


if __name__ == "__main__":
    main()
