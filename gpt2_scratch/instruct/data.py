"""Alpaca-style instruction data: loading, checking, splitting in file order, and tokenizing.

Records are plain dicts with string fields `instruction`, `input` and `output` (extra fields are kept), so the
files this package writes (responses with `model_response`) read back like the ones it reads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from ..data.json_lines import numbered_json_lines
from ..resources import fetch
from ..data.templates import PromptTemplate

REQUIRED_FIELDS = ("instruction", "input", "output")
MAX_REPORTED_ERRORS = 10


def load_records(source=None) -> list[dict]:
    """Instruction records from `source`, checked (see `check_records`). Records in the chat format, a user's then
    an assistant's message (`{"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}`, as reasoning data sets
    such as AM-DeepSeek-R1-Distilled store them), become instruction and output.

    `source` is one of: None (the course's instruction-data.json, fetched and verified); a path to a JSON file
    holding a list of records, a JSONL file (one record a line), or a folder saved with `Dataset.save_to_disk`;
    a `datasets.Dataset`; a list of dicts; or the name of a dataset on the Hugging Face Hub (its "train" split).
    """
    if source is None:
        source = fetch("instruction-data")
    if isinstance(source, (str, os.PathLike)):
        records = _records_from_path_or_hub(source)
    elif isinstance(source, Sequence) or _is_hf_dataset(source):
        records = [dict(record) if isinstance(record, Mapping) else record for record in source]
    else:
        raise ValueError(f"cannot read instruction records from a {type(source).__name__}; pass a path or a list.")
    records = [from_chat(index, record) for index, record in enumerate(records)]
    check_records(records)
    return records


def from_chat(index: int, record):
    """A chat-format record as an instruction record (the user's message the instruction, the assistant's the
    output, its reasoning included); any other record as it is."""
    if not isinstance(record, Mapping) or "messages" not in record or "instruction" in record:
        return record
    messages = record["messages"]
    roles = [m.get("role") for m in messages] if isinstance(messages, list) and all(
        isinstance(m, Mapping) and isinstance(m.get("content"), str) for m in messages) else None
    if roles != ["user", "assistant"]:
        raise ValueError(
            f"record {index}: a chat record needs two messages with string contents, the user's then the "
            f"assistant's; got roles {roles}"
        )
    rest = {key: value for key, value in record.items() if key != "messages"}
    return {**rest, "instruction": messages[0]["content"], "input": "", "output": messages[1]["content"]}


def _is_hf_dataset(source) -> bool:
    import datasets

    return isinstance(source, datasets.Dataset)


def _records_from_path_or_hub(source: str | os.PathLike) -> list:
    path = Path(source)
    if path.is_dir():
        import datasets

        return list(datasets.load_from_disk(str(path)))
    if path.is_file():
        return _read_json_or_jsonl(path)
    if isinstance(source, str) and source.count("/") == 1 and not source.endswith((".json", ".jsonl")):
        return _records_from_hub(source)
    raise FileNotFoundError(f"no instruction data at {path}: give a JSON or JSONL file, or a saved dataset folder.")


def _read_json_or_jsonl(path: Path) -> list:
    if path.suffix == ".jsonl":
        try:
            return [record for _, record in numbered_json_lines(path)]
        except ValueError as error:
            raise ValueError(f"{path}, {error}.") from error
    text = path.read_text(encoding="utf-8")
    try:
        records = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error}). JSON Lines files must end in .jsonl.") from error
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of records, found a {type(records).__name__}.")
    return records


def _records_from_hub(name: str) -> list:
    import datasets

    try:
        return list(datasets.load_dataset(name, split="train"))
    except Exception as error:  # offline, unknown name, or no train split: all mean the same to the user
        raise FileNotFoundError(
            f"{name!r} is neither a local file nor a loadable Hub dataset ({type(error).__name__}: {error})."
        ) from error


def check_records(records: Sequence) -> None:
    """Raise ValueError naming every malformed record by index (missing field, field that is not a string)."""
    problems = []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            problems.append(f"record {index}: expected an object with {', '.join(REQUIRED_FIELDS)}, "
                            f"got {type(record).__name__}")
            continue
        for field in REQUIRED_FIELDS:
            if field not in record:
                problems.append(f"record {index}: field {field!r} is missing")
            elif not isinstance(record[field], str):
                problems.append(f"record {index}: field {field!r} must be a string, got {type(record[field]).__name__}")
    if not records:
        problems.append("there are no records")
    if problems:
        shown = problems[:MAX_REPORTED_ERRORS]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        raise ValueError("malformed instruction data:\n  " + "\n  ".join(shown) + more +
                         "\nEach record needs string fields 'instruction', 'input' (may be empty) and 'output'.")


@dataclass
class InstructionSplits:
    train: list[dict]
    test: list[dict]
    validation: list[dict]

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "test": len(self.test), "validation": len(self.validation)}


def split_records(records: Sequence[dict], train: float = 0.85, test: float = 0.10,
                  validation: float | None = None) -> InstructionSplits:
    """Split in file order as the course does: the first int(train * n) records train, the next int(test * n)
    test, and validation gets the rest (or int(validation * n) records, when given and the ratios sum below 1).
    For the course's 1100 records: 935 train, 110 test, 55 validation."""
    ratios = {"train": train, "test": test, "validation": validation if validation is not None else 0.0}
    if any(not 0.0 <= ratio <= 1.0 for ratio in ratios.values()) or sum(ratios.values()) > 1.0 + 1e-9:
        raise ValueError(f"split ratios must lie in [0, 1] and sum to at most 1, got {ratios}.")
    n = len(records)
    n_train, n_test = int(train * n), int(test * n)
    rest = n - n_train - n_test
    sums_to_one = abs(sum(ratios.values()) - 1.0) < 1e-9
    n_validation = rest if validation is None or sums_to_one else min(rest, int(validation * n))
    end_test = n_train + n_test
    return InstructionSplits(
        train=list(records[:n_train]),
        test=list(records[n_train:end_test]),
        validation=list(records[end_test:end_test + n_validation]),
    )


def encode_record(record: Mapping, tokenizer, template: PromptTemplate) -> dict:
    """Token ids of query + response, and how many of them are the query (for prompt masking).

    The two parts are encoded separately, so the boundary is exact and the query tokens are the very ones the
    model is prompted with at inference (on the course's data this equals encoding the whole text at once)."""
    query_ids = tokenizer.encode(template.query(record))
    response_ids = tokenizer.encode(record["output"])
    return {"input_ids": query_ids + response_ids, "prompt_length": len(query_ids)}


class InstructionDataset(Dataset):
    """Records tokenized once, up front; items are dicts for `InstructionCollator`."""

    def __init__(self, records: Sequence[Mapping], tokenizer, template: PromptTemplate):
        self.items = [encode_record(record, tokenizer, template) for record in records]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]
