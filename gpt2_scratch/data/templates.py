"""Prompt templates: how an instruction record becomes the text the model reads and the text it learns to write.

A record has `instruction`, `input` (may be empty) and `output`. A template splits the training text in two:
- the *query*: instruction and input, followed by the response header; this is also the prompt at inference;
- the *response*: the record's `output`, which the model learns to continue the query with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt format. `instruction` is formatted with {instruction}; `input` (added only when the record's input
    is not empty) with {input}; `response_header` comes right before the response."""

    name: str
    instruction: str
    input: str
    response_header: str

    def prompt(self, record: Mapping) -> str:
        """Instruction and input, without the response header."""
        text = self.instruction.format(instruction=record["instruction"])
        if record["input"]:
            text += self.input.format(input=record["input"])
        return text

    def query(self, record: Mapping) -> str:
        """What the model is given at inference: the prompt and the response header."""
        return self.prompt(record) + self.response_header


# The Alpaca format as the course uses it: one preamble whether or not there is an input.
ALPACA = PromptTemplate(
    name="alpaca",
    instruction=(
        "Below is an instruction that describes a task. Write a response that appropriately completes the request."
        "\n\n### Instruction:\n{instruction}"
    ),
    input="\n\n### Input:\n{input}",
    response_header="\n\n### Response:\n",
)

# Phi-3's chat markers written as plain text (the course's exercise 7.1); shorter prompts, so faster training.
PHI3 = PromptTemplate(
    name="phi3",
    instruction="<|user|>\n{instruction}",
    input="\n{input}",
    response_header="\n<|assistant|>\n",
)

TEMPLATES = {template.name: template for template in (ALPACA, PHI3)}


def get_template(name_or_template: str | PromptTemplate) -> PromptTemplate:
    if isinstance(name_or_template, PromptTemplate):
        return name_or_template
    if name_or_template not in TEMPLATES:
        raise ValueError(f"unknown prompt template {name_or_template!r}; choose one of {', '.join(TEMPLATES)}.")
    return TEMPLATES[name_or_template]
