"""Public files the package works with (corpora, datasets, GPT-2's tokenizer), fetched on demand.

Each resource has a public source and a pinned sha256. `fetch(name)` returns a local path:
1. an explicit `path=` given by the caller (checked against the pinned hash only if `verify=True`);
2. a copy in a folder named by the `GPT2_SCRATCH_DATA_DIR` environment variable (tests point it at
   `../shared/data`), used only when its hash matches;
3. the download cache (`$GPT2_SCRATCH_CACHE`, default `~/.cache/gpt2_scratch`);
4. a fresh download, verified, then renamed into the cache so a half-written file is never seen; in offline mode
   (HF_HUB_OFFLINE=1, as for the Hub) nothing is downloaded and the error says which file to put where.
"""

from __future__ import annotations

import hashlib
import io
import os
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import is_offline_mode

from .staging import staged_file


@dataclass(frozen=True)
class Resource:
    name: str
    relative_path: str  # where the file sits inside a data folder such as ../shared/data
    url: str
    sha256: str
    archive_member: str | None = None  # the file inside a zip download, when the source is an archive


RESOURCES = {
    r.name: r
    for r in [
        Resource(
            "the-verdict",
            "the-verdict.txt",
            "https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/ch02/01_main-chapter-code/the-verdict.txt",
            "b41e41a68f0398a3154ae69e2e4c0e2694e17fe0d66730536837f1b01935b31f",
        ),
        Resource(
            "instruction-data",
            "instruction-data.json",
            "https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/ch07/01_main-chapter-code/instruction-data.json",
            "7e09a9af353722ca15c18bc580f093f9c39d3178335a75177319cb1e1d163944",
        ),
        Resource(
            "sms-spam-collection",
            "SMSSpamCollection",
            "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip",
            "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d",
            archive_member="SMSSpamCollection",
        ),
        Resource(
            "gpt2-encoder.json",
            "gpt2-tokenizer/encoder.json",
            "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
            "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
        ),
        Resource(
            "gpt2-vocab.bpe",
            "gpt2-tokenizer/vocab.bpe",
            "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
            "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
        ),
    ]
}


class ResourceError(RuntimeError):
    """A resource could not be found, downloaded or verified."""


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir() -> Path:
    return Path(os.environ.get("GPT2_SCRATCH_CACHE", Path.home() / ".cache" / "gpt2_scratch"))


def fetch(name: str, path: str | os.PathLike | None = None, verify: bool = False) -> Path:
    """Return a local path to resource `name`, downloading and verifying it if needed."""
    if name not in RESOURCES:
        raise ResourceError(f"unknown resource {name!r}; known resources: {', '.join(sorted(RESOURCES))}")
    resource = RESOURCES[name]

    if path is not None:
        path = Path(path)
        if path.is_dir():
            path = path / Path(resource.relative_path).name
        if not path.is_file():
            raise ResourceError(f"{name}: no file at {path}. Pass an existing file, or no path to download it.")
        if verify and sha256_of(path) != resource.sha256:
            raise ResourceError(f"{name}: {path} does not have the expected sha256 {resource.sha256}.")
        return path

    data_dir = os.environ.get("GPT2_SCRATCH_DATA_DIR")
    if data_dir:
        candidate = Path(data_dir) / resource.relative_path
        if candidate.is_file() and sha256_of(candidate) == resource.sha256:
            return candidate

    cached = cache_dir() / resource.relative_path
    if cached.is_file() and sha256_of(cached) == resource.sha256:
        return cached
    if is_offline_mode():
        source = f"{resource.archive_member} from {resource.url}" if resource.archive_member else resource.url
        raise ResourceError(
            f"{name} is not cached and HF_HUB_OFFLINE=1 forbids downloading it: put {source} at {cached} (or "
            f"{resource.relative_path} in a folder named by GPT2_SCRATCH_DATA_DIR), or unset HF_HUB_OFFLINE."
        )
    return _download(resource, cached)


def _download(resource: Resource, target: Path) -> Path:
    try:
        with urllib.request.urlopen(resource.url, timeout=60) as response:
            payload = response.read()
    except OSError as error:
        raise ResourceError(
            f"could not download {resource.name} from {resource.url} ({error}). "
            f"Download it by hand and pass its local path, or set GPT2_SCRATCH_DATA_DIR to a folder holding "
            f"{resource.relative_path}."
        ) from error
    if resource.archive_member is not None:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            payload = archive.read(resource.archive_member)
    actual = hashlib.sha256(payload).hexdigest()
    if actual != resource.sha256:
        raise ResourceError(
            f"{resource.name} from {resource.url} has sha256 {actual}, expected {resource.sha256}; "
            "the source changed or the download was corrupted. Nothing was cached."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, payload)
    return target


def write_atomically(target: str | os.PathLike, payload: bytes | str) -> None:
    """Write `payload` to `target` through a temporary file in the same folder, then rename it into place."""
    with staged_file(Path(target)) as work:
        if isinstance(payload, bytes):
            work.write_bytes(payload)
        else:
            work.write_text(payload, encoding="utf-8")
