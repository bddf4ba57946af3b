"""Peak anonymous memory (RssAnon) of one action, measured in a fresh process so that nothing else is counted.

    python benchmarks/memory_probe.py load --impl ours|ours-converted|reference --checkpoint DIR [--dtype bfloat16]
    python benchmarks/memory_probe.py train --impl ours|reference --size small --batch 4 --seq 256
    python benchmarks/memory_probe.py convert --impl ours|plain --checkpoint DIR --output DIR --layout transformers

Prints one JSON line, in bytes: the peak RssAnon while the action ran (sampled every 2 ms by a thread) and the
RssAnon after the imports (the baseline every action pays: Python, torch, transformers); and, for contrast,
the process's VmHWM, which also counts the clean file pages of memory-mapped checkpoints. Loading ends with a
forward pass over a few tokens, so that weights mapped from the file but not yet read count too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch
import transformers

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.harness import PeakAnonMemory, status_bytes  # noqa: E402
from gpt2_scratch import ScratchGPT2Config, ScratchGPT2ForCausalLM  # noqa: E402


def touch_every_weight(model):
    """A forward pass over a few tokens reads every weight once."""
    with torch.inference_mode():
        model(torch.zeros(1, 8, dtype=torch.long))


def load(impl: str, checkpoint: str, dtype: torch.dtype):
    """ours: from_pretrained, as transformers loads any model; ours-converted: gpt2_scratch.conversion.load_model
    of a checkpoint in another layout (transformers'); reference: transformers' GPT2LMHeadModel.from_pretrained."""
    if impl == "ours-converted":
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


def convert(impl: str, checkpoint: str, output: str, layout: str):
    """ours: gpt2_scratch.conversion.convert, which streams one tensor at a time from file to file; plain: the
    maintained libraries' way (our checkpoint to transformers' only): from_pretrained, to_transformers_gpt2,
    save_pretrained."""
    from gpt2_scratch.conversion import convert, to_transformers_gpt2

    if impl == "ours":
        convert(checkpoint, output, to_layout=layout)
    elif impl == "plain" and layout == "transformers":
        to_transformers_gpt2(ScratchGPT2ForCausalLM.from_pretrained(checkpoint)).save_pretrained(output)
    else:
        raise SystemExit(f"convert --impl {impl} --layout {layout} is not measured")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["load", "train", "convert"])
    parser.add_argument(
        "--impl", choices=["ours", "ours-converted", "reference", "plain"], default="ours"
    )
    parser.add_argument("--checkpoint")
    parser.add_argument("--output", help="convert: the folder to write")
    parser.add_argument("--layout", default="transformers", help="convert: the layout to write")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--size", default="small")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=256)
    args = parser.parse_args()

    with PeakAnonMemory() as anon:
        if args.action == "load":
            load(args.impl, args.checkpoint, getattr(torch, args.dtype))
        elif args.action == "train":
            train(args.impl, args.size, args.batch, args.seq)
        else:
            convert(args.impl, args.checkpoint, args.output, args.layout)
    print(json.dumps({"peak_anon_bytes": anon.peak, "baseline_anon_bytes": anon.baseline,
                      "vmhwm_bytes": status_bytes("VmHWM")}))


if __name__ == "__main__":
    main()
