"""OpenAI's TensorFlow layout, read without TensorFlow, tested on a checkpoint written by real TensorFlow
(tests/fixtures/make_tf_fixture.py made tests/fixtures/openai_tf_tiny and the expected values beside it)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from gpt2_scratch.provenance import Provenance
from gpt2_scratch.conversion import convert, detect_layout, load_model, save_model
from gpt2_scratch.conversion.containers.tf_bundle import TFBundleSource, crc32c, crc32c_large, mask

FIXTURE = Path(__file__).parent / "fixtures" / "openai_tf_tiny"


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(FIXTURE / "expected.npz") as arrays:
        return {name.replace("|", "/"): arrays[name] for name in arrays.files}


def gpt2_from_openai_arrays(arrays: dict, hparams: dict) -> GPT2LMHeadModel:
    """The oracle: transformers' GPT-2 filled straight from the TF variables (its Conv1D stores (in, out) like TF)."""
    config = GPT2Config(
        vocab_size=hparams["n_vocab"],
        n_positions=hparams["n_ctx"],
        n_embd=hparams["n_embd"],
        n_head=hparams["n_head"],
        n_layer=hparams["n_layer"],
        bos_token_id=0,
        eos_token_id=0,
    )
    model = GPT2LMHeadModel(config).eval()
    names = {
        "wte.weight": "model/wte",
        "wpe.weight": "model/wpe",
        "ln_f.weight": "model/ln_f/g",
        "ln_f.bias": "model/ln_f/b",
    }
    for i in range(hparams["n_layer"]):
        for part in ("ln_1", "ln_2"):
            names[f"h.{i}.{part}.weight"], names[f"h.{i}.{part}.bias"] = f"model/h{i}/{part}/g", f"model/h{i}/{part}/b"
        for part in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):
            tf_name = f"model/h{i}/" + part.replace(".", "/")
            names[f"h.{i}.{part}.weight"], names[f"h.{i}.{part}.bias"] = tf_name + "/w", tf_name + "/b"
    state = {
        name: torch.from_numpy(arrays[tf_name].reshape(model.transformer.state_dict()[name].shape))
        for name, tf_name in names.items()
    }
    model.transformer.load_state_dict(state)
    return model


def test_crc32c_matches_the_standard_check_value():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C catalogue's check value
    assert crc32c(b"6789", crc32c(b"12345")) == 0xE3069283  # continues over chunks
    assert mask(0) == 0xA282EAD8


@pytest.mark.parametrize("length", [9, 16384, 16385, 100_003])
def test_lane_parallel_crc32c_equals_the_byte_by_byte_one(length):
    data = np.random.default_rng(length).integers(0, 256, length, dtype=np.uint8).tobytes()
    assert crc32c_large(data) == crc32c(data)
    assert crc32c_large(b"123456789") == 0xE3069283


def test_reader_returns_exactly_what_tensorflow_wrote(expected):
    source = TFBundleSource(FIXTURE / "model.ckpt.index")
    assert sorted(source.names()) == sorted(expected)
    for name, array in expected.items():
        tensor = source.read(name)
        assert tensor.dtype == torch.float32 and source.shape(name) == array.shape
        assert np.array_equal(tensor.numpy(), array), name


def test_import_matches_transformers_gpt2_with_the_same_weights(expected):
    hparams = json.loads((FIXTURE / "hparams.json").read_text())
    assert detect_layout(FIXTURE) == "openai-tf"
    ours = load_model(FIXTURE / "model.ckpt")
    assert (ours.config.n_head, ours.config.n_layer, ours.config.vocab_size) == (2, 2, 40)
    oracle = gpt2_from_openai_arrays(expected, hparams)
    tokens = torch.randint(0, 40, (3, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (ours(tokens).logits - oracle(tokens).logits).abs().max() <= 1e-5


def test_conversion_to_transformers_carries_openais_tokenizer_files(tmp_path, tokenizer_dir):
    source = tmp_path / "release"
    shutil.copytree(FIXTURE, source)
    shutil.copyfile(tokenizer_dir / "encoder.json", source / "encoder.json")
    shutil.copyfile(tokenizer_dir / "vocab.bpe", source / "vocab.bpe")
    out = convert(source, tmp_path / "hf", to_layout="transformers")
    assert (out / "vocab.json").read_bytes() == (tokenizer_dir / "encoder.json").read_bytes()
    assert (out / "merges.txt").read_bytes() == (tokenizer_dir / "vocab.bpe").read_bytes()
    assert Provenance.read(out).layout == "openai-tf" and Provenance.read(out).kind == "converted"
    reloaded = GPT2LMHeadModel.from_pretrained(out)
    assert torch.equal(
        reloaded.transformer.h[1].mlp.c_fc.weight, load_model(source).transformer.h[1].mlp.c_fc.weight.t()
    )


def test_corrupt_data_and_truncated_index_are_reported(tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(FIXTURE, broken)
    data = bytearray((broken / "model.ckpt.data-00000-of-00001").read_bytes())
    data[100] ^= 0xFF
    (broken / "model.ckpt.data-00000-of-00001").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="CRC32C of tensor"):
        load_model(broken)
    index = (broken / "model.ckpt.index").read_bytes()
    (broken / "model.ckpt.index").write_bytes(index[: len(index) // 2])
    with pytest.raises(ValueError, match="not a TensorFlow checkpoint index"):
        load_model(broken)


def test_tf_layout_is_import_only():
    with pytest.raises(ValueError, match="can be read but not written"):
        save_model(load_model(FIXTURE), "/nonexistent/never-written", layout="openai-tf")
