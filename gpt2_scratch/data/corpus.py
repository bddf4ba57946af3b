"""Where a corpus's text comes from: text files, folders of them, glob patterns, or a `datasets` dataset (streaming
too). Every file or dataset row is a document; files are read in pieces cut where tokenisation is unaffected, so
a corpus larger than RAM is never loaded whole. `prepare.py` tokenises what these give.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

from ..resources import sha256_of
from ..tokenization.text_files import read_pieces

TEXT_SUFFIXES = (".txt", ".text", ".md", ".rst")
def corpus_files(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """The text files named by `paths`: files as given, folders expanded to their *.txt/*.text/*.md/*.rst files
    (recursively, sorted), glob patterns (`data/*.txt`, `web/**/*.md`) to the files they match (sorted)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"folder {path} holds no text file ({', '.join(TEXT_SUFFIXES)}).")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif glob.has_magic(str(path)):
            found = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
            if not found:
                raise FileNotFoundError(f"the pattern {path} matches no file.")
            files.extend(found)
        else:
            raise FileNotFoundError(f"corpus input {path} does not exist: pass a text file or a folder of them.")
    if not files:
        raise ValueError("no corpus input was given.")
    return files


def describe_source(source, text_column: str, block_chars: int):
    """(documents: a function giving each document as an iterator of text pieces, a fingerprint of the contents,
    a short description for messages)."""
    if hasattr(source, "features") or type(source).__name__ in ("Dataset", "IterableDataset"):
        return describe_dataset(source, text_column)
    files = corpus_files(source)
    fingerprint = "|".join(sha256_of(f) for f in files)

    def documents():
        for f in files:
            yield read_pieces(f, block_chars)

    description = str(files[0]) if len(files) == 1 else f"{len(files)} files ({files[0]} ...)"
    return documents, fingerprint, description


def describe_dataset(dataset, text_column: str):
    features = getattr(dataset, "features", None) or getattr(dataset, "column_names", None)
    if features is not None and text_column not in features:
        raise ValueError(f"the dataset has no column {text_column!r}; its columns are {list(features)}. Pass text_column=.")
    # Map-style datasets carry a content fingerprint; a streaming one is named by its origin and split.
    fingerprint = getattr(dataset, "_fingerprint", None)
    if fingerprint is None:
        info = dataset.info
        fingerprint = f"stream:{info.dataset_name}:{info.config_name}:{dataset.split}:{info.version}"

    def documents():
        for row in dataset:
            yield iter([row[text_column]])

    return documents, f"{fingerprint}:{text_column}", f"dataset {getattr(dataset.info, 'dataset_name', '') or fingerprint}"
