"""Bad inputs give one clear error and leave nothing half-written."""

import os
import pickle

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from malicious import RunsCode
from oracles import TINY_GPT2, random_gpt2

from gpt2_scratch.conversion import (
    LayoutMismatchError,
    convert,
    detect_layout,
    from_transformers_gpt2,
    load_model,
    save_model,
)

TINY = TINY_GPT2


@pytest.fixture(scope="module")
def gpt2():
    return random_gpt2(11, randomize_norms_and_biases=False)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on the test's own pickle
def test_pickle_with_code_is_refused_and_never_run(tmp_path, gpt2):
    marker = tmp_path / "code-ran"
    torch.save({"model_state_dict": dict(gpt2.state_dict()), "payload": RunsCode(marker)}, tmp_path / "model.pth")
    with pytest.raises(ValueError, match="refusing to load .*could run arbitrary code"):
        load_model(tmp_path / "model.pth")
    assert not marker.exists()
    with open(tmp_path / "old.pkl", "wb") as handle:  # a plain (non-zip) pickle too
        pickle.dump(RunsCode(marker), handle)
    with pytest.raises(ValueError, match="refusing to load"):
        load_model(tmp_path / "old.pkl")
    assert not marker.exists()


def test_truncated_safetensors_is_reported(tmp_path, gpt2):
    gpt2.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ValueError, match="model.safetensors is not a valid safetensors file .*; it is corrupt or truncated"):
        load_model(tmp_path)


def test_sharded_checkpoint_with_a_missing_shard_is_reported(tmp_path, gpt2):
    gpt2.save_pretrained(tmp_path, max_shard_size="100KB")
    shards = sorted(tmp_path.glob("model-*.safetensors"))
    shards[1].unlink()
    with pytest.raises(FileNotFoundError, match=f"names shards that are not in .*{shards[1].name}"):
        load_model(tmp_path)


def test_unknown_checkpoint_lists_the_closest_layouts_differences():
    junk = {"encoder.weight": torch.zeros(3, 3), "decoder.bias": torch.zeros(3)}
    with pytest.raises(LayoutMismatchError, match="fits none of") as raised:
        detect_layout(junk)
    assert "unexpected (2): encoder.weight; decoder.bias" in str(raised.value)


def test_wrong_shapes_in_the_book_layout_are_listed_against_it(gpt2):
    theirs = {name: tensor.clone() for name, tensor in save_state_dict(gpt2, "book").items()}
    theirs["trf_blocks.1.ff.layers.0.weight"] = torch.zeros(255, 64)
    del theirs["final_norm.shift"]
    with pytest.raises(LayoutMismatchError) as raised:
        load_model(theirs, layout="book", n_head=4)
    message = str(raised.value)
    assert "'book' layout" in message and "missing (1): final_norm.shift [64]" in message
    assert "trf_blocks.1.ff.layers.0.weight is [255, 64], expected [256, 64]" in message


def save_state_dict(gpt2, layout):
    from gpt2_scratch.conversion import export_state_dict

    return export_state_dict(from_transformers_gpt2(gpt2), layout)


def test_gpt2_features_we_do_not_implement_are_refused(tmp_path):
    GPT2LMHeadModel(GPT2Config(**TINY, scale_attn_by_inverse_layer_idx=True)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="scale_attn_by_inverse_layer_idx=True"):
        from_transformers_gpt2(tmp_path)


def test_bad_destinations_and_failed_writes_leave_nothing_behind(tmp_path, gpt2):
    ours = from_transformers_gpt2(gpt2)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="already exists"):
        save_model(ours, tmp_path / "taken")
    assert os.listdir(tmp_path / "taken") == ["keep.txt"]
    with pytest.raises(ValueError, match="llm.c stores float32 or bfloat16"):
        save_model(ours, tmp_path / "half", layout="llmc", dtype="float16")
    assert sorted(os.listdir(tmp_path)) == ["taken"]  # no destination, no temporary folder


def test_missing_paths_unknown_layouts_and_unreachable_hub_ids(tmp_path, monkeypatch):
    import huggingface_hub.constants

    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "nothing-here.safetensors")
    with pytest.raises(ValueError, match="unknown layout 'keras'"):
        convert(tmp_path, tmp_path / "out", from_layout="keras")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(FileNotFoundError, match="neither a local path nor a Hub repository"):
        load_model("someone/no-such-model")


def test_hub_repo_id_is_read_from_the_hub_cache_offline(tmp_path, gpt2, monkeypatch):
    """A repo id goes through huggingface_hub.snapshot_download; offline, it finds the cached snapshot."""
    import huggingface_hub.constants

    snapshot = tmp_path / "hub" / "models--openai-community--gpt2-tiny" / "snapshots" / ("0" * 40)
    gpt2.save_pretrained(snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    ours = from_transformers_gpt2("openai-community/gpt2-tiny")
    assert torch.equal(ours.transformer.h[1].mlp.c_fc.weight, gpt2.transformer.h[1].mlp.c_fc.weight.t())
