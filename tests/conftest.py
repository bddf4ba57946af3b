"""Test settings shared by every test module.

The real data lives beside the repository in ../shared/data (CI has it there too); it is never copied in.
"""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no Hub here: without this, every Hub look-up retries for ~25 s
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GPT2_SCRATCH_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
os.environ.setdefault("GPT2_SCRATCH_DATA_DIR", str(SHARED_DATA))  # gpt2_scratch.resources.fetch finds files here


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared data folder {SHARED_DATA} is missing; it must sit beside the repository")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tokenizer_dir(shared_data) -> Path:
    return shared_data / "gpt2-tokenizer"


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    """GPT-2's tokenizer as a PreTrainedTokenizerFast (eos as pad), one per test module: tests may change its
    settings (padding side, ...), so modules do not share one."""
    from gpt2_scratch.tokenization import gpt2_tokenizer

    return gpt2_tokenizer(tokenizer_dir)
