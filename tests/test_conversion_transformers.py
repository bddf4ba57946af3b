"""transformers' GPT-2 <-> ScratchGPT2: the oracle is transformers' own GPT2LMHeadModel with random weights."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, GPT2Model

from oracles import TINY_GPT2, max_logit_difference, random_gpt2

from gpt2_scratch.conversion import LayoutMismatchError, detect_layout, from_transformers_gpt2, to_transformers_gpt2
from gpt2_scratch.modeling import ScratchGPT2ForCausalLM

TINY = TINY_GPT2


@pytest.fixture(scope="module")
def gpt2():
    return random_gpt2(0)


@pytest.fixture(scope="module")
def tokens():
    return torch.randint(0, TINY["vocab_size"], (2, 24), generator=torch.Generator().manual_seed(1))


def assert_same_state_dicts(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


def test_model_imports_with_same_logits_and_exports_bit_identical(gpt2, tokens):
    ours = from_transformers_gpt2(gpt2)
    assert isinstance(ours, ScratchGPT2ForCausalLM)
    assert (ours.config.n_head, ours.config.vocab_size, ours.config.n_positions) == (4, 300, 32)
    assert max_logit_difference(ours, gpt2, tokens) <= 1e-5
    back = to_transformers_gpt2(ours)
    assert isinstance(back, GPT2LMHeadModel)
    assert_same_state_dicts(back.state_dict(), gpt2.state_dict())
    assert back.lm_head.weight.data_ptr() == back.transformer.wte.weight.data_ptr()  # still tied


@pytest.mark.parametrize("form", ["safetensors", "sharded", "pytorch_model.bin"])
def test_checkpoint_folders_load(gpt2, tokens, tmp_path, form):
    if form == "pytorch_model.bin":
        gpt2.config.save_pretrained(tmp_path)  # the pre-safetensors form: transformers 5 no longer writes it
        torch.save(gpt2.state_dict(), tmp_path / "pytorch_model.bin")
    else:
        gpt2.save_pretrained(tmp_path, max_shard_size="100KB" if form == "sharded" else "5GB")
        assert (tmp_path / "model.safetensors.index.json").is_file() == (form == "sharded")
    ours = from_transformers_gpt2(tmp_path)
    assert max_logit_difference(ours, gpt2, tokens) <= 1e-5


def test_keys_without_prefix_and_old_mask_buffers_are_accepted(gpt2, tokens):
    base = GPT2Model(gpt2.config)
    base.load_state_dict(gpt2.transformer.state_dict())
    state_dict = dict(base.state_dict())  # no `transformer.` prefix, no lm_head
    for i in range(TINY["n_layer"]):  # buffers GPT-2 checkpoints saved by transformers < 4.x still carry
        state_dict[f"h.{i}.attn.bias"] = torch.tril(torch.ones(1, 1, 32, 32, dtype=torch.uint8))
        state_dict[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    assert detect_layout(state_dict) == "transformers"
    ours = from_transformers_gpt2(state_dict, n_head=4)  # a bare state dict does not record the head count
    assert max_logit_difference(ours, gpt2, tokens) <= 1e-5


def test_untied_head_round_trips(tokens):
    torch.manual_seed(2)
    untied = GPT2LMHeadModel(GPT2Config(**TINY, tie_word_embeddings=False)).eval()
    assert not torch.equal(untied.lm_head.weight, untied.transformer.wte.weight)
    ours = from_transformers_gpt2(untied)
    assert ours.config.tie_word_embeddings is False
    assert max_logit_difference(ours, untied, tokens) <= 1e-5
    assert_same_state_dicts(to_transformers_gpt2(ours).state_dict(), untied.state_dict())


def test_mismatch_lists_every_problem_in_one_error(gpt2):
    state_dict = dict(gpt2.state_dict())
    del state_dict["transformer.h.1.ln_2.bias"]
    state_dict["transformer.h.0.attn.c_proj.weight"] = torch.zeros(64, 65)
    state_dict["transformer.h.0.surprise"] = torch.zeros(1)
    with pytest.raises(LayoutMismatchError) as raised:
        from_transformers_gpt2(state_dict, n_head=4)
    message = str(raised.value)
    assert "missing (1): transformer.h.1.ln_2.bias [64]" in message
    assert "unexpected (1): transformer.h.0.surprise" in message
    assert "transformer.h.0.attn.c_proj.weight is [64, 65], expected [64, 64]" in message


def test_exported_folders_load_with_from_pretrained(gpt2, tokens, tmp_path):
    from transformers import AutoModelForCausalLM

    from gpt2_scratch.conversion import save_model

    ours = from_transformers_gpt2(gpt2)
    reloaded = GPT2LMHeadModel.from_pretrained(save_model(ours, tmp_path / "hf", layout="transformers"))
    assert_same_state_dicts(reloaded.state_dict(), gpt2.state_dict())
    assert reloaded.lm_head.weight.data_ptr() == reloaded.transformer.wte.weight.data_ptr()
    assert (tmp_path / "hf" / "generation_config.json").is_file()
    ours_again = AutoModelForCausalLM.from_pretrained(save_model(ours, tmp_path / "scratch"))  # our own layout
    assert isinstance(ours_again, ScratchGPT2ForCausalLM)
    assert max_logit_difference(ours_again, gpt2, tokens) <= 1e-5
