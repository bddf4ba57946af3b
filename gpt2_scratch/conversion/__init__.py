"""Conversion between ScratchGPT2 and every GPT-2 checkpoint layout in circulation.

Each layout is data (layouts/): a list of rules relating our tensor names to theirs through named reversible
transforms (transforms.py). One engine (engine.py) applies any layout in either direction, tensor by tensor.
"""

from .api import (
    convert,
    detect_layout,
    export_state_dict,
    from_transformers_gpt2,
    load_model,
    save_model,
    to_transformers_gpt2,
)
from .engine import LayoutMismatchError
from .layouts import LAYOUTS
from .verification import VerifyReport, verify

__all__ = [
    "LAYOUTS",
    "LayoutMismatchError",
    "convert",
    "detect_layout",
    "export_state_dict",
    "from_transformers_gpt2",
    "load_model",
    "save_model",
    "to_transformers_gpt2",
    "verify",
    "VerifyReport",
]
