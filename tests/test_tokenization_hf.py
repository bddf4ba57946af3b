"""GPT-2's tokenizer on the Hugging Face side: built from the files, padding policies, saved and loaded offline."""

import json
import shutil
import urllib.request

import huggingface_hub
import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from gpt2_scratch.resources import RESOURCES, ResourceError, sha256_of
from gpt2_scratch.tokenization import BPETokenizer, find_vocab_files, gpt2_tokenizer, to_hf_tokenizer
from gpt2_scratch.tokenization.reference import tiktoken_gpt2


@pytest.fixture(scope="module")
def verdict(shared_data):
    return (shared_data / "the-verdict.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def verdict_ids(tokenizer_dir, verdict):
    return tiktoken_gpt2(tokenizer_dir).encode(verdict)


# pad policy -> (pad token, its id, vocabulary size)
PAD_POLICIES = {"eos": ("<|endoftext|>", 50256, 50257), "<|pad|>": ("<|pad|>", 50257, 50258), None: (None, None, 50257)}


@pytest.fixture(scope="module")
def tokenizer_for(tokenizer_dir):
    """GPT-2's tokenizer under each pad policy, built once."""
    return {pad: gpt2_tokenizer(tokenizer_dir, pad=pad) for pad in PAD_POLICIES}


@pytest.mark.parametrize("pad", PAD_POLICIES)
def test_gpt2_tokenizer_saves_and_loads_offline(tokenizer_for, tmp_path, verdict, verdict_ids, pad):
    tokenizer_for[pad].save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    for t in (tokenizer_for[pad], loaded):
        assert isinstance(t, PreTrainedTokenizerFast)
        assert (t.pad_token, t.pad_token_id, len(t)) == PAD_POLICIES[pad]
        assert (t.eos_token, t.bos_token, t.unk_token) == ("<|endoftext|>",) * 3
        assert (t.eos_token_id, t.model_max_length) == (50256, 1024)
        assert t.encode(verdict) == verdict_ids
        assert t.decode(verdict_ids) == verdict


@pytest.mark.parametrize("pad", ["eos", "<|pad|>"])
@pytest.mark.parametrize("side", ["right", "left"])
def test_batches_pad_with_the_chosen_token(tokenizer_for, pad, side):
    tokenizer, pad_id = tokenizer_for[pad], PAD_POLICIES[pad][1]
    texts = ["Every effort moves you", "Hi"]
    batch = tokenizer(texts, padding=True, padding_side=side)
    short = tokenizer.encode("Hi")
    padding = [pad_id] * (len(batch["input_ids"][0]) - len(short))
    assert batch["input_ids"][0] == tokenizer.encode(texts[0])
    assert batch["input_ids"][1] == (short + padding if side == "right" else padding + short)
    mask = [1] * len(short) + [0] * len(padding)
    assert batch["attention_mask"][1] == (mask if side == "right" else mask[::-1])


def test_hugging_face_file_names_load_the_same_tokenizer(tokenizer_dir, tmp_path, verdict_ids, verdict):
    BPETokenizer.from_gpt2(tokenizer_dir).save(tmp_path)  # vocab.json + merges.txt
    assert json.loads((tmp_path / "vocab.json").read_text("utf-8")) == json.loads((tokenizer_dir / "encoder.json").read_text("utf-8"))
    assert (tmp_path / "merges.txt").read_text("utf-8") == (tokenizer_dir / "vocab.bpe").read_text("utf-8")
    assert find_vocab_files(tmp_path) == (tmp_path / "vocab.json", tmp_path / "merges.txt")
    assert BPETokenizer.from_gpt2(tmp_path).encode(verdict) == verdict_ids
    assert gpt2_tokenizer(tmp_path).encode(verdict) == verdict_ids


def test_without_a_path_the_pinned_files_are_fetched(monkeypatch, tmp_path, verdict_ids, verdict):
    monkeypatch.setenv("GPT2_SCRATCH_CACHE", str(tmp_path))  # no stale cache: conftest's data folder must serve them
    vocab_path, merges_path = find_vocab_files(None)
    assert sha256_of(vocab_path) == RESOURCES["gpt2-encoder.json"].sha256
    assert sha256_of(merges_path) == RESOURCES["gpt2-vocab.bpe"].sha256
    assert gpt2_tokenizer().encode(verdict) == verdict_ids


@pytest.fixture
def offline_without_data_dir(monkeypatch, tmp_path):
    """HF_HUB_OFFLINE=1 (conftest.py), no data folder, an empty download cache, and a network that fails the test."""
    assert huggingface_hub.is_offline_mode()
    monkeypatch.delenv("GPT2_SCRATCH_DATA_DIR")
    monkeypatch.setenv("GPT2_SCRATCH_CACHE", str(tmp_path / "cache"))
    attempts = []
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, *args, **kwargs: attempts.append(url) or 1 / 0)
    return {"cache": tmp_path / "cache", "attempts": attempts}


def test_offline_gpt2_tokenizer_reads_the_cache(offline_without_data_dir, tokenizer_dir, verdict, verdict_ids):
    (offline_without_data_dir["cache"] / "gpt2-tokenizer").mkdir(parents=True)
    for name in ("encoder.json", "vocab.bpe"):
        shutil.copy(tokenizer_dir / name, offline_without_data_dir["cache"] / "gpt2-tokenizer" / name)
    assert gpt2_tokenizer().encode(verdict) == verdict_ids
    assert offline_without_data_dir["attempts"] == []


def test_offline_gpt2_tokenizer_without_the_files_says_which_file_to_put_where(offline_without_data_dir):
    with pytest.raises(ResourceError) as raised:
        gpt2_tokenizer()
    assert offline_without_data_dir["attempts"] == []  # no network attempt
    message = str(raised.value)
    assert "\n" not in message and "HF_HUB_OFFLINE=1" in message
    expected = offline_without_data_dir["cache"] / "gpt2-tokenizer" / "encoder.json"
    assert f"put {RESOURCES['gpt2-encoder.json'].url} at {expected}" in message
    assert raised.value.__cause__ is None and raised.value.__context__ is None  # a short traceback, no chained one


def test_user_special_tokens_carry_over_to_hugging_face(tokenizer_dir, tmp_path):
    ours = BPETokenizer.from_gpt2(tokenizer_dir)
    ours.add_special_tokens(["<|user|>", "<|assistant|>"])
    to_hf_tokenizer(ours).save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "<|user|>What is 2+2?<|assistant|>4<|endoftext|>"
    assert loaded.encode(text) == ours.encode(text, allowed_special="all")
    assert loaded.convert_tokens_to_ids(["<|user|>", "<|assistant|>"]) == [50257, 50258]
    assert loaded.decode(loaded.encode(text), skip_special_tokens=True) == "What is 2+2?4"
