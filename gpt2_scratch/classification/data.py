"""Labelled texts from anywhere, checked, as a `datasets.DatasetDict` with train/validation/test splits.

`load_labelled_texts(source)` accepts:
- "sms-spam": the course's balanced SMS spam splits (labels ham, spam);
- a CSV/TSV/JSON/JSON-lines/Parquet file: one table, shuffled with `seed` and cut 70/10/20;
- a folder of such files whose names contain "train", "val" (or "dev") and "test", e.g. the course's split files;
- a folder written by `Dataset.save_to_disk`, a `datasets.Dataset`/`DatasetDict`, or a dataset name for
  `datasets.load_dataset`.
Splits the source lacks (validation, test) are cut from its training split in the same proportions.

Every split comes out with two columns: `text` (non-empty strings) and `label` (a `ClassLabel` whose names are the
label set, stored in the model config as id2label / label2id). Label names may be anything: "spam"/"ham",
"positive"/"negative", grievance categories. Integer labels index into `label_names` when those are given.

`tokenize_splits` then turns the texts into token ids, truncated to a maximum length; padding happens per batch
(`DataCollatorWithPadding`), to the longest sequence of that batch.
"""

from __future__ import annotations

import csv
import numbers
import os
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from ..data.json_lines import numbered_json_lines
from .sms_spam import LABEL_IDS, sms_spam_splits

SPLIT_NAMES = ("train", "validation", "test")
DEFAULT_FRACTIONS = (0.7, 0.1)  # train, validation; the test split gets the rest
TABLE_READERS = {
    # Cells are read as written: no type guessing (a text "1" or "NA" stays a string, no dates appear).
    ".csv": lambda path: read_delimited(path, ","),
    ".tsv": lambda path: read_delimited(path, "\t"),
    ".json": lambda path: numbered_from_1(pd.read_json(path, dtype=False)),
    ".jsonl": lambda path: read_json_lines(path),
    ".parquet": lambda path: numbered_from_1(pd.read_parquet(path)),
}
# Files whose rows are numbered by the line they start on (so an error names the line a text editor shows); the rows
# of the others, and of datasets, are numbered from 1.
LINE_NUMBERED_SUFFIXES = (".csv", ".tsv", ".jsonl")
# Words that mark a split's file in a folder of split files, e.g. spam_val.csv or imdb-test.jsonl.
SPLIT_FILE_WORDS = {"train": ("train",), "validation": ("val", "dev"), "test": ("test",)}


@dataclass
class Table:
    """One split as read from its source, before checking: a DataFrame and where it came from (for error messages).

    The frame's index gives each row's place in the source, and stays with the row when a split is shuffled and cut:
    a file line (`unit` "line") or a data row counted from 1 (`unit` "row").
    """

    frame: pd.DataFrame
    origin: str
    unit: str = "row"


def where(table: Table, place) -> str:
    """Where one row of `table` is in its source, for error messages: "data.csv, line 4"."""
    counting = "" if table.unit == "line" else " (counting data rows from 1)"
    return f"{table.origin}, {table.unit} {place}{counting}"


def load_labelled_texts(
    source,
    text_column: str = "text",
    label_column: str = "label",
    label_names: list[str] | None = None,
    seed: int = 123,
    fractions: tuple[float, float] = DEFAULT_FRACTIONS,
) -> datasets.DatasetDict:
    """Read, check and encode the labelled texts of `source` (see the module docstring) into train/validation/test.

    Column names are matched case-insensitively (the course's files have `Label` and `Text`). Without
    `label_names`, the label set is the sorted set of labels of the training split (or the dataset's ClassLabel
    names). Raises ValueError naming the file and line (CSV, TSV, JSON lines) or the source and data row of an
    empty text, a missing or unknown label, and the available columns when a column is missing.
    """
    tables, known_names = read_tables(source)
    label_names = list(label_names) if label_names is not None else known_names
    tables = fill_missing_splits(tables, seed, fractions)
    columns = {split: find_columns(table, text_column, label_column) for split, table in tables.items()}
    texts = {split: checked_texts(table, columns[split][0]) for split, table in tables.items()}
    if label_names is None:
        label_names = infer_label_names(tables["train"], columns["train"][1])
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=label_names)})
    return datasets.DatasetDict(
        {
            split: datasets.Dataset.from_dict(
                {"text": texts[split], "label": label_ids(table, columns[split][1], label_names)}, features=features
            )
            for split, table in tables.items()
        }
    )


def label_names_of(splits: datasets.DatasetDict) -> list[str]:
    return splits["train"].features["label"].names


# --- reading ----------------------------------------------------------------------------------------------------------


def read_tables(source) -> tuple[dict[str, Table], list[str] | None]:
    """The splits `source` provides, and the label names it defines (None when its labels are plain values)."""
    if isinstance(source, (datasets.Dataset, datasets.DatasetDict)):
        return tables_from_datasets(source, "the given dataset")
    if isinstance(source, str) and source == "sms-spam":
        splits = sms_spam_splits()
        tables = {split: Table(numbered_from_1(frame), f"sms-spam {split} split") for split, frame in splits.items()}
        return tables, list(LABEL_IDS)
    path = Path(source)
    if path.is_file():
        return {"train": read_table_file(path)}, None
    if path.is_dir():
        if (path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file():
            return tables_from_datasets(datasets.load_from_disk(str(path)), str(path))
        return read_split_files(path), None
    return tables_from_hub(str(source))


def read_table_file(path: Path) -> Table:
    reader = TABLE_READERS.get(path.suffix.lower())
    if reader is None:
        raise ValueError(f"{path}: cannot read {path.suffix or 'extension-less'} files; use one of {', '.join(TABLE_READERS)}")
    try:
        frame = reader(path)
    except (ValueError, pd.errors.ParserError) as error:
        raise ValueError(f"{path}: could not be read as a {path.suffix} table: {error}") from error
    return Table(frame, str(path), "line" if path.suffix.lower() in LINE_NUMBERED_SUFFIXES else "row")


def read_delimited(path: Path, delimiter: str) -> pd.DataFrame:
    """A CSV/TSV file whose first line names the columns: every cell a string as written, each row indexed by the
    line it starts on (a quoted cell may span lines). Blank lines are skipped."""
    with open(path, encoding="utf-8-sig", newline="") as file:
        reader = csv.reader(file, delimiter=delimiter)
        try:
            header = next(reader, None)
            if header is None:
                raise ValueError("the file is empty; its first line must name the columns")
            if len(set(header)) < len(header):
                raise ValueError(f"the header {header} names a column twice")
            rows, lines, start = [], [], reader.line_num + 1
            for row in reader:
                if len(row) > 1 or (row and row[0].strip()):
                    if len(row) != len(header):
                        separator = "tab" if delimiter == "\t" else "comma"
                        raise ValueError(
                            f"line {start} has {len(row)} cells where the header names {len(header)} columns; "
                            f"a cell holding a {separator} must be in double quotes"
                        )
                    rows.append(row)
                    lines.append(start)
                start = reader.line_num + 1
        except csv.Error as error:
            raise ValueError(f"line {reader.line_num}: {error}") from error
    return pd.DataFrame(rows, columns=header, index=lines)


def read_json_lines(path: Path) -> pd.DataFrame:
    """One JSON object a line, each row indexed by its line. Blank lines are skipped."""
    numbered = numbered_json_lines(path)
    for number, record in numbered:
        if not isinstance(record, dict):
            raise ValueError(f"line {number} holds a {type(record).__name__}, not an object of named columns")
    return pd.DataFrame.from_records([record for _, record in numbered], index=[number for number, _ in numbered])


def numbered_from_1(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its rows indexed 1, 2, 3, ...: the data row numbers error messages give."""
    return frame.set_axis(pd.RangeIndex(1, len(frame) + 1), axis=0)


def read_split_files(folder: Path) -> dict[str, Table]:
    files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in TABLE_READERS)
    tables = {}
    for split, words in SPLIT_FILE_WORDS.items():
        matches = [f for f in files if any(word in f.stem.lower() for word in words)]
        if len(matches) > 1:
            raise ValueError(f"{folder}: several files could be the {split} split: {', '.join(m.name for m in matches)}")
        if matches:
            tables[split] = read_table_file(matches[0])
    if "train" not in tables:
        raise ValueError(
            f"{folder}: no training file. A data folder holds files named like *train*.csv, *val*.csv and "
            f"*test*.csv (or .tsv, .json, .jsonl, .parquet); found {[f.name for f in files] or 'none'}."
        )
    return tables


def tables_from_hub(name: str) -> tuple[dict[str, Table], list[str] | None]:
    try:
        loaded = datasets.load_dataset(name)
    except Exception as error:  # datasets raises many kinds; all mean "this is not a dataset we can load"
        raise ValueError(
            f"{name!r} is not a file, a folder, 'sms-spam', or a dataset that datasets.load_dataset can load "
            f"({type(error).__name__}: {error})"
        ) from error
    return tables_from_datasets(loaded, name)


def tables_from_datasets(loaded, origin: str) -> tuple[dict[str, Table], list[str] | None]:
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"train": loaded})
    renamed = {"valid": "validation", "val": "validation", "dev": "validation"}
    tables = {
        renamed.get(split, split): Table(numbered_from_1(ds.to_pandas()), f"{origin} [{split}]")
        for split, ds in loaded.items()
    }
    unknown = sorted(set(tables) - set(SPLIT_NAMES))
    if unknown or "train" not in tables:
        raise ValueError(f"{origin}: expected splits train (required), validation, test; found {sorted(loaded)}")
    features = next(iter(loaded.values())).features
    class_labels = [feature for feature in features.values() if isinstance(feature, datasets.ClassLabel)]
    return tables, (class_labels[0].names if len(class_labels) == 1 else None)


def fill_missing_splits(tables: dict[str, Table], seed: int, fractions: tuple[float, float]) -> dict[str, Table]:
    """Cut the splits the source lacks out of its shuffled training split, in the proportions of `fractions`.

    Each row keeps its index, its place in the source, so that an error names the row of the file, not of the part.
    """
    missing = [split for split in SPLIT_NAMES if split not in tables]
    if not missing:
        return tables
    shares = {"train": fractions[0], "validation": fractions[1], "test": 1 - sum(fractions)}
    if min(shares.values()) <= 0:
        raise ValueError(f"split fractions {fractions} must be positive and sum to less than 1 (test gets the rest)")
    train = tables["train"]
    order = np.random.RandomState(seed).permutation(len(train.frame))
    shuffled = train.frame.iloc[order]
    kept = ["train", *missing]
    total = sum(shares[split] for split in kept)
    result, start = dict(tables), 0
    for i, split in enumerate(kept):
        end = len(shuffled) if i == len(kept) - 1 else start + int(shares[split] / total * len(shuffled))
        result[split] = Table(shuffled.iloc[start:end], train.origin, train.unit)
        if end == start:
            raise ValueError(f"{train.origin}: {len(shuffled)} rows are too few to cut a {split} split from")
        start = end
    return result


# --- checking ---------------------------------------------------------------------------------------------------------


def find_columns(table: Table, text_column: str, label_column: str) -> tuple[str, str]:
    by_lower_name = {str(column).lower(): column for column in table.frame.columns}
    found = []
    for role, wanted in (("text", text_column), ("label", label_column)):
        column = wanted if wanted in table.frame.columns else by_lower_name.get(wanted.lower())
        if column is None:
            raise ValueError(
                f"{table.origin}: no {role} column {wanted!r}; the columns are {list(table.frame.columns)}. "
                f"Name the right one with {role}_column= (--{role}-column on the command line)."
            )
        found.append(column)
    return found[0], found[1]


def checked_texts(table: Table, column: str) -> list[str]:
    texts = table.frame[column].tolist()
    for place, text in zip(table.frame.index, texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(
                f"{where(table, place)}: the text is {text!r}; every example needs a non-empty text. "
                "Remove the row or fill it in."
            )
    return texts


def is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or (isinstance(value, str) and not value)


def as_integer(value) -> int | None:
    """The integer a label stands for (7, np.int64(7) or "7"), or None."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def infer_label_names(train: Table, column: str) -> list[str]:
    """The training split's distinct labels as strings, integers in numeric order (2 before 10), then the rest."""
    values = {str(value) for value in train.frame[column].tolist() if not is_missing(value)}
    return sorted(values, key=lambda value: (0, as_integer(value), "") if as_integer(value) is not None else (1, 0, value))


def label_ids(table: Table, column: str, label_names: list[str]) -> list[int]:
    """Each row's label as an index into label_names: by name, or, for an integer label, as that index itself."""
    index_of = {name: i for i, name in enumerate(label_names)}
    ids = []
    for place, value in zip(table.frame.index, table.frame[column].tolist()):
        if is_missing(value):
            raise ValueError(f"{where(table, place)}: the label is missing.")
        if str(value) in index_of:
            ids.append(index_of[str(value)])
        elif as_integer(value) is not None and 0 <= as_integer(value) < len(label_names):
            ids.append(as_integer(value))
        else:
            raise ValueError(
                f"{where(table, place)}: unknown label {value!r}; the labels are "
                f"{label_names}. Fix the row, or name every label with label_names= (--labels a,b,c)."
            )
    return ids


# --- tokenizing -------------------------------------------------------------------------------------------------------


def tokenize_splits(splits: datasets.DatasetDict, tokenizer, max_length: int) -> datasets.DatasetDict:
    """Token ids and attention masks for every text, truncated to max_length tokens (the end is cut off); no padding
    yet: `DataCollatorWithPadding` pads each batch to its longest sequence."""

    def encode(batch):
        return tokenizer(batch["text"], truncation=True, max_length=max_length)

    return splits.map(encode, batched=True, desc="Tokenizing")


def default_max_length(model_positions: int, requested: int | None) -> int:
    if requested is None:
        return model_positions
    if not 0 < requested <= model_positions:
        raise ValueError(f"max_length={requested} must be between 1 and the model's {model_positions} positions")
    return requested


def describe_source(source) -> str:
    """A JSON-friendly description of a data source, for the run's recorded settings."""
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else repr(source)
