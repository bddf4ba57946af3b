"""Peak resident memory (RSS) of one action, measured in a fresh process so that nothing else is counted.

    python benchmarks/memory_probe.py load --impl ours|ours-low-memory|ours-converted|reference --checkpoint DIR [--dtype bfloat16]
    python benchmarks/memory_probe.py train --impl ours|reference --size small --batch 4 --seq 256
    python benchmarks/memory_probe.py convert --checkpoint DIR --output DIR --layout transformers

Prints one JSON line: the peak RSS of the process, and its RSS after the imports (the baseline every action
pays: Python, torch, transformers), both in bytes. Loading ends with a forward pass over a few tokens, so
that weights mapped from the file but not yet read count too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch
import transformers

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gpt2_scratch import ScratchGPT2Config, ScratchGPT2ForCausalLM  # noqa: E402


def peak_rss_bytes() -> int:
    """The high-water mark of this process's resident memory (VmHWM). Not getrusage's ru_maxrss: Linux carries
    that over from the parent across fork and exec, so a child's peak below its parent's size would not show."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError("no VmHWM in /proc/self/status: peak RSS is measured on Linux only")


def touch_every_weight(model):
    """A forward pass over a few tokens reads every weight once."""
    with torch.inference_mode():
        model(torch.zeros(1, 8, dtype=torch.long))


def load(impl: str, checkpoint: str, dtype: torch.dtype):
    """ours: from_pretrained, as transformers loads any model; ours-low-memory: gpt2_scratch.speed.load_low_memory,
    which reads one tensor at a time with positioned reads (no memory map) and casts it before the next;
    ours-converted: gpt2_scratch.conversion.load_model of a checkpoint in another layout (transformers')."""
    if impl == "ours-low-memory":
        from gpt2_scratch.speed import load_low_memory

        model = load_low_memory(checkpoint, dtype=dtype)
    elif impl == "ours-converted":
        from gpt2_scratch.conversion import load_model

        model = load_model(checkpoint, dtype=dtype)
    else:
        model_class = ScratchGPT2ForCausalLM if impl == "ours" else transformers.GPT2LMHeadModel
        model = model_class.from_pretrained(checkpoint, dtype=dtype)
    touch_every_weight(model)


def train(impl: str, size: str, batch: int, seq: int):
    from gpt2_scratch.conversion.hparams import gpt2_config
    from gpt2_scratch.conversion.hparams import from_config

    torch.manual_seed(0)
    config = ScratchGPT2Config.from_preset(size)
    if impl == "ours":
        model = ScratchGPT2ForCausalLM(config)
    else:
        model = transformers.GPT2LMHeadModel(gpt2_config(from_config(config)))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    input_ids = torch.randint(0, config.vocab_size, (batch, seq))
    model(input_ids, labels=input_ids).loss.backward()
    optimizer.step()


def convert(checkpoint: str, output: str, layout: str):
    from gpt2_scratch.conversion import convert

    convert(checkpoint, output, to_layout=layout)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["load", "train", "convert"])
    parser.add_argument("--impl", choices=["ours", "ours-low-memory", "ours-converted", "reference"], default="ours")
    parser.add_argument("--checkpoint")
    parser.add_argument("--output", help="convert: the folder to write")
    parser.add_argument("--layout", default="transformers", help="convert: the layout to write")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--size", default="small")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=256)
    args = parser.parse_args()

    baseline = peak_rss_bytes()
    if args.action == "load":
        load(args.impl, args.checkpoint, getattr(torch, args.dtype))
    elif args.action == "train":
        train(args.impl, args.size, args.batch, args.seq)
    else:
        convert(args.checkpoint, args.output, args.layout)
    print(json.dumps({"peak_rss_bytes": peak_rss_bytes(), "baseline_rss_bytes": baseline}))


if __name__ == "__main__":
    main()
