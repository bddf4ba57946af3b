"""Every loader of the package refuses a checkpoint that does not fit its model (missing, unexpected or mis-shaped
tensors), where transformers' from_pretrained alone would fill the gaps with random weights and carry on."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from gpt2_scratch.classification import classify
from gpt2_scratch.classification.training import classification_model
from gpt2_scratch.cli import main
from gpt2_scratch.conversion.pretrained import CheckpointMismatchError, read_weights_for
from gpt2_scratch.lora import add_lora
from gpt2_scratch.evaluation import TransformersJudge
from gpt2_scratch.hub_cards.publish import stage
from gpt2_scratch.modeling import ScratchGPT2Config, ScratchGPT2ForCausalLM, ScratchGPT2ForSequenceClassification
from gpt2_scratch.training.decoding_models import generate_text

TINY = dict(n_layer=2, n_embd=64, n_head=4, n_positions=32, vocab_size=50257)
DAMAGES = ["missing", "unexpected", "wrong shape"]


def save(model, folder, tokenizer):
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def damage(folder, how: str):
    """The checkpoint in `folder` with one tensor missing, one tensor too many, or one tensor of another shape."""
    weights = load_file(folder / "model.safetensors")
    if how == "missing":
        del weights["transformer.h.1.ln_2.bias"]
    elif how == "unexpected":
        weights["transformer.h.2.ln_1.weight"] = torch.ones(64)
    else:
        weights["transformer.wpe.weight"] = weights["transformer.wpe.weight"][:16].clone()
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def assert_lists_the_damage(message: str, how: str):
    named = {"missing": "transformer.h.1.ln_2.bias [64]", "unexpected": "transformer.h.2.ln_1.weight",
             "wrong shape": "transformer.wpe.weight is [16, 64], expected [32, 64]"}[how]
    assert f"{how} (1): {named}" in message


@pytest.fixture(scope="module")
def causal_lm():
    torch.manual_seed(0)
    return ScratchGPT2ForCausalLM(ScratchGPT2Config(**TINY)).eval()


@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(1)
    config = ScratchGPT2Config(**TINY, num_labels=2, id2label={0: "ham", 1: "spam"}, pad_token_id=50256)
    return ScratchGPT2ForSequenceClassification(config).eval()


@pytest.mark.parametrize("how", DAMAGES)
def test_generate_refuses_a_checkpoint_that_does_not_fit(causal_lm, tokenizer, tmp_path, capsys, how):
    folder = save(causal_lm, tmp_path / "lm", tokenizer)
    assert main(["generate", str(folder), "a b", "--max-new-tokens", "2", "--seed", "0"]) == 0
    capsys.readouterr()
    assert main(["generate", str(damage(folder, how)), "a b", "--max-new-tokens", "2"]) == 2
    error = capsys.readouterr().err
    assert f"{folder} does not fit ScratchGPT2ForCausalLM" in error
    assert_lists_the_damage(error, how)
    with pytest.raises(CheckpointMismatchError):
        generate_text(folder, "a b", max_new_tokens=2)


@pytest.mark.parametrize("how", DAMAGES)
def test_push_refuses_to_stage_a_checkpoint_that_does_not_fit(causal_lm, tokenizer, tmp_path, how):
    folder = save(causal_lm, tmp_path / "lm", tokenizer)
    assert stage(folder, tmp_path / "staging-good")
    with pytest.raises(CheckpointMismatchError) as raised:
        stage(damage(folder, how), tmp_path / "staging")
    assert_lists_the_damage(str(raised.value), how)


def test_classify_refuses_a_causal_lm_checkpoint_which_has_no_trained_head(causal_lm, tokenizer, tmp_path, capsys):
    folder = save(causal_lm, tmp_path / "lm", tokenizer)
    assert main(["classify", str(folder), "free money now"]) == 2
    error = capsys.readouterr().err
    assert "has no trained classification head (score.weight)" in error
    assert f"gpt2-scratch train-classifier --base {folder}" in error


@pytest.mark.parametrize("how", DAMAGES)
def test_classify_refuses_a_classifier_that_does_not_fit(classifier, tokenizer, tmp_path, how):
    folder = save(classifier, tmp_path / "classifier", tokenizer)
    assert classify("free money now", folder)[0]["label"] in {"ham", "spam"}
    with pytest.raises(CheckpointMismatchError) as raised:
        classify("free money now", damage(folder, how))
    assert_lists_the_damage(str(raised.value), how)


def test_train_classifier_puts_a_new_head_only_on_a_complete_base(causal_lm, tokenizer, tmp_path):
    folder = save(causal_lm, tmp_path / "lm", tokenizer)
    model = classification_model(str(folder), ["ham", "spam"], tokenizer)
    assert model.score.weight.shape == (2, 64)  # the one new tensor
    for name, tensor in causal_lm.transformer.state_dict().items():
        assert torch.equal(model.transformer.state_dict()[name], tensor), name

    untied = ScratchGPT2ForCausalLM(ScratchGPT2Config(**TINY, tie_word_embeddings=False))
    classification_model(str(save(untied, tmp_path / "untied", tokenizer)), ["ham", "spam"], tokenizer)  # head dropped

    for how in DAMAGES:
        damaged = damage(save(causal_lm, tmp_path / how, tokenizer), how)
        with pytest.raises(CheckpointMismatchError) as raised:
            classification_model(str(damaged), ["ham", "spam"], tokenizer)
        assert_lists_the_damage(str(raised.value), how)


def test_a_local_judge_refuses_a_checkpoint_missing_a_tensor(causal_lm, tokenizer, tmp_path):
    folder = save(causal_lm, tmp_path / "lm", tokenizer)
    assert TransformersJudge.from_pretrained(str(folder)).model is not None
    with pytest.raises(CheckpointMismatchError) as raised:
        TransformersJudge.from_pretrained(str(damage(folder, "missing")))
    assert_lists_the_damage(str(raised.value), "missing")


@pytest.mark.parametrize("how", DAMAGES)
def test_evaluate_refuses_a_checkpoint_that_does_not_fit(causal_lm, tokenizer, tmp_path, capsys, how):
    # evaluate (and instruct) read checkpoints with load_model, whose layout check lists the same problems.
    folder = save(causal_lm, tmp_path / "lm", tokenizer)
    text = tmp_path / "text.txt"
    text.write_text("a b " * 40)
    assert main(["evaluate", "loss", "--model", str(folder), "--text", str(text), "--context-length", "16"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "loss", "--model", str(damage(folder, how)), "--text", str(text)]) == 2
    error = capsys.readouterr().err
    assert_lists_the_damage(error.replace("\n", " "), how)


@pytest.mark.parametrize("how", DAMAGES)
def test_weights_read_back_into_a_built_model_must_fit_it(causal_lm, tokenizer, tmp_path, how):
    """read_weights_for, how a resumed run and instruct's final model read a checkpoint's weights into a model they
    have built: exactly the saved tensors (safetensors' own reader as the oracle), or one error listing the damage."""
    folder = save(causal_lm, tmp_path / "lm", tokenizer)
    saved = load_file(folder / "model.safetensors")
    fresh = ScratchGPT2ForCausalLM(ScratchGPT2Config(**TINY))
    weights = read_weights_for(fresh, folder)
    assert weights.keys() == saved.keys() and all(torch.equal(weights[name], saved[name]) for name in saved)
    with pytest.raises(CheckpointMismatchError) as raised:
        read_weights_for(fresh, damage(folder, how))
    assert_lists_the_damage(str(raised.value), how)


def test_a_lora_model_reads_only_a_checkpoint_of_a_lora_run(tokenizer, tmp_path):
    """At a preset's width (small, 768 wide, two blocks): a checkpoint saved from inside LoRA layers reads back into
    a model with the same layers, and a plain checkpoint is refused there with the adapters it lacks named."""
    config = ScratchGPT2Config.from_preset("small", n_layer=2)
    lora_inner = add_lora(ScratchGPT2ForCausalLM(config), rank=4).base_model.model
    lora_run = save(lora_inner, tmp_path / "lora-run", tokenizer)
    into = add_lora(ScratchGPT2ForCausalLM(config), rank=4).base_model.model
    weights = read_weights_for(into, lora_run)
    assert any(".lora_A." in name for name in weights) and weights.keys() <= into.state_dict().keys()
    plain = save(ScratchGPT2ForCausalLM(config), tmp_path / "plain", tokenizer)
    with pytest.raises(CheckpointMismatchError, match=r"missing \(\d+\): .*lora_A"):
        read_weights_for(into, plain)
