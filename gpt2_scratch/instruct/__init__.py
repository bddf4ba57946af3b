"""Instruction fine-tuning: Alpaca-style data, prompt templates, splits, the loss-masking collator, LoRA, and
greedy responses saved in the course's format. `examples/instruct.py` and `gpt2-scratch instruct` put them together.
"""

from .collate import IGNORE_INDEX, InstructionCollator
from .data import InstructionDataset, InstructionSplits, check_records, encode_record, load_records, split_records
from .responses import generate_responses, save_responses, with_responses
from ..lora import LORA_TARGET_MODULES, add_lora, merge_lora, parameter_counts
from ..data.templates import ALPACA, PHI3, TEMPLATES, PromptTemplate, get_template

__all__ = [
    "IGNORE_INDEX",
    "InstructionCollator",
    "InstructionDataset",
    "InstructionSplits",
    "check_records",
    "encode_record",
    "load_records",
    "split_records",
    "generate_responses",
    "save_responses",
    "with_responses",
    "LORA_TARGET_MODULES",
    "add_lora",
    "parameter_counts",
    "merge_lora",
    "ALPACA",
    "PHI3",
    "TEMPLATES",
    "PromptTemplate",
    "get_template",
]
