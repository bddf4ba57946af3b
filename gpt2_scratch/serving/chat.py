"""A chat in the terminal with an instruction-tuned checkpoint: each turn is written in the checkpoint's chat template
(the prompt format it was tuned with) after the turns before it, and the answer streams as it is generated."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from ..generation import check_sampling, stream_generate
from .app import load_causal_lm

QUIT = ("/exit", "/quit")


def chat(checkpoint: str | os.PathLike, max_new_tokens: int = 256, temperature: float = 0.0, top_k: int | None = None,
         seed: int | None = None, dtype: str | None = None, read: Callable[[str], str] = input) -> None:
    """Chat with `checkpoint` until end of input (Ctrl-D) or /exit: `read` gives the user's turns, the answers are
    printed piece by piece. Greedy when temperature is 0. When the conversation outgrows the context, its oldest
    turns are left out of the prompt."""
    check_sampling(max_new_tokens, temperature, top_k)
    model, tokenizer = load_causal_lm(checkpoint, dtype)
    if not tokenizer.chat_template:
        raise ValueError(f"{checkpoint} has no chat template: it was not instruction-tuned by `gpt2-scratch instruct` "
                         "(use `gpt2-scratch generate` to continue a prompt).")
    context = model.config.n_positions
    history: list[dict] = []
    while True:
        try:
            line = read("> ")
        except EOFError:
            print()
            return
        if line.strip() in QUIT:
            return
        if not line.strip():
            continue
        history.append({"role": "user", "content": line})
        prompt, length = fitting_prompt(history, tokenizer, context)
        if prompt is None:
            print(f"(that message has {length} tokens, more than the context of {context} holds: say it shorter)",
                  file=sys.stderr)
            history.pop()
            continue
        answer = []
        for piece in stream_generate(model, tokenizer, prompt, min(max_new_tokens, context - length),
                                     temperature=temperature, top_k=top_k, seed=seed):
            print(piece, end="", flush=True)
            answer.append(piece)
        print()
        history.append({"role": "assistant", "content": "".join(answer)})


def fitting_prompt(history: list[dict], tokenizer, context: int) -> tuple[str | None, int]:
    """The conversation as the prompt for the next answer and its length in tokens, its oldest exchanges dropped
    (from `history` too) until it leaves room for a token; (None, length) when even the last message alone does not."""
    while True:
        prompt = tokenizer.apply_chat_template(history, add_generation_prompt=True, tokenize=False)
        length = len(tokenizer.encode(prompt))
        if length < context:
            return prompt, length
        if len(history) == 1:
            return None, length
        del history[:2]
