"""The corpus pipeline against direct tokenisation of the real files (tiktoken's GPT-2 encoding as the oracle)."""

import numpy as np
import pytest
import torch

from gpt2_scratch.data import TokenShards, TokenWindows, read_pieces, split_tokens, tokenize_corpus, window_loaders
from gpt2_scratch.data import prepare as prepare_module
from gpt2_scratch.tokenization.reference import tiktoken_gpt2

EOT = 50256


@pytest.fixture(scope="module")
def tiktoken(tokenizer_dir):
    return tiktoken_gpt2(tokenizer_dir)


@pytest.fixture(scope="module")
def verdict_path(shared_data):
    return shared_data / "the-verdict.txt"


@pytest.fixture(scope="module")
def verdict_ids(verdict_path, tiktoken):
    return tiktoken.encode(verdict_path.read_text(encoding="utf-8"))


def test_cache_holds_the_files_tokens_as_uint16_memmap(verdict_path, verdict_ids, tokenizer, tmp_path, monkeypatch):
    tokens = tokenize_corpus(verdict_path, tokenizer, cache_dir=tmp_path, show_progress=False)
    assert isinstance(tokens, TokenShards) and tokens.dtype == np.uint16
    assert all(isinstance(part, np.memmap) for part in tokens.parts)
    assert len(tokens) == len(verdict_ids) == 5145  # the course's count
    assert tokens.tolist() == verdict_ids
    # The second call reads the cache: tokenising again would fail here.
    monkeypatch.setattr(prepare_module, "Encoder", lambda *a, **k: pytest.fail("re-tokenised a cached corpus"))
    assert tokenize_corpus(verdict_path, tokenizer, cache_dir=tmp_path, show_progress=False).tolist() == verdict_ids
    assert not list(tmp_path.rglob(".*"))


def test_reading_in_small_pieces_gives_the_same_tokens(verdict_path, verdict_ids, tokenizer, tmp_path):
    pieces = list(read_pieces(verdict_path, block_chars=40))
    assert len(pieces) > 100
    assert "".join(pieces) == verdict_path.read_text(encoding="utf-8")
    tokens = tokenize_corpus(verdict_path, tokenizer, cache_dir=tmp_path, chunk_chars=40, show_progress=False)
    assert len(tokens.parts) > 1 and tokens.tolist() == verdict_ids


def test_folder_documents_are_joined_with_endoftext(tokenizer, tiktoken, tmp_path):
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    first, second = "It was a dark night.\n\nThe end", "  Another story\tbegins here.\n"
    (folder / "a.txt").write_text(first)
    (folder / "sub" / "b.md").write_text(second)
    (folder / "image.png").write_bytes(b"\x89PNG\x00\x00")  # not a text suffix: skipped
    tokens = tokenize_corpus(folder, tokenizer, cache_dir=tmp_path / "cache", show_progress=False)
    assert tokens.tolist() == tiktoken.encode(first) + [EOT] + tiktoken.encode(second)


def test_datasets_rows_are_documents_also_streaming(tokenizer, tiktoken, tmp_path):
    import datasets

    texts = ["First document.", "", "Second one, after an empty row."]
    expected = tiktoken.encode(texts[0]) + [EOT] + tiktoken.encode(texts[2])
    table = datasets.Dataset.from_dict({"text": texts})
    assert tokenize_corpus(table, tokenizer, cache_dir=tmp_path, show_progress=False).tolist() == expected
    stream = table.to_iterable_dataset()
    assert tokenize_corpus(stream, tokenizer, cache_dir=tmp_path / "s", show_progress=False).tolist() == expected
    with pytest.raises(ValueError, match="no column 'body'"):
        tokenize_corpus(table, tokenizer, cache_dir=tmp_path, text_column="body", show_progress=False)


def test_a_changed_file_is_tokenised_again(tokenizer, tiktoken, tmp_path):
    path = tmp_path / "story.txt"
    path.write_text("One version of the text.")
    assert tokenize_corpus(path, tokenizer, cache_dir=tmp_path, show_progress=False).tolist() == tiktoken.encode("One version of the text.")
    path.write_text("Another version.")
    assert tokenize_corpus(path, tokenizer, cache_dir=tmp_path, show_progress=False).tolist() == tiktoken.encode("Another version.")


def test_windows_and_split_follow_the_course(verdict_path, verdict_ids, tokenizer, tmp_path):
    tokens = tokenize_corpus(verdict_path, tokenizer, cache_dir=tmp_path, show_progress=False)
    train, val = split_tokens(tokens, 0.9)
    cut = int(0.9 * len(verdict_ids))
    assert train.tolist() == verdict_ids[:cut] and val.tolist() == verdict_ids[cut:]

    train_loader, val_loader = window_loaders(tokens, max_length=256, batch_size=2, train_ratio=0.9, seed=123)
    assert (len(train_loader), len(val_loader)) == (9, 1)  # the course: 9 training batches of 2 x 256, 1 validation
    windows = train_loader.dataset
    for index in range(len(windows)):
        item = windows[index]
        assert item["input_ids"].dtype == torch.int64
        assert item["input_ids"].tolist() == verdict_ids[256 * index : 256 * index + 256]
        assert torch.equal(item["labels"], item["input_ids"])

    overlapping = TokenWindows(train, max_length=100, stride=30)
    assert len(overlapping) == (cut - 100) // 30 + 1
    assert overlapping[3]["input_ids"].tolist() == verdict_ids[90:190]


def test_shuffling_changes_with_the_epoch_and_repeats_with_the_seed(verdict_path, tokenizer, tmp_path):
    tokens = tokenize_corpus(verdict_path, tokenizer, cache_dir=tmp_path, show_progress=False)

    def order(seed, epoch):
        loader, _ = window_loaders(tokens, max_length=64, batch_size=4, seed=seed)
        loader.sampler.set_epoch(epoch)
        return [tuple(window) for batch in loader for window in batch["input_ids"].tolist()], loader.dataset

    first, windows = order(seed=1, epoch=0)
    assert first == order(seed=1, epoch=0)[0]
    assert first != order(seed=1, epoch=1)[0] and first != order(seed=2, epoch=0)[0]
    every_window = {tuple(windows[i]["input_ids"].tolist()) for i in range(len(windows))}
    assert len(set(first)) == len(first) == len(windows) // 4 * 4  # distinct windows; the incomplete batch dropped
    assert set(first) <= every_window


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"caf\xe9 au lait", "not UTF-8"),
    ],
)
def test_bad_files_get_clear_errors(content, message, tokenizer, tmp_path):
    path = tmp_path / "input.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        tokenize_corpus(path, tokenizer, cache_dir=tmp_path / "cache", show_progress=False)
    assert not list((tmp_path / "cache").rglob("index.json")) and not list((tmp_path / "cache").rglob(".*"))


def test_missing_inputs_and_short_text_get_clear_errors(tokenizer, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tokenize_corpus(tmp_path / "nowhere.txt", tokenizer, cache_dir=tmp_path, show_progress=False)
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(FileNotFoundError, match="no text file"):
        tokenize_corpus(tmp_path / "empty_folder", tokenizer, cache_dir=tmp_path, show_progress=False)
    short = tmp_path / "short.txt"
    short.write_text("Only a few words here, far fewer than one window.")
    tokens = tokenize_corpus(short, tokenizer, cache_dir=tmp_path, show_progress=False)
    with pytest.raises(ValueError, match="fewer than one window of max_length=64"):
        window_loaders(tokens, max_length=64, batch_size=2)


def test_two_runs_tokenising_the_same_new_corpus_into_one_cache(verdict_path, verdict_ids, tokenizer, tmp_path,
                                                                 monkeypatch):
    """Two threads prepare the same new corpus into one cache, chunk by chunk at the same time: each chunk waits
    for the other run's."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    barrier, encode_chunk = Barrier(2, timeout=60), prepare_module.Encoder.encode_chunk

    def meeting(self, chunk):
        barrier.wait()
        return encode_chunk(self, chunk)

    monkeypatch.setattr(prepare_module.Encoder, "encode_chunk", meeting)
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(tokenize_corpus, verdict_path, tokenizer, tmp_path, chunk_chars=400, chunks_per_shard=3,
                            show_progress=False) for _ in range(2)]
        results = [run.result() for run in runs]  # neither raises
    assert [tokens.tolist() for tokens in results] == [verdict_ids, verdict_ids]
    monkeypatch.undo()
    assert tokenize_corpus(verdict_path, tokenizer, cache_dir=tmp_path, chunk_chars=400, chunks_per_shard=3,
                           show_progress=False).tolist() == verdict_ids
    assert len(list(tmp_path.iterdir())) == 1 and not list(tmp_path.rglob(".*"))  # <key>/: shards, plan, index
