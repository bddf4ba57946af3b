"""Prompt templates: how an instruction record becomes the text the model reads and the text it learns to write.

A record has `instruction`, `input` (may be empty) and `output`. A template splits the training text in two:
- the *query*: instruction and input, followed by the response header; this is also the prompt at inference;
- the *response*: the record's `output`, which the model learns to continue the query with.

`PromptTemplate.chat_template()` writes the same format as a Jinja chat template, which instruction tuning saves
in the tokenizer, so that `tokenizer.apply_chat_template`, `pipeline("text-generation")` with messages and
`gpt2-scratch serve`'s /v1/chat/completions build exactly the training text.
"""

from __future__ import annotations

import json
import string
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

    def chat_template(self) -> str:
        """This format as a chat template (transformers' Jinja dialect) over messages with roles user and assistant.

        A user message is a record's instruction (its content) and input (an optional `input` key); an assistant
        message is the response header, the response and the end-of-text token, as the model learned it (the
        collator appends that token); `add_generation_prompt` adds the response header. So [user] with the
        generation prompt renders `query(record)`, and [user, assistant] the whole training text. Turns follow one
        another as packed examples do. The format has no place for a system message: the template refuses one.
        """
        user = jinja_text(self.instruction, "instruction", "message['content']")
        user_input = jinja_text(self.input, "input", "message['input']")
        header = jinja_text(self.response_header)
        refusal = (f"the {self.name} prompt format has user and assistant messages only (the model was "
                   "instruction-tuned without system prompts): put the instructions in the user message.")
        return (
            "{%- for message in messages -%}"
            "{%- if message['role'] == 'user' -%}"
            f"{user}{{%- if message['input'] is defined and message['input'] -%}}{user_input}{{%- endif -%}}"
            "{%- elif message['role'] == 'assistant' -%}"
            f"{header}{{{{ message['content'] ~ eos_token }}}}"
            "{%- else -%}"
            f"{{{{ raise_exception({json.dumps(refusal)}) }}}}"
            "{%- endif -%}"
            "{%- endfor -%}"
            f"{{%- if add_generation_prompt -%}}{header}{{%- endif -%}}"
        )


def jinja_text(format_string: str, field: str | None = None, variable: str = "") -> str:
    """A Jinja expression that writes `format_string` (str.format syntax) with its one `{field}` replaced by the
    Jinja expression `variable`; literal text becomes string literals, so no character of it is read as Jinja."""
    parts = []
    for literal, name, _, _ in string.Formatter().parse(format_string):
        if literal:
            # Jinja reads string literals with Python's escapes, which json.dumps writes for quotes and control bytes
            parts.append(json.dumps(literal, ensure_ascii=False))
        if name is not None:
            if name != field:
                raise ValueError(f"the template text {format_string!r} has a field {{{name}}}; only {{{field}}} fits.")
            parts.append(variable)
    return "{{ " + " ~ ".join(parts) + " }}" if parts else ""


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
