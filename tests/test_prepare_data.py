"""Corpus preparation on the real data: sharded token files equal to tiktoken's encoding of each whole file, on
one or two processes and with either encoder; an interrupted run resumes without redoing its complete shards."""

import json
import numpy as np
import pytest

from gpt2_scratch.cli import main
from gpt2_scratch.data import TokenShards, prepare_corpus
from gpt2_scratch.data import prepare as prepare_module
from gpt2_scratch.tokenization.reference import tiktoken_gpt2

EOT = 50256


@pytest.fixture(scope="module")
def tiktoken(tokenizer_dir):
    return tiktoken_gpt2(tokenizer_dir)


@pytest.fixture(scope="module")
def corpus(shared_data, tmp_path_factory):
    """Three real documents: the-verdict, the SMS collection (one file of tab-separated lines), and the instruction
    records written out as text (about 0.7 MB in all)."""
    records = json.loads((shared_data / "instruction-data.json").read_text(encoding="utf-8"))
    instructions = tmp_path_factory.mktemp("corpus") / "instructions.txt"
    instructions.write_text("\n\n".join(f"{r['instruction']}\n{r['input']}\n{r['output']}" for r in records),
                            encoding="utf-8")
    return [shared_data / "the-verdict.txt", shared_data / "SMSSpamCollection", instructions]


def expected_ids(files, tiktoken):
    ids = []
    for path in files:
        ids += ([EOT] if ids else []) + tiktoken.encode_ordinary(path.read_text(encoding="utf-8"))
    return ids


@pytest.mark.parametrize("num_proc", [1, 2])
def test_shards_hold_the_ids_of_encoding_each_whole_file(corpus, tokenizer, tiktoken, tmp_path, num_proc):
    shards = prepare_corpus(corpus, tmp_path / "out", tokenizer, num_proc=num_proc, chunk_chars=20_000,
                            chunks_per_shard=3, show_progress=False)
    expected = expected_ids(corpus, tiktoken)
    assert len(shards) == len(expected) > 150_000
    assert np.array_equal(np.asarray(shards), np.asarray(expected, dtype=np.uint16))
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["num_tokens"] == len(expected) and index["dtype"] == "uint16"
    assert len(index["shards"]) == len(shards.parts) >= 4
    for entry in index["shards"]:  # raw little-endian uint16, as llm.c and nanoGPT read them
        assert (tmp_path / "out" / entry["file"]).stat().st_size == 2 * entry["num_tokens"]
    # A slice across a shard boundary reads both shards.
    boundary = shards.starts[1]
    assert shards[boundary - 5 : boundary + 5].tolist() == expected[boundary - 5 : boundary + 5]
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.name.startswith("."))  == []


def test_the_tokenizers_own_encoder_gives_the_same_ids(shared_data, tokenizer, tiktoken, tmp_path, monkeypatch):
    """Without tiktoken's fast path (another vocabulary), the Rust tokenizer encodes; special-token text in the
    corpus becomes the special token, as the tokenizer itself encodes it, on both paths."""
    sms = shared_data / "SMSSpamCollection"
    special = tmp_path / "special.txt"
    special.write_text("Before <|endoftext|> after, and  two spaces.\n")
    expected = tiktoken.encode_ordinary(sms.read_text(encoding="utf-8")) + [EOT] + tokenizer(special.read_text()).input_ids
    assert expected.count(EOT) == 2
    fast = prepare_corpus([sms, special], tmp_path / "fast", tokenizer, num_proc=2, chunk_chars=30_000,
                          show_progress=False)
    monkeypatch.setattr(prepare_module, "tiktoken_encoding", lambda tokenizer: None)
    assert prepare_module.Encoder(tokenizer).tiktoken is None
    slow = prepare_corpus([sms, special], tmp_path / "slow", tokenizer, num_proc=2, chunk_chars=30_000,
                          show_progress=False)
    assert fast.tolist() == slow.tolist() == expected


def test_an_interrupted_preparation_resumes_after_its_complete_shards(corpus, tokenizer, tiktoken, tmp_path,
                                                                       monkeypatch):
    out, calls = tmp_path / "out", []
    encode_chunk = prepare_module.Encoder.encode_chunk

    def interrupted_at_chunk_8(self, chunk):
        calls.append(chunk[0][1][:20])
        if len(calls) == 8:
            raise KeyboardInterrupt
        return encode_chunk(self, chunk)

    monkeypatch.setattr(prepare_module.Encoder, "encode_chunk", interrupted_at_chunk_8)
    settings = dict(tokenizer=tokenizer, chunk_chars=20_000, chunks_per_shard=3, show_progress=False)
    with pytest.raises(KeyboardInterrupt):
        prepare_corpus(corpus, out, **settings)
    # Shards 0 and 1 (chunks 1-6) are complete; shard 2 was being written: nothing of it is left.
    assert sorted(p.name for p in out.iterdir()) == ["plan.json", "shard-00000.bin", "shard-00001.bin"]

    first_calls, calls[:] = list(calls), []
    def counted(self, chunk):
        calls.append(chunk[0][1][:20])
        return encode_chunk(self, chunk)

    monkeypatch.setattr(prepare_module.Encoder, "encode_chunk", counted)
    shards = prepare_corpus(corpus, out, **settings)
    assert calls[0] == first_calls[6]  # the resumed run starts with chunk 7
    assert shards.tolist() == expected_ids(corpus, tiktoken)
    with pytest.raises(ValueError, match=r"another corpus or preparation \(they differ in chunk_chars\)"):
        prepare_corpus(corpus, out, **{**settings, "chunk_chars": 10_000})


def test_a_damaged_shard_is_refused(shared_data, tokenizer, tmp_path):
    prepare_corpus(shared_data / "the-verdict.txt", tmp_path, tokenizer, chunk_chars=5000, show_progress=False)
    with open(tmp_path / "shard-00000.bin", "r+b") as shard:
        shard.truncate(100)
    with pytest.raises(ValueError, match=r"shard-00000.bin is missing or does not hold the \d+ tokens"):
        TokenShards.open(tmp_path)


def test_globs_and_streaming_datasets_are_sources(shared_data, tokenizer, tiktoken, tmp_path):
    import datasets

    records = json.loads((shared_data / "instruction-data.json").read_text(encoding="utf-8"))[:300]
    texts = [r["instruction"] + "\n" + r["output"] for r in records]
    stream = datasets.Dataset.from_dict({"text": texts}).to_iterable_dataset()
    shards = prepare_corpus(stream, tmp_path / "stream", tokenizer, num_proc=2, chunk_chars=2000, chunks_per_shard=4,
                            show_progress=False)
    expected = [i for text in texts for i in [EOT] + tiktoken.encode_ordinary(text)][1:]
    assert len(shards.parts) > 1 and shards.tolist() == expected

    globbed = prepare_corpus(str(shared_data / "the-*.txt"), tmp_path / "glob", tokenizer, show_progress=False)
    assert globbed.tolist() == tiktoken.encode_ordinary((shared_data / "the-verdict.txt").read_text())


def test_the_command_prepares_and_says_what_it_wrote(corpus, tokenizer_dir, tiktoken, tmp_path, capsys):
    arguments = [*map(str, corpus), str(tmp_path / "out"), "--num-proc", "2", "--tokenizer", str(tokenizer_dir),
                 "--no-progress"]
    assert main(["prepare-data", *arguments]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["num_tokens"] == len(expected_ids(corpus, tiktoken)) and summary["shards"] == 1
    assert TokenShards.open(tmp_path / "out").tolist() == expected_ids(corpus, tiktoken)

    assert main(["prepare-data", str(tmp_path / "nowhere.txt"), str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"gpt2-scratch prepare-data: error: corpus input {tmp_path / 'nowhere.txt'} does not exist: pass a text file "
        "or a folder of them."
    ]
