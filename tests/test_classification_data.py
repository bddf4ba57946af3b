"""Classification data: the SMS Spam Collection and its published splits, any labelled table, and batching."""

import json

import datasets
import pandas as pd
import pytest
import torch
from transformers import DataCollatorWithPadding

from gpt2_scratch.classification import (
    load_labelled_texts,
    read_sms_spam,
    sms_spam_splits,
    tokenize_splits,
    write_splits,
)
from gpt2_scratch.resources import sha256_of
from gpt2_scratch.tokenization import gpt2_tokenizer


def test_sms_spam_reader_keeps_every_message_as_written(shared_data):
    messages = read_sms_spam(shared_data / "SMSSpamCollection")
    # Oracle: the file's lines, each cut at its first tab.
    lines = (shared_data / "SMSSpamCollection").read_text(encoding="utf-8").splitlines()
    expected = [line.split("\t", 1) for line in lines]
    assert len(messages) == 5574
    assert messages["Label"].value_counts().to_dict() == {"ham": 4827, "spam": 747}
    assert messages.values.tolist() == expected


def test_course_reader_merges_the_quoted_lines(shared_data):
    messages = read_sms_spam(shared_data / "SMSSpamCollection", merge_quoted_lines=True)
    assert len(messages) == 5572  # what the course reports
    assert messages["Text"].str.contains("\nham\t").sum() == 1


def test_balanced_splits_reproduce_the_published_files_byte_for_byte(shared_data, tmp_path):
    written = write_splits(sms_spam_splits(shared_data / "SMSSpamCollection", seed=123), tmp_path)
    for split, path in written.items():
        published = shared_data / "sms_spam_splits" / path.name
        assert path.read_bytes() == published.read_bytes(), split
    assert sha256_of(written["train"]) == "c89a1156b8476e6f4c0bfa4bc944f3d934e3db2942c5dc2a1456a65a795afcde"


def test_balanced_splits_of_all_messages(shared_data):
    splits = sms_spam_splits(shared_data / "SMSSpamCollection", as_published=False)
    assert {split: len(frame) for split, frame in splits.items()} == {"train": 1045, "validation": 149, "test": 300}
    together = pd.concat(splits.values())
    assert together["Label"].value_counts().to_dict() == {0: 747, 1: 747}
    # Every spam message of the file is used once, and the ham messages are drawn from the file's.
    messages = read_sms_spam(shared_data / "SMSSpamCollection")
    assert sorted(together[together["Label"] == 1]["Text"]) == sorted(messages[messages["Label"] == "spam"]["Text"])
    assert set(together[together["Label"] == 0]["Text"]) <= set(messages[messages["Label"] == "ham"]["Text"])
    # Another seed samples other ham messages.
    other = sms_spam_splits(shared_data / "SMSSpamCollection", seed=7, as_published=False)
    assert not splits["train"].equals(other["train"])


def test_folder_of_split_files_with_named_integer_labels(shared_data):
    splits = load_labelled_texts(shared_data / "sms_spam_splits", label_names=["ham", "spam"])
    assert splits["train"].features["label"].names == ["ham", "spam"]
    published = pd.read_csv(shared_data / "sms_spam_splits" / "spam_val.csv")
    assert splits["validation"]["text"] == published["Text"].tolist()
    assert splits["validation"]["label"] == published["Label"].tolist()
    assert {split: len(ds) for split, ds in splits.items()} == {"train": 1045, "validation": 149, "test": 300}


def test_builtin_sms_spam_source_matches_the_published_files(shared_data):
    splits = load_labelled_texts("sms-spam")
    published = pd.read_csv(shared_data / "sms_spam_splits" / "spam_test.csv")
    assert splits["test"]["text"] == published["Text"].tolist()
    assert [splits["test"].features["label"].int2str(i) for i in splits["test"]["label"]] == [
        "spam" if label else "ham" for label in published["Label"]
    ]


def grievances(count=40):
    topics = {"billing": "I was charged twice", "delivery": "my parcel never arrived", "account": "I cannot log in"}
    return pd.DataFrame(
        [{"complaint": f"{text} (ticket {i})", "category": name} for i in range(count) for name, text in topics.items()]
    )


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".json", ".jsonl"])
def test_one_table_is_shuffled_and_cut_70_10_20(tmp_path, suffix):
    frame = grievances()
    path = tmp_path / f"complaints{suffix}"
    if suffix in (".csv", ".tsv"):
        frame.to_csv(path, index=False, sep="\t" if suffix == ".tsv" else ",")
    else:
        frame.to_json(path, orient="records", lines=suffix == ".jsonl")
    splits = load_labelled_texts(path, text_column="complaint", label_column="category", seed=5)
    assert {split: len(ds) for split, ds in splits.items()} == {"train": 84, "validation": 12, "test": 24}
    assert splits["train"].features["label"].names == ["account", "billing", "delivery"]
    rows = {(ds.features["label"].int2str(label), text) for ds in splits.values() for text, label in zip(ds["text"], ds["label"])}
    assert rows == set(zip(frame["category"], frame["complaint"]))
    again = load_labelled_texts(path, text_column="complaint", label_column="category", seed=5)
    assert again["test"]["text"] == splits["test"]["text"]
    assert load_labelled_texts(path, text_column="complaint", label_column="category", seed=6)["test"]["text"] != (
        splits["test"]["text"]
    )


def test_datasets_source_keeps_class_names_and_gets_missing_splits():
    dataset = datasets.Dataset.from_dict(
        {"text": [f"review {i}" for i in range(50)], "label": [i % 2 for i in range(50)]},
        features=datasets.Features(
            {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["negative", "positive"])}
        ),
    )
    splits = load_labelled_texts(datasets.DatasetDict({"train": dataset.select(range(40)), "test": dataset.select(range(40, 50))}))
    assert splits["train"].features["label"].names == ["negative", "positive"]
    assert splits["test"]["text"] == [f"review {i}" for i in range(40, 50)]
    assert len(splits["train"]) + len(splits["validation"]) == 40 and len(splits["validation"]) == 5


def write_csv(path, rows):
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    return path


def test_clear_errors_name_the_row(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_csv(data / "train.csv", [["good", "a"], ["fine", "b"], ["ok", "a"]])
    write_csv(data / "val.csv", [["good", "a"]])
    write_csv(data / "test.csv", [["good", "a"], ["what", "c"]])
    with pytest.raises(ValueError, match=r"test.csv, line 3: unknown label 'c'.*\['a', 'b'\]"):
        load_labelled_texts(data)

    write_csv(data / "test.csv", [["good", "a"], ["", "b"]])
    with pytest.raises(ValueError, match=r"test.csv, line 3: the text is ''"):
        load_labelled_texts(data)

    write_csv(data / "test.csv", [["good", "a"], ["fine", ""]])
    with pytest.raises(ValueError, match=r"test.csv, line 3: the label is missing"):
        load_labelled_texts(data)

    (data / "test.csv").write_text("text,label\ngood,a\nfine, really,b\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"test.csv: .*line 3 has 3 cells where the header names 2 columns"):
        load_labelled_texts(data)
    write_csv(data / "test.csv", [["good", "a"]])

    with pytest.raises(ValueError, match=r"no label column 'category'; the columns are \['text', 'label'\]"):
        load_labelled_texts(data, label_column="category")

    no_train = tmp_path / "no-train"
    no_train.mkdir()
    (no_train / "notes.json").write_text(json.dumps([]))
    with pytest.raises(ValueError, match=r"no training file.*\['notes.json'\]"):
        load_labelled_texts(no_train)


def numbered_table(suffix: str) -> tuple[str, int]:
    """A table of 30 examples written by hand as a .csv, .tsv or .jsonl file (a text spanning two lines, a blank
    line), with one unknown label, and the line of the file that holds it: the line a text editor shows."""
    rows = [["first, with a comma", "a"], ["second\nspanning two lines", "b"], ["third", "a"], ["fourth", "z"]]
    rows += [[f"text {i}", "ab"[i % 2]] for i in range(26)]
    if suffix == ".jsonl":
        lines = [json.dumps({"text": text, "label": label}) for text, label in rows]
    else:
        separator = "," if suffix == ".csv" else "\t"
        quoted = [[f'"{cell}"' if separator in cell or "\n" in cell else cell for cell in row] for row in rows]
        lines = [separator.join(["text", "label"])] + [separator.join(row) for row in quoted]
    lines.insert(3, "")
    content = "\n".join(lines) + "\n"
    bad_row = json.dumps({"text": "fourth", "label": "z"}) if suffix == ".jsonl" else separator.join(["fourth", "z"])
    return content, content.split("\n").index(bad_row) + 1


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_errors_name_the_line_of_the_file_not_the_row_of_the_shuffled_split(tmp_path, suffix):
    content, line = numbered_table(suffix)
    path = tmp_path / f"table{suffix}"
    path.write_text(content, encoding="utf-8")
    splits = load_labelled_texts(path, label_names=["a", "b", "z"])
    assert "second\nspanning two lines" in [text for split in splits.values() for text in split["text"]]
    with pytest.raises(ValueError, match=rf"table{suffix}, line {line}: unknown label 'z'"):
        load_labelled_texts(path, label_names=["a", "b"])


def test_errors_in_a_dataset_name_its_row_counted_from_1():
    labels = ["a", "b"] * 10
    labels[7] = "z"
    dataset = datasets.Dataset.from_dict({"text": [f"text {i}" for i in range(20)], "label": labels})
    expected = r"the given dataset \[train\], row 8 \(counting data rows from 1\): unknown label 'z'"
    with pytest.raises(ValueError, match=expected):
        load_labelled_texts(dataset, label_names=["a", "b"])


def test_batches_are_padded_to_their_longest_text_and_truncated(tokenizer_dir):
    tokenizer = gpt2_tokenizer(tokenizer_dir)
    texts = ["short", "a somewhat longer message here", "word " * 100]
    splits = datasets.DatasetDict(
        {split: datasets.Dataset.from_dict({"text": texts, "label": [0, 1, 0]}) for split in ("train", "test")}
    )
    encoded = tokenize_splits(splits, tokenizer, max_length=16)
    lengths = [len(ids) for ids in encoded["train"]["input_ids"]]
    assert lengths == [len(tokenizer(texts[0]).input_ids), len(tokenizer(texts[1]).input_ids), 16]
    collate = DataCollatorWithPadding(tokenizer)
    features = [{k: encoded["train"][i][k] for k in ("input_ids", "attention_mask", "label")} for i in range(2)]
    batch = collate(features)
    assert batch["input_ids"].shape == (2, lengths[1])  # the longest in this batch, not max_length
    assert batch["attention_mask"].sum(-1).tolist() == lengths[:2]
    assert torch.equal(batch["labels"], torch.tensor([0, 1]))
    assert (batch["input_ids"][0, lengths[0] :] == tokenizer.pad_token_id).all()


def test_save_to_disk_folder(tmp_path):
    dataset = datasets.Dataset.from_dict({"sentence": ["great film", "dull plot", "loved it"] * 10, "stars": [5, 1, 5] * 10})
    dataset.train_test_split(test_size=0.2, seed=0).save_to_disk(tmp_path / "reviews")
    splits = load_labelled_texts(tmp_path / "reviews", text_column="sentence", label_column="stars")
    assert splits["train"].features["label"].names == ["1", "5"]
    assert (len(splits["train"]), len(splits["validation"]), len(splits["test"])) == (21, 3, 6)
    assert sorted(splits["test"]["text"]) == sorted(datasets.load_from_disk(tmp_path / "reviews")["test"]["sentence"])
