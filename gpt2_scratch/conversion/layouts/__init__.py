"""Every checkpoint layout the package reads or writes, by name."""

from .gpt2_named import NANOGPT, SCRATCH, TRANSFORMERS

LAYOUTS = {layout.name: layout for layout in [SCRATCH, TRANSFORMERS, NANOGPT]}

__all__ = ["LAYOUTS"]
