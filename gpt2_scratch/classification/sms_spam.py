"""The SMS Spam Collection (UCI), and the course's balanced 70/10/20 splits of it.

The file has one message per line, `label<TAB>text`, with no header and no quoting. A default CSV reader treats a
`"` at the start of a field as an opening quote and swallows the following lines until the next quote: pandas'
`read_csv(sep="\\t")` returns 5572 messages, one of them three messages glued together. `read_sms_spam` reads all
5574 as they are.

The course's published splits (`spam_train.csv`, `spam_val.csv`, `spam_test.csv`) were made from the 5572-row
reading, and pandas' seeded sampling picks rows by position, so reproducing them byte for byte needs that same
reading: `sms_spam_splits(as_published=True)` (the glued message is ham and is not among the 747 sampled).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pandas as pd

from ..resources import fetch, write_atomically

LABEL_IDS = {"ham": 0, "spam": 1}
PUBLISHED_FILE_NAMES = {"train": "spam_train.csv", "validation": "spam_val.csv", "test": "spam_test.csv"}


def read_sms_spam(path: str | os.PathLike | None = None, merge_quoted_lines: bool = False) -> pd.DataFrame:
    """The messages as a DataFrame with columns `Label` ("ham"/"spam") and `Text`, in file order.

    path: the SMSSpamCollection file; None fetches it (pinned sha256). merge_quoted_lines=True reads it the way the
    course did (CSV quoting, 5572 rows), only to reproduce the published splits.
    """
    path = fetch("sms-spam-collection", path)
    quoting = csv.QUOTE_MINIMAL if merge_quoted_lines else csv.QUOTE_NONE
    messages = pd.read_csv(
        path, sep="\t", header=None, names=["Label", "Text"], quoting=quoting, dtype=str, keep_default_na=False
    )
    unknown = sorted(set(messages["Label"]) - set(LABEL_IDS))
    if unknown:
        raise ValueError(f"{path}: unexpected labels {unknown}; an SMS Spam Collection line is 'ham|spam<TAB>text'")
    return messages


def balanced_splits(
    messages: pd.DataFrame, seed: int = 123, fractions: tuple[float, float] = (0.7, 0.1)
) -> dict[str, pd.DataFrame]:
    """Down-sample ham to the number of spam messages, shuffle, and cut into train/validation/test.

    Follows the course step for step (pandas sampling with `seed`, labels mapped ham -> 0, spam -> 1, cuts at
    int(0.7 n) and int(0.1 n)), so that the same input and seed give the same rows in the same order.
    """
    spam = messages[messages["Label"] == "spam"]
    ham = messages[messages["Label"] == "ham"].sample(len(spam), random_state=seed)
    balanced = pd.concat([ham, spam])
    balanced["Label"] = balanced["Label"].map(LABEL_IDS)
    balanced = balanced.sample(frac=1, random_state=seed).reset_index(drop=True)
    train_end = int(fractions[0] * len(balanced))
    validation_end = train_end + int(fractions[1] * len(balanced))
    return {
        "train": balanced[:train_end],
        "validation": balanced[train_end:validation_end],
        "test": balanced[validation_end:],
    }


def sms_spam_splits(
    path: str | os.PathLike | None = None, seed: int = 123, as_published: bool = True
) -> dict[str, pd.DataFrame]:
    """The balanced splits: the course's published ones by default, or (as_published=False) the same procedure on
    all 5574 messages."""
    return balanced_splits(read_sms_spam(path, merge_quoted_lines=as_published), seed=seed)


def write_splits(splits: dict[str, pd.DataFrame], folder: str | os.PathLike) -> dict[str, Path]:
    """Write the splits as the course's CSV files (header `Label,Text`), each through a temporary file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, file_name in PUBLISHED_FILE_NAMES.items():
        written[split] = folder / file_name
        write_atomically(written[split], splits[split].to_csv(index=None))
    return written
