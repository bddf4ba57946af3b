"""Throughput and time to first token of `gpt2-scratch serve` under 1, 4 and 16 concurrent streaming clients.

A checkpoint of the chosen preset (random weights) is served by `gpt2-scratch serve` in a process of its own; the
clients are threads of this one, each using the official `openai` client to stream greedy completions of its own
prompt. A round at concurrency c starts c clients together, each sending `--requests` requests one after the
other; the rounds of the three concurrencies are interleaved (benchmarks/harness.py), so that noise from other
work on the machine hits all alike. Reported per concurrency: aggregate new tokens/s (all clients' tokens over the
round's wall time) and the median and 95th percentile of the time from sending a request to its first token; and
the ratio of the 16-client throughput to the single client's.

    python benchmarks/serving.py [--preset small] [--new-tokens 32] [--requests 1] [--repeats 3] [--server-threads N]
                                  [--dtype bfloat16]
"""

from __future__ import annotations

import argparse
import datetime
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.harness import Report, Row, interleaved, machine_description, markdown_table  # noqa: E402
from gpt2_scratch import ScratchGPT2Config, ScratchGPT2ForCausalLM  # noqa: E402
from gpt2_scratch.tokenization import gpt2_tokenizer  # noqa: E402

CONCURRENCIES = (1, 4, 16)
PROMPTS = [  # 16 prompts of 10 to 20 tokens, one per client
    f"Client {i} asks: please continue this story about the {subject} as well as you can."
    for i, subject in enumerate(["painter", "river", "city", "dog", "storm", "garden", "train", "letter", "mountain",
                                 "violin", "harbour", "library", "winter", "market", "lighthouse", "orchard"])
]


def write_checkpoint(preset: str, tokenizer_dir: str | None, folder: Path) -> Path:
    torch.manual_seed(0)
    ScratchGPT2ForCausalLM(ScratchGPT2Config.from_preset(preset)).save_pretrained(folder)
    gpt2_tokenizer(tokenizer_dir).save_pretrained(folder)
    return folder


def start_server(checkpoint: Path, max_batch_size: int, threads: int | None, dtype: str | None
                 ) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "gpt2_scratch.cli", "serve", str(checkpoint), "--port", str(port),
               "--max-batch-size", str(max_batch_size), "--name", "bench", "--no-progress"]
    command += ["--dtype", dtype] if dtype else []
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    if threads:
        environment["OMP_NUM_THREADS"] = str(threads)  # torch's intra-op threads in the server
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
    return process, f"http://127.0.0.1:{port}/v1"


def wait_until_up(client, process: subprocess.Popen) -> None:
    import openai

    deadline = time.monotonic() + 300
    while True:
        try:
            client.models.list()
            return
        except openai.APIConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start") from None
            time.sleep(0.5)


def one_request(client, prompt: str, new_tokens: int) -> tuple[float, int]:
    """Seconds to the first token, and the number of new tokens, of one streamed greedy completion."""
    start = time.perf_counter()
    first, tokens = None, 0
    stream = client.completions.create(model="bench", prompt=prompt, max_tokens=new_tokens, temperature=0, stream=True,
                                       stream_options={"include_usage": True})
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].text:
            first = time.perf_counter() - start
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    return first if first is not None else time.perf_counter() - start, tokens


def round_of(clients: list, new_tokens: int, requests: int):
    """A candidate for `interleaved`: len(clients) clients at once, each sending `requests` requests in turn."""

    def run() -> dict:
        ttfts, tokens = [], []
        gate = threading.Barrier(len(clients))

        def client_loop(i: int):
            gate.wait()
            for _ in range(requests):
                ttft, count = one_request(clients[i], PROMPTS[i % len(PROMPTS)], new_tokens)
                ttfts.append(ttft)
                tokens.append(count)

        threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(len(clients))]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return {"tokens_per_s": sum(tokens) / (time.perf_counter() - start), "ttfts": ttfts}

    return run


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--new-tokens", type=int, default=32, help="new tokens per request")
    parser.add_argument("--requests", type=int, default=1, help="requests each client sends per round")
    parser.add_argument("--repeats", type=int, default=3, help="rounds per concurrency (after one warm-up round)")
    parser.add_argument("--dtype", help="the server's --dtype (default: float32, as the checkpoint is stored)")
    parser.add_argument("--server-threads", type=int, help="torch threads of the server (default: torch's choice)")
    parser.add_argument("--tokenizer-dir", help="GPT-2's tokenizer files (default: fetched or ../shared/data's)")
    parser.add_argument("--output", type=Path, help="JSON file (default benchmarks/results/serving-<preset>-<date>)")
    args = parser.parse_args(argv)
    import openai

    tokenizer_dir = args.tokenizer_dir or (REPO_ROOT.parent / "shared" / "data" / "gpt2-tokenizer")
    report = Report(machine_description("cpu"), vars(args) | {"output": str(args.output)})
    with tempfile.TemporaryDirectory() as temporary:
        checkpoint = write_checkpoint(args.preset, str(tokenizer_dir), Path(temporary) / args.preset)
        process, url = start_server(checkpoint, max(CONCURRENCIES), args.server_threads, args.dtype)
        try:
            clients = [openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=600)
                       for _ in range(max(CONCURRENCIES))]
            wait_until_up(clients[0], process)
            candidates = {c: round_of(clients[:c], args.new_tokens, args.requests) for c in CONCURRENCIES}
            results = interleaved(candidates, warmup=1, repeats=args.repeats)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)

    throughput = {c: [r["tokens_per_s"] for r in results[c]] for c in CONCURRENCIES}
    for c in CONCURRENCIES:
        ttfts = [t * 1000 for r in results[c] for t in r["ttfts"]]
        report.add(Row("serving", args.preset, f"{c} client(s): aggregate new tokens/s", "tok/s", throughput[c]))
        report.add(Row("serving", args.preset, f"{c} client(s): time to first token p50", "ms",
                       [statistics.median(ttfts)], higher_is_better=False))
        report.add(Row("serving", args.preset, f"{c} client(s): time to first token p95", "ms",
                       [percentile(ttfts, 95)], higher_is_better=False))
    report.add(Row("serving", args.preset, "throughput, 16 clients / 1 client", "tok/s", throughput[16],
                   reference=throughput[1], note="reference: 1 client"))
    print()
    print(markdown_table(report.rows))
    date = datetime.date.today().isoformat()
    output = args.output or REPO_ROOT / "benchmarks" / "results" / f"serving-{args.preset}-cpu-{date}.json"
    report.write_json(output)
    print(f"\nwritten to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
