"""Take a GPT-2 through every checkpoint layout and back, and check nothing changed.

A small random transformers GPT-2 stands in for `openai-community/gpt2` (pass --source to use a real
checkpoint: a folder, a file or a Hub repo id). It is converted into each layout this package writes, each
result is converted back to transformers' layout, and `verify` compares it with the original. A layout whose
programs would read it as another model (nanoGPT's computes the exact GELU, GPT-2 the tanh approximation) is
refused, and shown so.

    python examples/convert_checkpoints.py [--source openai-community/gpt2] [--out converted/]
"""

import argparse
import tempfile
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from gpt2_scratch.conversion import LAYOUTS, convert, detect_layout, verify


def small_random_gpt2(folder: Path) -> Path:
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(n_layer=4, n_embd=128, n_head=4, n_positions=128)).save_pretrained(folder)
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", help="checkpoint to convert (default: a small random GPT-2)")
    parser.add_argument("--out", help="folder to keep the conversions in (default: a temporary one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        out = Path(args.out or scratch)
        source = args.source or small_random_gpt2(out / "source")
        print(f"source: {source} (layout {detect_layout(source)})\n")
        print(f"{'layout':<24}{'weights':<20}{'back to transformers, verified':<30}")
        for name, layout in LAYOUTS.items():
            if not layout.can_export:
                continue
            try:
                converted = convert(source, out / name, to_layout=name)
            except ValueError as refusal:  # its programs would compute another model (nanoGPT: the exact GELU)
                print(f"{name:<24}{layout.weights_file:<20}refused: {str(refusal).split(':')[0]}")
                continue
            back = convert(converted, out / f"{name}-back", to_layout="transformers")
            print(f"{name:<24}{layout.weights_file:<20}{verify(source, back).verdict:<30}")


if __name__ == "__main__":
    main()
