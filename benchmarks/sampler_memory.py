"""Anonymous memory (RssAnon) of starting one epoch of a shuffled loader over N windows: our EpochShuffleSampler
(data/order.py) against Accelerate's SeedableRandomSampler (what `DataLoaderConfiguration(use_seedable_sampler=True)`
puts in a prepared loader). Each runs in a fresh child process, which draws the first 1,000 indices of epoch 1.

    python benchmarks/sampler_memory.py [--windows 20000000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import itertools, sys
sys.path.insert(0, sys.argv[3])
from benchmarks.harness import PeakAnonMemory
from accelerate.data_loader import SeedableRandomSampler
from gpt2_scratch.data.order import EpochShuffleSampler
size = int(sys.argv[2])
sampler = (EpochShuffleSampler(size, shuffle=True, seed=0) if sys.argv[1] == "ours"
           else SeedableRandomSampler(range(size), data_seed=0))
sampler.set_epoch(1)
with PeakAnonMemory() as memory:
    first = list(itertools.islice(iter(sampler), 1000))
print(memory.peak - memory.baseline)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=20_000_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    peaks = {"ours": [], "accelerate": []}
    for _ in range(args.repeats):  # alternating, so that both see the same load
        for name in peaks:
            done = subprocess.run([sys.executable, "-c", CHILD, name, str(args.windows), str(REPO_ROOT)],
                                  capture_output=True, text=True, check=True)
            peaks[name].append(int(done.stdout.split()[-1]))
    ours, theirs = min(peaks["ours"]), min(peaks["accelerate"])
    print(f"{args.windows:,} windows, memory to start an epoch: ours {ours / 2**20:,.0f} MiB, "
          f"Accelerate's SeedableRandomSampler {theirs / 2**20:,.0f} MiB ({theirs / ours:.1f}x)")


if __name__ == "__main__":
    main()
