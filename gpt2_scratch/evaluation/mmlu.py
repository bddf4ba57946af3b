"""Multiple-choice knowledge evaluation in the MMLU format, scored by the log-likelihood of the answer letters.

An example has `question`, `subject`, `choices` (four strings) and `answer` (0-3, or a letter), as in the
`cais/mmlu` dataset on the Hub. Each question becomes a zero-shot prompt ending in "Answer:"; the model's choice
is the letter among " A", " B", " C", " D" whose next-token log-probability is highest.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..progress import progress_bar
from ..resources import write_atomically

LETTERS = ("A", "B", "C", "D")
LOCAL_SUFFIXES = (".json", ".jsonl", ".parquet", ".csv")


def load_mmlu(source: str | os.PathLike | None = None, subjects: Sequence[str] | None = None,
              split: str = "test") -> list[dict]:
    """MMLU examples: from the Hub (`cais/mmlu`, config "all") when `source` is None, else from a local file or a
    folder of files (.json list, .jsonl, .parquet or .csv) in the same format. `subjects` keeps only those."""
    if source is None:
        examples = _from_hub(split)
    else:
        examples = _from_local(Path(source))
    examples = [_normalise(example, index) for index, example in enumerate(examples)]
    if subjects:
        unknown = set(subjects) - {example["subject"] for example in examples}
        if unknown:
            raise ValueError(f"no MMLU examples for subjects {sorted(unknown)}.")
        examples = [example for example in examples if example["subject"] in set(subjects)]
    if not examples:
        raise ValueError("no MMLU examples to evaluate.")
    return examples


def _from_hub(split: str) -> list:
    import datasets

    try:
        return list(datasets.load_dataset("cais/mmlu", "all", split=split))
    except Exception as error:  # offline or no such split
        raise RuntimeError(
            f"could not load cais/mmlu ({split}) from the Hub ({type(error).__name__}: {error}). Offline, pass local "
            "files in the same format (question, subject, choices, answer)."
        ) from error


def _from_local(path: Path) -> list:
    import datasets

    files = sorted(p for p in path.iterdir() if p.suffix in LOCAL_SUFFIXES) if path.is_dir() else [path]
    if not files or not all(p.is_file() for p in files):
        raise FileNotFoundError(f"no MMLU files at {path}: give a {'/'.join(LOCAL_SUFFIXES)} file or a folder of them.")
    examples = []
    for file in files:
        if file.suffix == ".json":
            examples.extend(json.loads(file.read_text(encoding="utf-8")))
        else:
            builder = {".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}[file.suffix]
            examples.extend(datasets.load_dataset(builder, data_files=str(file), split="train"))
    return examples


def _normalise(example: Mapping, index: int) -> dict:
    """Check one example and give `answer` as an index; errors name the example."""
    missing = [key for key in ("question", "choices", "answer") if key not in example]
    if missing:
        raise ValueError(f"MMLU example {index} lacks {missing}; expected question, subject, choices, answer.")
    choices = example["choices"]
    if isinstance(choices, str):  # CSV files store the list as JSON text
        choices = json.loads(choices)
    if len(choices) != len(LETTERS):
        raise ValueError(f"MMLU example {index} has {len(choices)} choices; expected {len(LETTERS)}.")
    answer = example["answer"]
    if isinstance(answer, str) and answer.strip().upper() in LETTERS:
        answer = LETTERS.index(answer.strip().upper())
    if answer not in range(len(LETTERS)):
        raise ValueError(f"MMLU example {index} has answer {example['answer']!r}; expected 0-3 or A-D.")
    return {"question": example["question"], "subject": example.get("subject") or "unknown",
            "choices": list(choices), "answer": int(answer)}


def mmlu_prompt(example: Mapping) -> str:
    subject = example["subject"].replace("_", " ")
    lines = [f"The following is a multiple choice question about {subject}.", "", example["question"]]
    lines += [f"{letter}. {choice}" for letter, choice in zip(LETTERS, example["choices"])]
    return "\n".join(lines) + "\nAnswer:"


def letter_token_ids(tokenizer) -> list[int]:
    """The ids of " A" ... " D", each a single token in GPT-2's vocabulary (and most others)."""
    ids = [tokenizer.encode(" " + letter) for letter in LETTERS]
    if any(len(token_ids) != 1 for token_ids in ids):
        raise ValueError("this tokenizer splits the answer letters ' A'-' D' into several tokens; cannot score.")
    return [token_ids[0] for token_ids in ids]


@dataclass
class MMLUResult:
    accuracy: float
    per_subject: dict[str, dict]  # subject -> {"correct", "total", "accuracy"}
    predictions: list[int]

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy, "num_examples": len(self.predictions), "per_subject": self.per_subject,
                "predictions": [LETTERS[p] for p in self.predictions]}

    def save(self, path: str | os.PathLike) -> None:
        write_atomically(path, json.dumps(self.to_dict(), indent=2) + "\n")


@torch.no_grad()
def score_mmlu(model, tokenizer, examples: Sequence[Mapping], batch_size: int = 8,
               show_progress: bool = True) -> MMLUResult:
    """Accuracy overall and per subject. Prompts are right-padded; each is read at its own last token. A prompt
    longer than the model's context keeps its last tokens (the choices and "Answer:")."""
    letters = torch.tensor(letter_token_ids(tokenizer))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    context = model.config.n_positions
    prompts = [tokenizer.encode(mmlu_prompt(example))[-context:] for example in examples]
    was_training = model.training
    model.eval()
    predictions = []
    for start in progress_bar(range(0, len(prompts), batch_size), desc="mmlu", disable=not show_progress):
        batch = prompts[start:start + batch_size]
        width = max(len(ids) for ids in batch)
        input_ids = torch.tensor([ids + [pad_id] * (width - len(ids)) for ids in batch], device=model.device)
        attention_mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in batch], device=model.device)
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        last = torch.tensor([len(ids) - 1 for ids in batch], device=model.device)
        final_logits = logits[torch.arange(len(batch), device=model.device), last].float()
        letter_logprobs = torch.log_softmax(final_logits, dim=-1)[:, letters.to(model.device)]
        predictions.extend(letter_logprobs.argmax(dim=-1).tolist())
    model.train(was_training)
    return _tally(examples, predictions)


def _tally(examples: Sequence[Mapping], predictions: Sequence[int]) -> MMLUResult:
    correct, total = defaultdict(int), defaultdict(int)
    for example, prediction in zip(examples, predictions):
        total[example["subject"]] += 1
        correct[example["subject"]] += int(prediction == example["answer"])
    per_subject = {subject: {"correct": correct[subject], "total": total[subject],
                             "accuracy": correct[subject] / total[subject]} for subject in sorted(total)}
    accuracy = sum(correct.values()) / len(predictions)
    return MMLUResult(accuracy=accuracy, per_subject=per_subject, predictions=list(predictions))
