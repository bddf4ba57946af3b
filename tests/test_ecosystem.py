"""ScratchGPT2 inside the Hugging Face ecosystem: remote code, pipelines, Trainer and PEFT."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import Trainer, TrainingArguments, pipeline

import gpt2_scratch  # noqa: F401  (registers the Auto classes)
from gpt2_scratch.modeling import ScratchGPT2Config, ScratchGPT2ForCausalLM, ScratchGPT2ForSequenceClassification

pytestmark = pytest.mark.core

TINY = dict(n_layer=2, n_embd=64, n_head=4, n_positions=128)


@pytest.fixture()
def tiny_lm():
    torch.manual_seed(0)
    return ScratchGPT2ForCausalLM(ScratchGPT2Config(**TINY)).eval()


# A subprocess that cannot import gpt2_scratch, even though it is installed (editable) in this environment:
# a meta-path finder refuses the name, so only the code files saved beside the weights can define the model.
BLOCK_PACKAGE = """
import sys
class RefuseGpt2Scratch:
    def find_spec(self, name, path=None, target=None):
        if name == "gpt2_scratch" or name.startswith("gpt2_scratch."):
            raise ImportError("gpt2_scratch is blocked in this interpreter")
        return None
sys.meta_path.insert(0, RefuseGpt2Scratch())
try:
    import gpt2_scratch
except ImportError:
    pass
else:
    raise SystemExit("gpt2_scratch was importable")
"""


def test_trust_remote_code_loads_without_the_package(tmp_path, tiny_lm):
    tiny_lm.save_pretrained(tmp_path)
    ids = [[5, 6, 7, 8, 9]]
    expected = tiny_lm(torch.tensor(ids)).logits
    script = BLOCK_PACKAGE + textwrap.dedent(
        f"""
        import json, torch
        from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification
        lm = AutoModelForCausalLM.from_pretrained({str(tmp_path)!r}, trust_remote_code=True).eval()
        trunk = AutoModel.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)
        classifier = AutoModelForSequenceClassification.from_pretrained(
            {str(tmp_path)!r}, trust_remote_code=True, num_labels=2)
        logits = lm(torch.tensor({ids})).logits
        print(json.dumps(dict(logits=logits.tolist(), classes=[type(lm).__name__, type(trunk).__name__,
              type(classifier).__name__], module=type(lm).__module__)))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_MODULES_CACHE"] = str(tmp_path / "modules")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["classes"] == ["ScratchGPT2ForCausalLM", "ScratchGPT2Model", "ScratchGPT2ForSequenceClassification"]
    assert report["module"].startswith("transformers_modules")
    assert (torch.tensor(report["logits"]) - expected).abs().max().item() <= 1e-6


def test_text_generation_pipeline(tmp_path, tiny_lm, tokenizer):
    tiny_lm.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    generator = pipeline("text-generation", model=str(tmp_path))
    text = generator("Every effort moves you", max_new_tokens=8, do_sample=False)[0]["generated_text"]
    ids = tokenizer("Every effort moves you", return_tensors="pt").input_ids
    expected = tokenizer.decode(tiny_lm.generate(ids, max_new_tokens=8, do_sample=False)[0])
    assert text == expected


def test_text_classification_pipeline(tmp_path, tokenizer):
    torch.manual_seed(0)
    config = ScratchGPT2Config(
        **TINY, num_labels=2, id2label={0: "ham", 1: "spam"}, label2id={"ham": 0, "spam": 1},
        pad_token_id=tokenizer.pad_token_id,
    )
    model = ScratchGPT2ForSequenceClassification(config).eval()
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    classifier = pipeline("text-classification", model=str(tmp_path))
    texts = ["Win a free prize now!", "See you at lunch tomorrow"]
    results = classifier(texts)
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    probabilities = model(**batch).logits.softmax(-1)
    for result, row in zip(results, probabilities):
        assert result["label"] == config.id2label[int(row.argmax())]
        assert result["score"] == pytest.approx(row.max().item(), abs=1e-5)


class TokenWindows(torch.utils.data.Dataset):
    def __init__(self, ids, length):
        self.windows = [ids[i : i + length] for i in range(0, len(ids) - length, length)]

    def __len__(self):
        return len(self.windows)

    def __getitem__(self, index):
        window = torch.tensor(self.windows[index])
        return {"input_ids": window, "labels": window}


def test_trainer_runs_causal_lm_steps_and_loss_falls(tmp_path, tokenizer, shared_data):
    ids = tokenizer((shared_data / "the-verdict.txt").read_text())["input_ids"][:2048]
    torch.manual_seed(0)
    model = ScratchGPT2ForCausalLM(ScratchGPT2Config(**TINY))
    args = TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=4, gradient_accumulation_steps=2, max_steps=10,
        learning_rate=5e-3, logging_steps=1, report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=TokenWindows(ids, 64))
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 10
    assert losses[0] > 10.0 and losses[-1] < losses[0] - 1.0  # starts near ln(50257) = 10.8


def test_trainer_runs_classification_steps(tmp_path, tokenizer):
    torch.manual_seed(0)
    config = ScratchGPT2Config(**TINY, num_labels=2, pad_token_id=tokenizer.pad_token_id)
    model = ScratchGPT2ForSequenceClassification(config)
    texts = ["free prize, call now", "lunch at noon?", "you won cash!!!", "running late, sorry"] * 4
    labels = [1, 0, 1, 0] * 4
    encoded = tokenizer(texts)
    dataset = [
        {"input_ids": ids, "attention_mask": mask, "labels": label}
        for ids, mask, label in zip(encoded["input_ids"], encoded["attention_mask"], labels)
    ]
    from transformers import DataCollatorWithPadding

    args = TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=8, learning_rate=1e-3,
        logging_steps=1, report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=DataCollatorWithPadding(tokenizer))
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 8 and all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-2:]) < sum(losses[:2])


def test_peft_lora_wraps_and_trains_only_adapters(tiny_lm):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_lm.train(), LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn", "c_proj", "c_fc"]))
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)
    frozen_before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    ids = torch.randint(0, 50000, (2, 16))
    first = model(input_ids=ids, labels=ids).loss
    first.backward()
    optimizer.step()
    optimizer.zero_grad()
    second = model(input_ids=ids, labels=ids).loss
    assert second.item() < first.item()
    for name, param in model.named_parameters():
        if name in frozen_before:
            assert torch.equal(param, frozen_before[name]), name
    merged = model.merge_and_unload()
    assert isinstance(merged, ScratchGPT2ForCausalLM)


def test_trl_sft_trainer_packs_documents_into_rows_longer_than_the_context(tmp_path, tokenizer, shared_data):
    # SFTTrainer(packing=True) concatenates documents into one row per batch with position ids that restart at each
    # document and no attention mask. The row is longer than n_positions (128); each document fits.
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from gpt2_scratch.conversion import from_transformers_gpt2
    from oracles import random_gpt2

    paragraphs = [p for p in (shared_data / "the-verdict.txt").read_text().split("\n\n") if 20 < len(p) < 400]
    reference = random_gpt2(0, vocab_size=50257, bos_token_id=50256, eos_token_id=50256, **TINY)
    model = from_transformers_gpt2(reference)
    args = SFTConfig(
        output_dir=str(tmp_path), packing=True, max_length=400, per_device_train_batch_size=1, max_steps=3,
        learning_rate=1e-3, logging_steps=1, report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True,
        bf16=False,  # SFTConfig's default is bf16, and Accelerate's process-wide state would keep it for later tests
    )
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=Dataset.from_dict({"text": paragraphs[:40]}), processing_class=tokenizer
    )
    batch = next(iter(trainer.get_train_dataloader()))
    positions = batch["position_ids"]
    assert batch["input_ids"].shape[1] > 128 and int(positions.max()) < 128 and int((positions == 0).sum()) > 2
    inputs = dict(input_ids=batch["input_ids"], position_ids=positions, labels=batch["labels"], use_cache=False)
    model.eval(), reference.eval()
    with torch.no_grad():
        assert model(**inputs).loss.item() == pytest.approx(reference(**inputs).loss.item(), abs=1e-5)
    before = model.transformer.h[0].mlp.c_fc.weight.detach().clone()
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    assert not torch.equal(before, model.transformer.h[0].mlp.c_fc.weight)
