"""Raw text in, one long array of token ids out, memory-mapped from a cache file.

Sources are text files, folders of them, or a `datasets` dataset (streaming too). Every file or dataset row is
a document; documents are joined with the tokenizer's end-of-text token, tokenised once, and written block by
block to `<cache_dir>/<key>.tokens` (uint16 when the vocabulary fits, else uint32) with a `<key>.json` beside
it. Each is written under a temporary name of its own and renamed into place, so runs that tokenise the same
corpus at once do not disturb one another. The key hashes the tokenizer and the sources' contents, so a changed
file is re-tokenised and an unchanged one is not. The array is read back with `numpy.memmap`: a corpus larger
than RAM trains without being loaded.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ..progress import progress_bar
from ..resources import cache_dir as resources_cache_dir
from ..resources import sha256_of, write_atomically
from ..staging import staged_file

TEXT_SUFFIXES = (".txt", ".text", ".md", ".rst")
BLOCK_CHARS = 1 << 20  # a file is tokenised in pieces of about this many characters
ENCODE_BATCH = 64  # pieces handed to the Rust tokenizer at once

# Where a file may be cut without changing its tokens: after a newline, or before a space, that sits between
# two non-space characters. GPT-2's pre-tokeniser starts a new piece there in any case (a space joins the word
# after it, never the one before), so the parts on either side tokenise exactly as the whole does.
SAFE_CUT = re.compile(r"\S\n(?=\S)|\S(?= \S)")


def corpus_files(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """The text files named by `paths`: files as given, folders expanded to their *.txt/*.text/*.md/*.rst files
    (recursively, sorted)."""
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
    """The last index at which `text` may be cut (0 if none)."""
    last = None
    for last in SAFE_CUT.finditer(text):
        pass
    return last.end() if last else 0


def token_dtype(vocab_size: int):
    return np.uint16 if vocab_size <= 1 << 16 else np.uint32


def tokenize_corpus(source, tokenizer, cache_dir: str | os.PathLike | None = None, text_column: str = "text",
                    block_chars: int = BLOCK_CHARS, show_progress: bool = True) -> np.memmap:
    """Token ids of the whole corpus `source`, as a read-only memory map (cached; see the module docstring).

    `source` is a path, a list of paths, or a `datasets.Dataset` / `IterableDataset` whose `text_column` holds
    the documents. `tokenizer` is a `PreTrainedTokenizerFast` with an eos token (the document separator).
    """
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no end-of-text (eos) token to separate documents with.")
    documents, fingerprint, description = describe_source(source, text_column, block_chars)
    tokenizer_hash = hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()
    key = hashlib.sha256(f"{tokenizer_hash}|{tokenizer.eos_token_id}|{fingerprint}".encode()).hexdigest()[:24]
    folder = Path(cache_dir) if cache_dir is not None else resources_cache_dir() / "tokens"
    folder.mkdir(parents=True, exist_ok=True)
    tokens_path, meta_path = folder / f"{key}.tokens", folder / f"{key}.json"
    dtype = token_dtype(len(tokenizer))

    if not (meta_path.is_file() and tokens_path.is_file()):
        # A name of this writer's own, renamed into place: two runs tokenising the same new corpus do not collide.
        with staged_file(tokens_path) as staging, open(staging, "wb") as out:
            count = write_tokens(documents(), tokenizer, out, dtype, show_progress)
            if count == 0:
                raise ValueError(f"the corpus {description} is empty: it holds no text to train on.")
        meta = {"num_tokens": count, "dtype": np.dtype(dtype).name, "source": description, "tokenizer_sha256": tokenizer_hash}
        write_atomically(meta_path, json.dumps(meta, indent=2) + "\n")
    meta = json.loads(meta_path.read_text())
    return np.memmap(tokens_path, dtype=meta["dtype"], mode="r", shape=(meta["num_tokens"],))


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


def write_tokens(documents: Iterator[Iterator[str]], tokenizer, out, dtype, show_progress: bool) -> int:
    """Tokenise the documents with eos between two of them, appending the ids to the binary file `out`. Returns
    the token count."""
    encoder, eos = tokenizer.backend_tokenizer, tokenizer.eos_token_id
    pending: list[tuple[bool, str]] = []  # (a new document starts here after an earlier one, text)
    count = 0
    bar = progress_bar(desc="tokenising", unit="tok", unit_scale=True, disable=not show_progress)

    def flush():
        nonlocal count
        encodings = encoder.encode_batch([text for _, text in pending], add_special_tokens=False)
        for (separated, _), encoding in zip(pending, encodings):
            ids = np.asarray(([eos] if separated else []) + encoding.ids, dtype=dtype)
            ids.tofile(out)
            count += len(ids)
            bar.update(len(ids))
        pending.clear()

    try:
        any_text = False
        for pieces in documents:
            first = True
            for piece in filter(None, pieces):
                pending.append((first and any_text, piece))
                first = False
                if len(pending) >= ENCODE_BATCH:
                    flush()
            any_text = any_text or not first
        flush()
    finally:
        bar.close()
    return count
