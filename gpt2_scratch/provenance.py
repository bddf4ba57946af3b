"""Where a checkpoint's weights come from: provenance.json, one typed record that every run writes (`convert`,
`pretrain`, `train-classifier`, `instruct`) and the model cards read. Its fields are documented in docs/hub.md."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .staging import staged_file

FILE_NAME = "provenance.json"
KINDS = ("converted", "pretrained", "classifier", "instruction-tuned")
BASE_ORIGINS = ("openai", "scratch", "random")
# Names that are data files by their suffix, even where the file is not on this machine.
DATA_SUFFIXES = (".json", ".jsonl", ".csv", ".tsv", ".txt", ".parquet", ".arrow", ".zip", ".gz")
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


@dataclass(frozen=True)
class Provenance:
    kind: str | None = None  # one of KINDS; every run writes it (older checkpoints may lack it)
    source: str | None = None  # converted: what convert read; pretrained: the corpus
    layout: str | None = None  # converted: the source's layout
    dtype: str | None = None  # converted: the dtype written, when it differs from the source's
    base_model: str | None = None  # the model this one starts from
    base_origin: str | None = None  # fine-tunes: one of BASE_ORIGINS
    method: str | None = None  # fine-tunes: "full fine-tuning", "lora", ...
    datasets: list[str] = field(default_factory=list)  # trained on
    eval_dataset: dict | None = None  # {"type", "name"}: what the metrics were measured on
    license: str | None = None
    prompt_format: str | None = None  # instruction-tuned: the prompt, with {instruction} where it goes
    command: str | None = None  # the command line that made the checkpoint

    def __post_init__(self):
        if self.kind is not None and self.kind not in KINDS:
            raise ValueError(f"provenance kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.base_origin is not None and self.base_origin not in BASE_ORIGINS:
            raise ValueError(
                f"provenance base_origin {self.base_origin!r} is not one of {', '.join(map(repr, BASE_ORIGINS))}; "
                "leave it out to let the card work it out from the base."
            )
        if self.eval_dataset is not None and set(self.eval_dataset) != {"type", "name"}:
            raise ValueError(f"provenance eval_dataset must have exactly 'type' and 'name', got {self.eval_dataset!r}")

    def to_dict(self) -> dict:
        """The fields that are set, as provenance.json holds them."""
        return {name: value for name, value in asdict(self).items() if value not in (None, [])}

    def write(self, folder: str | os.PathLike) -> Path:
        path = Path(folder) / FILE_NAME
        with staged_file(path) as work:
            work.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, folder: str | os.PathLike) -> Provenance:
        """The folder's provenance.json, checked; an empty record when there is none."""
        path = Path(folder) / FILE_NAME
        if not path.is_file():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path} is not valid JSON ({error}): fix or remove it") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold one JSON object, not a {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(data) - known):
            raise ValueError(f"{path}: unknown field(s) {', '.join(unknown)}; the fields are {', '.join(sorted(known))}")
        try:
            return cls(**data)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None


def is_local_path(name: str) -> bool:
    """Whether `name` names a file or folder on this machine (absolute, present here, or a data file by its suffix)
    rather than a Hub repository or a preset: cards show only its last component, never where it lives."""
    path = Path(name)
    return path.is_absolute() or os.path.exists(name) or path.suffix.lower() in DATA_SUFFIXES


def is_hub_id(name: str | None) -> bool:
    """Whether `name` is a Hub repository id ("user/name") rather than a local folder or a preset."""
    return bool(name) and HUB_ID.fullmatch(name) is not None and not Path(name).exists()


def dataset_reference(source: str) -> dict:
    """The {"type", "name"} of the data set `source` for "eval_dataset": a Hub id as it is; a local file or folder
    by its name, with a slug of its stem as the type (model-index wants an id, not a path)."""
    if not is_local_path(source):
        return {"type": source, "name": source}
    path = Path(source)
    return {"type": re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-") or "local", "name": path.name}
