"""Corpus preparation: raw text to sharded token files, in bounded memory, on several processes, resumable.

`prepare_corpus(source, out_dir)` writes
- `plan.json`: what is being prepared (the source's fingerprint, the tokenizer, the chunking). A run that finds the
  same plan in `out_dir` resumes; another plan is refused.
- `shard-00000.bin`, `shard-00001.bin`, ...: raw token ids (uint16 when the vocabulary fits, else uint32). Shard k
  holds the tokens of chunks k*chunks_per_shard to (k+1)*chunks_per_shard - 1 of the source, so a shard that exists
  is complete (each is written under a temporary name and renamed into place) and a resumed run skips its chunks.
- `index.json`, last: the shards and their token counts. Its presence means the corpus is complete.

A chunk is about `chunk_chars` characters of text: file pieces cut where GPT-2's pre-tokeniser starts a new piece
anyway (`read_pieces`), or dataset rows; documents are joined with the end-of-text token. Chunks are tokenised by
`num_proc` worker processes, at most two chunks per worker in flight, and written in order as they come back, so
memory stays bounded whatever the corpus size. `TokenShards` reads the shards back, memory-mapped, as one sequence.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import multiprocessing
import os
import re
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ..progress import progress_bar
from ..resources import cache_dir as resources_cache_dir
from ..resources import write_atomically
from ..staging import staged_file
from .corpus import describe_source

CHUNK_CHARS = 1 << 20  # characters tokenised at once by one worker
CHUNKS_PER_SHARD = 64  # about 64 MiB of text, 30 MB of uint16 tokens per shard
SHARD_NAME = re.compile(r"^shard-\d{5}\.bin$")
PLAN_KEYS = ("format", "fingerprint", "tokenizer_sha256", "eos_token_id", "dtype", "chunk_chars", "chunks_per_shard")
# Text whose ids the fast path must give exactly as the tokenizer does before it is used: words, numbers, spaces
# and punctuation runs, contractions, non-Latin scripts, emoji, a special token.
PROBE = "Hello world's 12,345 tokens!!  \n\n\tCafé ÅÄÖ 東京 🤖 I'll <|endoftext|> naïve—\u00a0end "


def token_dtype(vocab_size: int):
    return np.uint16 if vocab_size <= 1 << 16 else np.uint32


def prepare_corpus(source, out_dir: str | os.PathLike, tokenizer=None, num_proc: int = 1, text_column: str = "text",
                   chunk_chars: int = CHUNK_CHARS, chunks_per_shard: int = CHUNKS_PER_SHARD,
                   show_progress: bool = True) -> TokenShards:
    """Tokenise `source` (text files, folders, globs, or a `datasets` dataset, streaming too, whose `text_column`
    holds the documents) into sharded token files in `out_dir` (see the module docstring) and return them.
    `tokenizer`: a `PreTrainedTokenizerFast` with an eos token (default: GPT-2's)."""
    if tokenizer is None:
        from ..tokenization import gpt2_tokenizer

        tokenizer = gpt2_tokenizer()
    return write_shards(describe_source(source, text_column, chunk_chars), Path(out_dir), tokenizer, num_proc,
                        chunk_chars, chunks_per_shard, show_progress)


def tokenize_corpus(source, tokenizer, cache_dir: str | os.PathLike | None = None, text_column: str = "text",
                    chunk_chars: int = CHUNK_CHARS, chunks_per_shard: int = CHUNKS_PER_SHARD, num_proc: int = 1,
                    show_progress: bool = True) -> TokenShards:
    """`prepare_corpus` into a cache: `<cache_dir>/<key>/`, where the key hashes the tokenizer and the sources'
    contents, so a changed file is tokenised again and an unchanged one is not (default cache:
    ~/.cache/gpt2_scratch/tokens). Runs that prepare the same corpus at once write identical shards. A folder that
    `prepare_corpus` wrote (it holds index.json) is opened as it is."""
    prepared = source[0] if isinstance(source, (list, tuple)) and len(source) == 1 else source
    if isinstance(prepared, (str, os.PathLike)) and (Path(prepared) / "index.json").is_file():
        shards = TokenShards.open(prepared)
        if shards.index.get("tokenizer_sha256") != tokenizer_sha256(tokenizer):
            raise ValueError(f"{source} was prepared with another tokenizer than this run's; prepare it again with "
                             "this one, or train with that one.")
        return shards
    described = describe_source(source, text_column, chunk_chars)
    key = hashlib.sha256(f"{tokenizer_sha256(tokenizer)}|{tokenizer.eos_token_id}|{described[1]}".encode()).hexdigest()
    folder = Path(cache_dir) if cache_dir is not None else resources_cache_dir() / "tokens"
    return write_shards(described, folder / key[:24], tokenizer, num_proc, chunk_chars, chunks_per_shard, show_progress)


def tokenizer_sha256(tokenizer) -> str:
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()


def write_shards(described, out: Path, tokenizer, num_proc: int, chunk_chars: int, chunks_per_shard: int,
                 show_progress: bool) -> TokenShards:
    documents, fingerprint, description = described
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no end-of-text (eos) token to separate documents with.")
    if num_proc < 1 or chunk_chars < 1 or chunks_per_shard < 1:
        raise ValueError(f"num_proc, chunk_chars and chunks_per_shard must be positive, got {num_proc}, {chunk_chars}, "
                         f"{chunks_per_shard}.")
    dtype = np.dtype(token_dtype(len(tokenizer)))
    plan = {"format": 1, "source": description, "fingerprint": fingerprint, "tokenizer_sha256": tokenizer_sha256(tokenizer),
            "eos_token_id": tokenizer.eos_token_id, "dtype": dtype.name, "chunk_chars": chunk_chars,
            "chunks_per_shard": chunks_per_shard}
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "index.json").is_file():
        refuse_another_plan(out, plan)
        write_atomically(out / "plan.json", json.dumps(plan, indent=2) + "\n")
        done = shard_count(out)  # shards complete: a resumed run skips their chunks
        bar = progress_bar(desc="tokenising", unit="chunk", initial=done * chunks_per_shard, disable=not show_progress)
        with bar:
            pending = (chunk for number, chunk in enumerate(chunks(documents(), chunk_chars))
                       if number >= done * chunks_per_shard)
            stream = encoded(pending, Encoder(tokenizer), num_proc)
            for shard in itertools.count(done):
                first = next(stream, None)
                if first is None:
                    break
                with staged_file(out / shard_name(shard)) as staging, open(staging, "wb") as shard_file:
                    for tokens in itertools.chain([first], itertools.islice(stream, chunks_per_shard - 1)):
                        tokens.tofile(shard_file)
                        bar.update(1)
        sizes = [(out / shard_name(k)).stat().st_size // dtype.itemsize for k in range(shard_count(out))]
        if sum(sizes) == 0:
            raise ValueError(f"the corpus {description} is empty: it holds no text to train on.")
        shards = [{"file": shard_name(k), "num_tokens": n} for k, n in enumerate(sizes)]
        index = {**plan, "num_tokens": sum(sizes), "shards": shards}
        write_atomically(out / "index.json", json.dumps(index, indent=2) + "\n")
    shards = TokenShards.open(out)
    refuse_another_plan(out, plan, shards.index)
    return shards


def shard_name(number: int) -> str:
    return f"shard-{number:05d}.bin"


def shard_count(out: Path) -> int:
    count = 0
    while (out / shard_name(count)).is_file():
        count += 1
    return count


def refuse_another_plan(out: Path, plan: dict, found: dict | None = None) -> None:
    """Shards in `out` made from another corpus, tokenizer or chunking cannot be resumed or reused."""
    if found is None:
        path = out / "plan.json"
        if not path.is_file():
            if shard_count(out):
                raise ValueError(f"{out} holds shard files but no plan.json: delete them, or choose another folder.")
            return
        try:
            found = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot read {path} ({error}); delete {out} or choose another folder.") from error
    changed = [key for key in PLAN_KEYS if not isinstance(found, dict) or found.get(key) != plan[key]]
    if changed:
        raise ValueError(
            f"{out} holds tokens of another corpus or preparation (they differ in {', '.join(changed)}): delete it, "
            "or choose another output folder."
        )


def chunks(documents: Iterator[Iterator[str]], chunk_chars: int) -> Iterator[list[tuple[bool, str]]]:
    """The documents' text in chunks of at least `chunk_chars` characters (the last may be shorter): lists of
    (a new document starts here after an earlier one, text)."""
    chunk, size, any_text = [], 0, False
    for pieces in documents:
        first = True
        for piece in filter(None, pieces):
            chunk.append((first and any_text, piece))
            size += len(piece)
            first = False
            if size >= chunk_chars:
                yield chunk
                chunk, size = [], 0
        any_text = any_text or not first
    if chunk:
        yield chunk


def encoded(pending: Iterator[list], encoder: Encoder, num_proc: int) -> Iterator[np.ndarray]:
    """The token ids of each chunk of `pending`, in order: here, or by `num_proc` worker processes with at most two
    chunks each in flight (forked, so each inherits the encoder instead of unpickling it)."""
    if num_proc == 1:
        yield from (encoder.encode_chunk(chunk) for chunk in pending)
        return
    if "fork" not in multiprocessing.get_all_start_methods():
        raise ValueError("num_proc above 1 needs processes started by fork (Linux, macOS); use num_proc=1 here.")
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(num_proc, mp_context=context, initializer=set_worker_encoder, initargs=(encoder,)) as pool:
        in_flight = deque()
        for chunk in pending:
            in_flight.append(pool.submit(encode_in_worker, chunk))
            if len(in_flight) >= 2 * num_proc:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()


WORKER_ENCODER = None  # the Encoder of a worker process


def set_worker_encoder(encoder: Encoder) -> None:
    global WORKER_ENCODER
    WORKER_ENCODER = encoder


def encode_in_worker(chunk: list[tuple[bool, str]]) -> np.ndarray:
    return WORKER_ENCODER.encode_chunk(chunk)


class Encoder:
    """Text to ids exactly as `tokenizer` encodes it (special tokens in the text included). tiktoken's encoder
    where it gives the same ids (a GPT-2-style byte-level BPE: about 10x the speed of `tokenizers` on one core, see
    docs/performance.md), else the tokenizer's own batch encoder."""

    def __init__(self, tokenizer):
        self.eos, self.dtype = tokenizer.eos_token_id, token_dtype(len(tokenizer))
        self.backend = tokenizer.backend_tokenizer
        self.tiktoken = tiktoken_encoding(tokenizer)
        if self.tiktoken is not None and self.encode([PROBE]) != self.encode_with_backend([PROBE]):
            self.tiktoken = None

    def encode(self, texts: list[str]) -> list[list[int]]:
        if self.tiktoken is None:
            return self.encode_with_backend(texts)
        if any(token in text for text in texts for token in self.tiktoken.special_tokens_set):
            return self.tiktoken.encode_batch(texts, num_threads=1, allowed_special="all")
        return self.tiktoken.encode_ordinary_batch(texts, num_threads=1)  # the same ids without the special scan

    def encode_with_backend(self, texts: list[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self.backend.encode_batch_fast(texts, add_special_tokens=False)]

    def encode_chunk(self, chunk: list[tuple[bool, str]]) -> np.ndarray:
        parts = []
        for (separated, _), ids in zip(chunk, self.encode([text for _, text in chunk])):
            if separated:
                parts.append([self.eos])
            parts.append(ids)
        return np.concatenate([np.asarray(part, dtype=self.dtype) for part in parts])


def tiktoken_encoding(tokenizer):
    """tiktoken's Encoding of `tokenizer`'s vocabulary when it is a GPT-2-style byte-level BPE whose token ids
    rise with the merge order (tiktoken merges by id), else None."""
    import tiktoken
    from tiktoken_ext.openai_public import r50k_pat_str

    from ..tokenization.byte_level import UNICODE_TO_BYTE

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    model, pre_tokenizer = spec.get("model") or {}, spec.get("pre_tokenizer") or {}
    gpt2_style = (
        model.get("type") == "BPE" and spec.get("normalizer") is None and not model.get("dropout")
        and not model.get("continuing_subword_prefix") and not model.get("end_of_word_suffix")
        and pre_tokenizer.get("type") == "ByteLevel" and pre_tokenizer.get("use_regex")
        and not pre_tokenizer.get("add_prefix_space")
    )
    if not gpt2_style:
        return None
    added = {token["content"]: token["id"] for token in spec.get("added_tokens", [])}
    vocab = {token: id_ for token, id_ in model["vocab"].items() if token not in added}
    try:
        ranks = {bytes(UNICODE_TO_BYTE[char] for char in token): id_ for token, id_ in vocab.items()}
        merged = [vocab["".join(pair.split(" ") if isinstance(pair, str) else pair)] for pair in model["merges"]]
    except KeyError:
        return None
    if len(ranks) != len(vocab) or any(bytes([b]) not in ranks for b in range(256)):
        return None
    if any(later <= earlier for earlier, later in zip(merged, merged[1:])) or (merged and merged[0] < 256):
        return None
    return tiktoken.Encoding(name="prepare", pat_str=r50k_pat_str, mergeable_ranks=ranks, special_tokens=added)


class TokenShards:
    """The token ids of a prepared corpus, read as one sequence: `len`, slicing (a TokenShards again, nothing
    read), `numpy.asarray` and `tolist` (read). Each shard is a read-only `numpy.memmap`, so a corpus larger than
    RAM trains without being loaded."""

    def __init__(self, parts: list[np.ndarray], index: dict | None = None):
        self.parts, self.index = parts, index
        self.starts = np.cumsum([0] + [len(part) for part in parts]).tolist()

    @classmethod
    def open(cls, folder: str | os.PathLike) -> TokenShards:
        """The shards listed in `folder`/index.json, each checked against its recorded length."""
        folder = Path(folder)
        path = folder / "index.json"
        try:
            index = json.loads(path.read_text())
            dtype = np.dtype(index["dtype"])
            shards = [(entry["file"], int(entry["num_tokens"])) for entry in index["shards"]]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path} is not a readable token index ({error}); prepare the corpus again.") from error
        if dtype not in (np.uint16, np.uint32) or not all(SHARD_NAME.match(str(name)) for name, _ in shards):
            raise ValueError(f"{path} names a token type or shard file that prepare_corpus does not write; prepare the "
                             "corpus again.")
        parts = []
        for name, count in shards:
            size = (folder / name).stat().st_size if (folder / name).is_file() else None
            if size != count * dtype.itemsize:
                raise ValueError(f"{folder / name} is missing or does not hold the {count} tokens index.json lists; "
                                 "prepare the corpus again.")
            if count:
                parts.append(np.memmap(folder / name, dtype=dtype, mode="r", shape=(count,)))
        return cls(parts, index)

    @property
    def dtype(self) -> np.dtype:
        return self.parts[0].dtype if self.parts else np.dtype(np.uint16)

    def __len__(self) -> int:
        return self.starts[-1]

    def __getitem__(self, key: slice) -> TokenShards:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("TokenShards are sliced with [start:stop]; read them with numpy.asarray.")
        start, stop, _ = key.indices(len(self))
        parts = []
        first = bisect.bisect_right(self.starts, start) - 1
        for number in range(max(first, 0), len(self.parts)):
            offset = self.starts[number]
            if offset >= stop:
                break
            parts.append(self.parts[number][max(start - offset, 0) : stop - offset])
        return TokenShards(parts)

    def __array__(self, dtype=None, copy=None):
        if len(self.parts) == 1:
            return np.asarray(self.parts[0], dtype=dtype)
        return np.asarray(np.concatenate(self.parts) if self.parts else np.zeros(0, self.dtype), dtype=dtype)

    def tolist(self) -> list[int]:
        return np.asarray(self).tolist()
