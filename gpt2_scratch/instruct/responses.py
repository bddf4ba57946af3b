"""Responses of an instruction-tuned model: greedy decoding of each record's query, saved in the course's format
(the records with a `model_response` field beside `output`)."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence

import torch

from ..progress import progress_bar
from ..resources import write_atomically
from ..data.templates import PromptTemplate


@torch.no_grad()
def generate_responses(
    model,
    tokenizer,
    records: Sequence[Mapping],
    template: PromptTemplate,
    max_new_tokens: int = 256,
    batch_size: int = 8,
    show_progress: bool = True,
) -> list[str]:
    """Greedy response to each record's query, stopping at the end-of-text token.

    Queries are left-padded into batches (the model takes positions from the attention mask, so padding does not
    change the result). A query too long for the context keeps its last tokens, and no more new tokens are
    generated than fit in the model's context (`n_positions`)."""
    context = model.config.n_positions
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    queries = [tokenizer.encode(template.query(record)) for record in records]
    warn_of_long_queries(queries, context)
    was_training = model.training
    model.eval()
    responses = []
    for start in progress_bar(range(0, len(queries), batch_size), desc="responses", disable=not show_progress):
        batch = [_fit_query(ids, context) for ids in queries[start:start + batch_size]]
        width = max(len(ids) for ids in batch)
        input_ids = torch.tensor([[pad_id] * (width - len(ids)) + ids for ids in batch], device=model.device)
        attention_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=model.device)
        output = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            max_new_tokens=min(max_new_tokens, context - width),
            do_sample=False,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=pad_id,
        )
        for row in output[:, width:]:
            responses.append(tokenizer.decode(row, skip_special_tokens=True).strip())
    model.train(was_training)
    return responses


def _fit_query(ids: list[int], context: int) -> list[int]:
    """Leave room for at least one new token."""
    return ids if len(ids) < context else ids[-(context - 1):]


def warn_of_long_queries(queries: Sequence[list[int]], context: int) -> None:
    """One warning for all the queries that `_fit_query` cuts (one per query would repeat for each)."""
    lengths = [len(ids) for ids in queries if len(ids) >= context]
    if lengths:
        warnings.warn(
            f"{len(lengths)} of {len(queries)} queries do not fit the context of {context} tokens (the longest has "
            f"{max(lengths)}); each keeps its last {context - 1} tokens.", stacklevel=3,
        )


def with_responses(records: Sequence[Mapping], responses: Sequence[str]) -> list[dict]:
    """The records with each model response beside its reference `output`."""
    if len(records) != len(responses):
        raise ValueError(f"{len(records)} records but {len(responses)} responses.")
    return [{**record, "model_response": response} for record, response in zip(records, responses)]


def save_responses(path: str | os.PathLike, records: Sequence[Mapping]) -> None:
    """Write records (with `model_response`) as the course does: a JSON list, indented by 4."""
    write_atomically(path, json.dumps(list(records), indent=4, ensure_ascii=False) + "\n")
