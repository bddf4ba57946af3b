"""Where a corpus's text comes from: text files, folders of them, glob patterns, or a `datasets` dataset (streaming
too). Every file or dataset row is a document; files are read in pieces cut where tokenisation is unaffected, so
a corpus larger than RAM is never loaded whole. `prepare.py` tokenises what these give.
"""

from __future__ import annotations

import codecs
import glob
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..resources import sha256_of

TEXT_SUFFIXES = (".txt", ".text", ".md", ".rst")
BLOCK_CHARS = 1 << 20  # a file is read in pieces of about this many characters

# Where a file may be cut without changing its tokens: after a newline, or before a space, that sits between
# two non-space characters. GPT-2's pre-tokeniser starts a new piece there in any case (a space joins the word
# after it, never the one before), so the parts on either side tokenise exactly as the whole does.
SAFE_CUT = re.compile(r"\S\n(?=\S)|\S(?= \S)")


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


def read_pieces(path: Path, block_chars: int = BLOCK_CHARS) -> Iterator[str]:
    """The text of `path` in pieces of about `block_chars` characters, cut only where tokenisation is unaffected.
    Binary, non-UTF-8 and unreadable files raise a ValueError that names the file."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")  # a character split across two blocks is kept whole
    carry, offset = "", 0
    try:
        with path.open("rb") as f:
            while block := f.read(block_chars):
                if b"\x00" in block:
                    raise ValueError(f"{path} looks like a binary file (it holds NUL bytes); pass UTF-8 text files.")
                try:
                    carry += decoder.decode(block)
                except UnicodeDecodeError as error:
                    raise ValueError(
                        f"{path} is not UTF-8 text ({error.reason} at byte {offset + error.start}); convert it to UTF-8."
                    ) from error
                offset += len(block)
                cut = last_safe_cut(carry)
                if cut > 0:
                    yield carry[:cut]
                    carry = carry[cut:]
            carry += decoder.decode(b"", final=True)
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text: it ends inside a character ({error.reason}).") from error
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}.") from error
    if carry:
        yield carry


def last_safe_cut(text: str) -> int:
    """The last index at which `text` may be cut (0 if none). Only the end of the text is searched, in a window
    that doubles until it holds a cut: searching a whole 1 MiB block cost as much as tokenising it."""
    window = 4096
    while True:
        start = max(len(text) - window, 0)
        last = None
        for last in SAFE_CUT.finditer(text, max(start - 1, 0)):
            pass
        if last is not None or start == 0:
            return last.end() if last else 0
        window *= 2


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
