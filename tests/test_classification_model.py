"""The classifier model side: freezing policies, pad invariance, LoRA merging, and the three ways to classify."""

import json

import pytest
import torch
from transformers import (
    AutoTokenizer,
    DataCollatorWithPadding,
    GPT2Config,
    GPT2ForSequenceClassification,
    GPT2LMHeadModel,
    pipeline,
)

from gpt2_scratch import ScratchGPT2Config, ScratchGPT2ForSequenceClassification
from gpt2_scratch.classification import (
    apply_freezing,
    classification_model,
    classify,
    merge_lora,
    trainable_parameter_names,
)
from gpt2_scratch.cli import main as cli
from gpt2_scratch.conversion import convert

LABELS = ["ham", "spam"]


def tiny_classifier(n_layer=3, seed=0) -> ScratchGPT2ForSequenceClassification:
    torch.manual_seed(seed)
    config = ScratchGPT2Config.from_preset(
        "tiny",
        n_layer=n_layer,
        num_labels=2,
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
        pad_token_id=50256,
    )
    return ScratchGPT2ForSequenceClassification(config).eval()


def names_under(model, *prefixes):
    return {name for name, _ in model.named_parameters() if name.startswith(prefixes)}


def test_course_policy_trains_the_last_block_the_final_layernorm_and_the_head():
    model = apply_freezing(tiny_classifier(n_layer=3), "all-but-last-block")
    expected = names_under(model, "transformer.h.2.", "transformer.ln_f.", "score.")
    assert set(trainable_parameter_names(model)) == expected
    # The last block holds 12 tensors (2 LayerNorms x 2, c_attn, attn c_proj, c_fc, mlp c_proj, each weight + bias).
    assert len(expected) == 12 + 2 + 1


def test_other_freezing_policies():
    model = tiny_classifier(n_layer=3)
    assert trainable_parameter_names(apply_freezing(model, "all-but-head")) == ["score.weight"]
    assert set(trainable_parameter_names(apply_freezing(model, "all-but-last-2-blocks"))) == names_under(
        model, "transformer.h.1.", "transformer.h.2.", "transformer.ln_f.", "score."
    )
    assert set(trainable_parameter_names(apply_freezing(model, "nothing"))) == names_under(model, "")
    with pytest.raises(ValueError, match="N must be between 1 and 3"):
        apply_freezing(model, "all-but-last-4-blocks")
    with pytest.raises(ValueError, match="unknown freezing policy 'last'"):
        apply_freezing(model, "last")


def test_lora_trains_adapters_and_head_and_merges_back_exactly(tokenizer):
    model = apply_freezing(tiny_classifier(), "lora", lora_rank=4)
    trainable = trainable_parameter_names(model)
    assert trainable and all(("lora_" in name) or ("score" in name) for name in trainable)
    assert any("score" in name for name in trainable)
    adapted = {name.split(".lora_")[0].rsplit(".", 1)[-1] for name in trainable if "lora_" in name}
    assert adapted == {"c_attn", "c_proj", "c_fc"}
    # LoRA's B starts at zero, so nudge every adapter to make the merge check meaningful.
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:
                parameter.add_(0.05 * torch.randn_like(parameter))
    batch = tokenizer(["free entry in a weekly prize draw", "ok see you"], padding=True, return_tensors="pt")
    expected = model(**batch).logits
    merged = merge_lora(model)
    assert type(merged) is ScratchGPT2ForSequenceClassification
    torch.testing.assert_close(merged(**batch).logits, expected, rtol=1e-5, atol=1e-5)


def transformers_twin(model: ScratchGPT2ForSequenceClassification) -> GPT2ForSequenceClassification:
    """transformers' own GPT-2 classifier with the same weights (its Conv1D layers store weights as (in, out))."""
    c = model.config
    twin = GPT2ForSequenceClassification(
        GPT2Config(vocab_size=c.vocab_size, n_positions=c.n_positions, n_embd=c.n_embd, n_layer=c.n_layer,
                   n_head=c.n_head, num_labels=c.num_labels, pad_token_id=c.pad_token_id)
    ).eval()
    conv1d = ("c_attn.weight", "c_proj.weight", "c_fc.weight")
    weights = {name: w.T if name.endswith(conv1d) else w for name, w in model.state_dict().items()}
    missing, unexpected = twin.load_state_dict(weights, strict=False)
    assert not unexpected and all(name.endswith(".attn.bias") for name in missing)  # causal-mask buffers only
    return twin


def test_same_logits_with_left_right_and_no_padding(tokenizer):
    model = tiny_classifier()
    text, longer = "Congratulations, you won a prize", "hey are we still meeting for lunch at noon today?"
    alone = model(**tokenizer([text], return_tensors="pt")).logits[0]
    # Outside oracle: transformers' GPT-2 classifier with the same weights, on the unpadded text.
    expected = transformers_twin(model)(**tokenizer([text], return_tensors="pt")).logits[0]
    torch.testing.assert_close(alone, expected, rtol=1e-5, atol=1e-5)
    for side in ("left", "right"):
        tokenizer.padding_side = side
        batch = DataCollatorWithPadding(tokenizer)([tokenizer(text), tokenizer(longer)])
        assert batch["attention_mask"][0].sum() < batch["attention_mask"].shape[1]  # the text really is padded
        torch.testing.assert_close(model(**batch).logits[0], expected, rtol=1e-5, atol=1e-5, msg=side)
    tokenizer.padding_side = "right"


@pytest.fixture(scope="module")
def saved_classifier(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("classifier")
    tiny_classifier().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_classify_pipeline_and_cli_agree(saved_classifier, capsys):
    texts = ["WINNER! Claim your free prize now", "see you at lunch", "call me later when you are free"]
    model = ScratchGPT2ForSequenceClassification.from_pretrained(saved_classifier).eval()
    tokenizer = AutoTokenizer.from_pretrained(saved_classifier)
    with torch.no_grad():
        probabilities = torch.cat([model(**tokenizer(t, return_tensors="pt")).logits.softmax(-1) for t in texts])
    expected = [{"label": LABELS[int(p.argmax())], "score": float(p.max())} for p in probabilities]

    ours = classify(texts, saved_classifier)
    assert [r["label"] for r in ours] == [e["label"] for e in expected]
    assert [r["score"] for r in ours] == pytest.approx([e["score"] for e in expected], abs=1e-5)

    hf = pipeline("text-classification", model=str(saved_classifier))(texts)
    assert [r["label"] for r in hf] == [e["label"] for e in expected]
    assert [r["score"] for r in hf] == pytest.approx([e["score"] for e in expected], abs=1e-5)

    assert cli(["classify", str(saved_classifier), *texts, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in printed] == [e["label"] for e in expected]
    assert [r["score"] for r in printed] == pytest.approx([e["score"] for e in expected], abs=1e-5)


def test_classify_rejects_empty_text(saved_classifier):
    with pytest.raises(ValueError, match="text 1 is ''"):
        classify(["fine", ""], saved_classifier)


def test_classifier_from_converted_transformers_gpt2_matches_transformers(tmp_path, tokenizer):
    """The path of OpenAI's weights (a transformers GPT-2 checkpoint, converted): the trunk comes over exactly, the
    head is new, and the result classifies as transformers' own GPT-2 classifier with the same head."""
    torch.manual_seed(1)
    source = GPT2LMHeadModel(GPT2Config(vocab_size=50257, n_positions=64, n_embd=64, n_layer=2, n_head=4))
    source.save_pretrained(tmp_path / "hf")
    convert(str(tmp_path / "hf"), str(tmp_path / "converted"))
    model = classification_model(str(tmp_path / "converted"), LABELS, tokenizer).eval()
    assert model.config.id2label == {0: "ham", 1: "spam"} and model.config.pad_token_id == tokenizer.pad_token_id

    twin = GPT2ForSequenceClassification.from_pretrained(
        tmp_path / "hf", num_labels=2, pad_token_id=tokenizer.pad_token_id
    ).eval()
    with torch.no_grad():
        twin.score.weight.copy_(model.score.weight)
    batch = tokenizer(["Urgent! You have won a 1 week FREE membership", "ok"], padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, twin(**batch).logits, rtol=1e-5, atol=1e-5)
