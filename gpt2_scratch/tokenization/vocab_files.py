"""Reading and writing the two files that define a GPT-2-style BPE tokenizer, and reading `tokenizer.json`.

OpenAI released them as `encoder.json` (token -> id) and `vocab.bpe` (the merges, best first); Hugging Face
calls the same content `vocab.json` and `merges.txt`. Both are text: tokens are written with the byte
characters of `byte_level.BYTE_TO_UNICODE`, and each merge line is the two tokens separated by one space.
The `tokenizers` library's `tokenizer.json` (all that transformers 5 saves) holds the same vocabulary and merges
plus the added tokens (`<|endoftext|>`, ...).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..resources import fetch, write_atomically
from .byte_level import BYTE_TO_UNICODE

# (vocabulary, merges) file names, OpenAI's first.
FILE_NAME_PAIRS = [("encoder.json", "vocab.bpe"), ("vocab.json", "merges.txt")]
MERGES_HEADER = "#version: 0.2"


def find_vocab_files(path: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Return (vocabulary file, merges file) for GPT-2's tokenizer.

    `path` is a folder holding encoder.json + vocab.bpe or vocab.json + merges.txt; with None, OpenAI's files
    are fetched (pinned sha256, cached) through `gpt2_scratch.resources`.
    """
    if path is None:
        return fetch("gpt2-encoder.json"), fetch("gpt2-vocab.bpe")
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder} is not a folder. Pass a folder holding encoder.json + vocab.bpe (OpenAI's names) "
            "or vocab.json + merges.txt (Hugging Face's names), or None to fetch GPT-2's files."
        )
    for vocab_name, merges_name in FILE_NAME_PAIRS:
        if (folder / vocab_name).is_file() and (folder / merges_name).is_file():
            return folder / vocab_name, folder / merges_name
    wanted = " or ".join(f"{v} + {m}" for v, m in FILE_NAME_PAIRS)
    raise FileNotFoundError(f"{folder} holds no tokenizer files: expected {wanted}.")


def read_vocab(path: str | os.PathLike) -> dict[str, int]:
    """Read encoder.json / vocab.json: a JSON object mapping each token to its id."""
    vocab = _read_json(path, "vocabulary")
    _check_vocab(vocab, f"vocabulary file {path}")
    return vocab


def _check_vocab(vocab, where: str) -> None:
    if not isinstance(vocab, dict) or not all(
        isinstance(token, str) and type(token_id) is int and token_id >= 0 for token, token_id in vocab.items()
    ):
        raise ValueError(f"{where} must be a JSON object mapping token strings to ids >= 0.")
    if len(set(vocab.values())) != len(vocab):
        raise ValueError(f"{where} gives the same id to more than one token.")


def read_merges(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Read vocab.bpe / merges.txt: an optional '#version' line, then one 'left right' merge per line."""
    merges = []
    for number, line in enumerate(_read_text(path, "merges").split("\n"), start=1):
        if not line or (number == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise ValueError(
                f"merges file {path}, line {number}: expected two tokens separated by one space, got {line!r}; "
                "the file is corrupt or is not a BPE merges file."
            )
        merges.append((parts[0], parts[1]))
    if not merges:
        raise ValueError(f"merges file {path} holds no merges; it is empty or truncated.")
    return merges


def check_vocab_matches_merges(vocab: dict[str, int], merges: list[tuple[str, str]], source: str) -> None:
    """Every byte and every merge's inputs and result must be vocabulary tokens, or the files do not belong together."""
    missing_bytes = [char for char in BYTE_TO_UNICODE.values() if char not in vocab]
    if missing_bytes:
        raise ValueError(
            f"{source}: the vocabulary lacks {len(missing_bytes)} of the 256 byte tokens (e.g. {missing_bytes[0]!r}); "
            "it is not a byte-level BPE vocabulary like GPT-2's."
        )
    for rank, (left, right) in enumerate(merges):
        for token in (left, right, left + right):
            if token not in vocab:
                raise ValueError(
                    f"{source}: vocab/merges mismatch: merge {rank + 1} ({left!r} + {right!r}) needs token {token!r}, "
                    "which the vocabulary does not have. The two files come from different tokenizers; "
                    "use the vocabulary and merges that were saved together."
                )


def write_vocab_files(directory: str | os.PathLike, vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
    """Write vocab.json and merges.txt (Hugging Face's names) into `directory`, each through a temporary file."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_atomically(directory / "vocab.json", json.dumps(vocab, ensure_ascii=False))
    write_atomically(directory / "merges.txt", "\n".join([MERGES_HEADER, *(f"{a} {b}" for a, b in merges)]) + "\n")


def read_tokenizer_json(path: str | os.PathLike) -> tuple[dict[str, int], list[tuple[str, str]], dict[str, bool]]:
    """Read a BPE tokenizer's tokenizer.json: (vocabulary with the added tokens, merges best first, {added token:
    whether it is special})."""
    where = f"tokenizer file {path}"
    tokenizer = _read_json(path, "tokenizer")
    model = tokenizer.get("model") if isinstance(tokenizer, dict) else None
    if not isinstance(model, dict) or model.get("type") != "BPE":
        kind = model.get("type") if isinstance(model, dict) else None
        raise ValueError(f"{where} holds no BPE model (model.type is {kind!r}); GPT-2's tokenizer is byte-level BPE.")
    vocab, merges, added_tokens = model.get("vocab"), model.get("merges", []), tokenizer.get("added_tokens", [])
    _check_vocab(vocab, f"{where}: model.vocab")
    if not isinstance(merges, list) or not isinstance(added_tokens, list):
        raise ValueError(f"{where}: model.merges and added_tokens must be lists; the file is corrupt.")
    added = {}
    for entry in added_tokens:
        token, token_id = (entry.get("content"), entry.get("id")) if isinstance(entry, dict) else (None, None)
        if not isinstance(token, str) or type(token_id) is not int or vocab.get(token, token_id) != token_id:
            raise ValueError(f"{where}: added token {entry!r} needs a string content and an id of its own.")
        vocab[token], added[token] = token_id, entry.get("special") is True
    _check_vocab(vocab, f"{where} (with its added tokens)")
    return vocab, [_merge_pair(merge, where, rank) for rank, merge in enumerate(merges, start=1)], added


def _merge_pair(merge, where: str, rank: int) -> tuple[str, str]:
    """A merge as tokenizers writes it: "left right", or ["left", "right"] in newer versions."""
    parts = merge.split(" ") if isinstance(merge, str) else merge
    tokens = isinstance(parts, list) and all(isinstance(part, str) and part and " " not in part for part in parts)
    if not tokens or len(parts) != 2:
        raise ValueError(f"{where}: merge {rank} is {merge!r}, not two byte-level tokens; the file is corrupt.")
    return parts[0], parts[1]


def _read_json(path: str | os.PathLike, kind: str):
    try:
        return json.loads(_read_text(path, kind))
    except json.JSONDecodeError as error:
        raise ValueError(f"{kind} file {path} is not valid JSON ({error}); it is corrupt or truncated.") from error


def _read_text(path: str | os.PathLike, kind: str) -> str:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{kind} file {path} does not exist.")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{kind} file {path} is not UTF-8 text ({error}); it is corrupt.") from error
