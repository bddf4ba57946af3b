"""Instruction data: loading and checking records, the course's split of the real file, templates, and the
collator's exact labels, whose loss must equal the course's pre-shifted cross-entropy."""

import json

import datasets
import pytest
import torch
import torch.nn.functional as F

from gpt2_scratch import ScratchGPT2Config, ScratchGPT2ForCausalLM
from gpt2_scratch.instruct import (
    ALPACA,
    PHI3,
    TEMPLATES,
    InstructionCollator,
    InstructionDataset,
    PromptTemplate,
    encode_record,
    load_records,
    split_records,
)

EOS = 50256
X = -100


@pytest.fixture(scope="module")
def records(shared_data):
    return load_records(shared_data / "instruction-data.json")


def test_course_split_of_the_real_file(records, shared_data):
    assert records == json.loads((shared_data / "instruction-data.json").read_text(encoding="utf-8"))
    splits = split_records(records)
    assert splits.sizes() == {"train": 935, "test": 110, "validation": 55}
    # file order: train, then test, then validation
    assert splits.train == records[:935]
    assert splits.test == records[935:1045]
    assert splits.validation == records[1045:]


def test_split_by_given_ratios():
    items = [{"instruction": str(i), "input": "", "output": ""} for i in range(20)]
    splits = split_records(items, train=0.5, test=0.25, validation=0.1)
    assert splits.sizes() == {"train": 10, "test": 5, "validation": 2}
    assert splits.validation == items[15:17]
    assert split_records(items, train=0.7, test=0.2, validation=0.1).sizes() == {"train": 14, "test": 4, "validation": 2}
    with pytest.raises(ValueError, match="sum to at most 1"):
        split_records(items, train=0.9, test=0.2)


def test_jsonl_and_datasets_sources_give_the_same_records(records, tmp_path):
    first = records[:5]
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in first), encoding="utf-8")
    assert load_records(jsonl) == first
    assert load_records(datasets.Dataset.from_list(first)) == first
    saved = tmp_path / "saved"
    datasets.Dataset.from_list(first).save_to_disk(str(saved))
    assert load_records(saved) == first


def test_malformed_records_are_reported_with_their_index(tmp_path):
    bad = [
        {"instruction": "ok", "input": "", "output": "fine"},
        {"instruction": "no output", "input": ""},
        {"instruction": 3, "input": "", "output": "x"},
        "not a record",
    ]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(ValueError) as error:
        load_records(path)
    message = str(error.value)
    assert "record 1: field 'output' is missing" in message
    assert "record 2: field 'instruction' must be a string, got int" in message
    assert "record 3: expected an object" in message
    assert "record 0" not in message
    with pytest.raises(ValueError, match="line 2"):
        (tmp_path / "broken.jsonl").write_text('{"instruction": "a", "input": "", "output": "b"}\n{oops\n')
        load_records(tmp_path / "broken.jsonl")
    with pytest.raises(FileNotFoundError):
        load_records(tmp_path / "missing.json")


def test_alpaca_and_phi3_templates(records):
    with_input = next(r for r in records if r["input"])
    without_input = next(r for r in records if not r["input"])
    preamble = ("Below is an instruction that describes a task. "
                "Write a response that appropriately completes the request.")
    assert ALPACA.query(with_input) == (
        f"{preamble}\n\n### Instruction:\n{with_input['instruction']}\n\n### Input:\n{with_input['input']}"
        "\n\n### Response:\n"
    )
    assert ALPACA.query(without_input) == f"{preamble}\n\n### Instruction:\n{without_input['instruction']}\n\n### Response:\n"
    assert PHI3.query(with_input) == f"<|user|>\n{with_input['instruction']}\n{with_input['input']}\n<|assistant|>\n"


@pytest.mark.parametrize("template", TEMPLATES.values(), ids=TEMPLATES.keys())
def test_chat_template_writes_the_training_text(records, tokenizer, template):
    """transformers' apply_chat_template with the template's chat_template gives the query for [user] plus the
    generation prompt, and for [user, assistant] the very tokens the collator trains on."""
    tokenizer.chat_template = template.chat_template()
    collator = InstructionCollator(pad_token_id=EOS, eos_token_id=EOS)
    for record in [next(r for r in records if r["input"]), next(r for r in records if not r["input"])] + records[::100]:
        user = {"role": "user", "content": record["instruction"]}
        if record["input"]:
            user["input"] = record["input"]
        query = tokenizer.apply_chat_template([user], add_generation_prompt=True, tokenize=False)
        assert query == template.query(record)
        conversation = [user, {"role": "assistant", "content": record["output"]}]
        text = tokenizer.apply_chat_template(conversation, tokenize=False)
        trained = collator([encode_record(record, tokenizer, template)])["input_ids"][0].tolist()
        assert tokenizer.encode(text) == trained
    # Two turns follow one another as packed examples do; a system message has no place in the format.
    first, second = records[0], records[1]
    turns = [{"role": "user", "content": first["instruction"]}, {"role": "assistant", "content": "Yes."},
             {"role": "user", "content": second["instruction"]}]
    assert tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=False) == (
        template.query({**first, "input": ""}) + "Yes.<|endoftext|>" + template.query({**second, "input": ""}))
    with pytest.raises(Exception, match="system"):
        tokenizer.apply_chat_template([{"role": "system", "content": "Be brief."}, user], tokenize=False)


def test_chat_template_keeps_jinja_syntax_in_the_format_as_text(tokenizer):
    template = PromptTemplate("odd", "{{% raw %}} {{{{ x }}}} \\ \"{instruction}\"\n", "[{input}]", "\n>>> \U0001F600 ")
    tokenizer.chat_template = template.chat_template()
    record = {"instruction": "say {{ hi }}", "input": "\u00e9\U0001F600"}
    user = {"role": "user", "content": record["instruction"], "input": record["input"]}
    assert tokenizer.apply_chat_template([user], add_generation_prompt=True, tokenize=False) == template.query(record)


def test_encoding_the_two_parts_equals_encoding_the_whole_text(records, tokenizer):
    """Query and response are encoded apart (exact boundary); on the course's data that changes no token."""
    for record in records[::25]:
        item = encode_record(record, tokenizer, ALPACA)
        assert item["input_ids"] == tokenizer.encode(ALPACA.query(record) + record["output"])
        assert item["prompt_length"] == len(tokenizer.encode(ALPACA.query(record)))


ITEMS = [
    {"input_ids": [1, 2, 3], "prompt_length": 2},
    {"input_ids": [4, 5, 6, 7, 8], "prompt_length": 3},
    {"input_ids": [9], "prompt_length": 1},
]


def test_collator_labels_without_prompt_masking():
    batch = InstructionCollator(pad_token_id=EOS, eos_token_id=EOS)(ITEMS)
    assert batch["input_ids"].tolist() == [
        [1, 2, 3, EOS, EOS, EOS],
        [4, 5, 6, 7, 8, EOS],
        [9, EOS, EOS, EOS, EOS, EOS],
    ]
    assert batch["labels"].tolist() == [
        [1, 2, 3, EOS, X, X],
        [4, 5, 6, 7, 8, EOS],
        [9, EOS, X, X, X, X],
    ]
    assert batch["attention_mask"].tolist() == [
        [1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 1],
        [1, 1, 0, 0, 0, 0],
    ]


def test_collator_labels_with_prompt_masking():
    batch = InstructionCollator(pad_token_id=EOS, eos_token_id=EOS, mask_prompt=True)(ITEMS)
    assert batch["labels"].tolist() == [
        [X, X, 3, EOS, X, X],
        [X, X, X, 7, 8, EOS],
        [X, EOS, X, X, X, X],
    ]


def test_collator_truncates_and_keeps_an_end_of_text_inside_the_text():
    batch = InstructionCollator(pad_token_id=0, eos_token_id=EOS, max_length=4)(
        [{"input_ids": [4, 5, 6, 7, 8], "prompt_length": 3}, {"input_ids": [1, EOS, 2], "prompt_length": 1}]
    )
    assert batch["input_ids"].tolist() == [[4, 5, 6, 7], [1, EOS, 2, EOS]]
    assert batch["labels"].tolist() == [[4, 5, 6, 7], [1, EOS, 2, EOS]]


def course_batch(items, pad_id, prompt_masking):
    """The course's collator, written from its description: targets pre-shifted by one, every pad target but the
    first set to -100, and with prompt masking the first prompt_length - 1 targets too."""
    width = max(len(item["input_ids"]) + 1 for item in items)
    inputs, targets = [], []
    for item in items:
        padded = item["input_ids"] + [pad_id] * (width - len(item["input_ids"]))
        x, y = torch.tensor(padded[:-1]), torch.tensor(padded[1:])
        pads = torch.nonzero(y == pad_id).flatten()
        y[pads[1:]] = X
        if prompt_masking:
            y[: item["prompt_length"] - 1] = X
        inputs.append(x)
        targets.append(y)
    return torch.stack(inputs), torch.stack(targets)


@pytest.mark.parametrize("mask_prompt", [False, True])
def test_collator_loss_equals_the_course_pre_shifted_cross_entropy(records, tokenizer, mask_prompt):
    torch.manual_seed(0)
    model = ScratchGPT2ForCausalLM(ScratchGPT2Config.from_preset("tiny")).eval()
    items = InstructionDataset(records[:4], tokenizer, ALPACA).items
    batch = InstructionCollator(EOS, EOS, mask_prompt=mask_prompt)(items)
    with torch.no_grad():
        ours = model(**batch).loss
        inputs, targets = course_batch(items, EOS, mask_prompt)
        logits = model(input_ids=inputs).logits
        course = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=X)
    assert (targets != X).sum() == (batch["labels"][:, 1:] != X).sum()
    torch.testing.assert_close(ours, course, rtol=1e-5, atol=1e-6)


def test_chat_format_records_become_instruction_and_response(tmp_path):
    """Reasoning data sets (AM-DeepSeek-R1-Distilled) store a user and an assistant message per record."""
    answer = "<think>\nAdd the two.\n</think>\n<answer>\n4\n</answer>"
    lines = [{"messages": [{"role": "user", "content": "What is 2 + 2?"},
                           {"role": "assistant", "content": answer}], "source": "math"}]
    (tmp_path / "chat.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert load_records(tmp_path / "chat.jsonl") == [
        {"source": "math", "instruction": "What is 2 + 2?", "input": "", "output": answer}]

    lines.append({"messages": [{"role": "user", "content": "Hi"}, {"role": "user", "content": "again"}]})
    (tmp_path / "chat.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(ValueError, match=r"record 1: a chat record needs two messages .* got roles \['user', 'user'\]"):
        load_records(tmp_path / "chat.jsonl")
