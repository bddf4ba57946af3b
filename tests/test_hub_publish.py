"""Publishing against the Hub's HTTP protocol (tests/hub_server.py on 127.0.0.1), then loading what was published:
with remote code in a Python where gpt2_scratch cannot be imported, and offline from the Hub cache with it."""

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import huggingface_hub
import pytest
import torch
from huggingface_hub import constants
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

import gpt2_scratch
from gpt2_scratch.cli import main as cli_main
from gpt2_scratch.conversion.pretrained import CheckpointMismatchError
from gpt2_scratch.hub_cards.publish import stage
from gpt2_scratch.tokenization.reference import tiktoken_gpt2

from hub_server import HubServer

REPO_ID = "user/scratch-gpt2-medium"
TOKEN = "hf_test_write_token"
TEXT = "Every effort moves you forward, said the painter."

# Run by a fresh interpreter: loads the published repository the way someone without gpt2_scratch would.
LOADER = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class RefuseGpt2Scratch(importlib.abc.MetaPathFinder):
        # gpt2_scratch is installed editable in this venv (a .pth path hook), so `python -I` and a cwd outside the
        # repository still find it: refuse it here, so only the code downloaded from the Hub can build the model.
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "gpt2_scratch":
                raise ModuleNotFoundError(f"No module named {name!r} (refused by the test)")

    sys.meta_path.insert(0, RefuseGpt2Scratch())
    try:
        import gpt2_scratch
        sys.exit("gpt2_scratch is importable: this would not show that the repository loads without it")
    except ModuleNotFoundError:
        pass

    import torch
    from safetensors.torch import save_file
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    repo_id, text, output = sys.argv[1:4]
    tokenizer = AutoTokenizer.from_pretrained(repo_id, trust_remote_code=True)  # config.json's auto_map is code
    causal_lm = AutoModelForCausalLM.from_pretrained(repo_id, trust_remote_code=True)
    base = AutoModel.from_pretrained(repo_id, trust_remote_code=True)
    input_ids = torch.tensor([tokenizer(text)["input_ids"]])
    with torch.no_grad():
        save_file({"logits": causal_lm(input_ids).logits, "hidden": base(input_ids).last_hidden_state}, output)
    print(json.dumps({
        "token_ids": input_ids[0].tolist(),
        "classes": [type(m).__module__ + "." + type(m).__name__ for m in (causal_lm, base)],
    }))
    """
)


@contextlib.contextmanager
def online(hub: HubServer):
    """What HF_ENDPOINT=<hub.url> and HF_HUB_OFFLINE=0 give a process where huggingface_hub is imported after they
    are set: huggingface_hub reads both into `constants` at import, and conftest.py has made this process offline."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(constants, "ENDPOINT", hub.url)
        patch.setattr(constants, "HF_HUB_OFFLINE", False)
        patch.setenv("HF_TOKEN", TOKEN)
        yield patch


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny pretraining run's last checkpoint (its plot is in the run folder, as the training loop leaves it),
    with its records and leftovers that must not reach the Hub."""
    run = tmp_path_factory.mktemp("run")
    folder = run / "checkpoint-90"
    torch.manual_seed(0)
    gpt2_scratch.ScratchGPT2ForCausalLM(gpt2_scratch.ScratchGPT2Config.from_preset("tiny")).save_pretrained(folder)
    (folder / "provenance.json").write_text(json.dumps({"kind": "pretrained", "datasets": ["the-verdict"]}))
    (folder / "metrics.json").write_text(json.dumps({"train": {"loss": 0.52}, "validation": {"loss": 6.4}}))
    (run / "loss.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a plot")
    (folder / "model-00001-of-00003.safetensors").write_bytes(b"a shard from an older, sharded save")
    (folder / "optimizer.pt").write_bytes(b"training state that does not belong on the Hub")
    return folder


@pytest.fixture(scope="module")
def hub():
    with HubServer(token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def published(hub, checkpoint):
    before = digest(checkpoint)
    with online(hub):
        commit = gpt2_scratch.publish(checkpoint, REPO_ID, max_shard_size="5MB")
    return {"commit": commit, "checkpoint_before": before}


@pytest.fixture(scope="module")
def downloaded(hub, published, tmp_path_factory):
    """The published repository loaded by a fresh Python without gpt2_scratch, through HF_ENDPOINT."""
    workdir = tmp_path_factory.mktemp("remote-load")  # outside the repository, so its folder is not on sys.path
    (workdir / "load.py").write_text(LOADER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "PYTHON", "TRANSFORMERS_OFFLINE"))}
    env.update(HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0", HF_HOME=str(workdir / "hf-home"))
    result = subprocess.run(
        [sys.executable, "-I", "load.py", REPO_ID, TEXT, "outputs.safetensors"],
        cwd=workdir, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return {**report, **load_file(workdir / "outputs.safetensors"), "cache": workdir / "hf-home" / "hub"}


def test_publish_uploads_a_clean_repository_in_one_commit(hub, checkpoint, published):
    files = hub.files(REPO_ID)
    shards = sorted(name for name in files if name.startswith("model-"))
    assert shards == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]  # 13 MB over 5MB shards
    assert set(files) == {
        ".gitattributes", "README.md", "config.json", "generation_config.json", "model.safetensors.index.json",
        *shards, "configuration_scratch_gpt2.py", "modeling_scratch_gpt2.py", "tokenizer.json",
        "tokenizer_config.json", "provenance.json", "metrics.json", "loss.png",
    }  # the old shard and optimizer.pt in the checkpoint stayed behind
    config = json.loads(files["config.json"])
    assert set(config["auto_map"]) == {
        "AutoConfig", "AutoModel", "AutoModelForCausalLM", "AutoModelForSequenceClassification"
    }
    assert files["modeling_scratch_gpt2.py"] == Path(gpt2_scratch.modeling.modeling_scratch_gpt2.__file__).read_bytes()
    assert files["README.md"].startswith(b"---\n") and b"](loss.png)" in files["README.md"]
    with online(hub):
        info = huggingface_hub.HfApi().model_info(REPO_ID)
    assert sorted(sibling.rfilename for sibling in info.siblings) == sorted(files)
    repo = hub.repos[REPO_ID]
    assert len(repo.commits) == 2  # the Hub's initial commit, then everything in ours
    assert repo.refs["main"] == published["commit"].oid
    assert digest(checkpoint) == published["checkpoint_before"]


def test_remote_code_loads_without_the_package_with_the_same_outputs(checkpoint, downloaded, tokenizer_dir):
    assert all(name.startswith("transformers_modules.") for name in downloaded["classes"]), downloaded["classes"]
    assert downloaded["token_ids"] == tiktoken_gpt2(tokenizer_dir).encode(TEXT)
    input_ids = torch.tensor([downloaded["token_ids"]])
    with torch.no_grad():
        logits = gpt2_scratch.ScratchGPT2ForCausalLM.from_pretrained(checkpoint)(input_ids).logits
        hidden = gpt2_scratch.ScratchGPT2Model.from_pretrained(checkpoint)(input_ids).last_hidden_state
    torch.testing.assert_close(downloaded["logits"], logits, rtol=0, atol=0)
    torch.testing.assert_close(downloaded["hidden"], hidden, rtol=0, atol=0)


def test_offline_load_from_the_hub_cache_uses_the_package(downloaded):
    assert huggingface_hub.constants.HF_HUB_OFFLINE  # conftest.py: nothing here may reach a network
    model = AutoModelForCausalLM.from_pretrained(REPO_ID, cache_dir=downloaded["cache"])
    base = AutoModel.from_pretrained(REPO_ID, cache_dir=downloaded["cache"])
    tokenizer = AutoTokenizer.from_pretrained(REPO_ID, cache_dir=downloaded["cache"])
    assert type(model) is gpt2_scratch.ScratchGPT2ForCausalLM and type(base) is gpt2_scratch.ScratchGPT2Model
    input_ids = torch.tensor([tokenizer(TEXT)["input_ids"]])
    assert input_ids[0].tolist() == downloaded["token_ids"]
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids).logits, downloaded["logits"], rtol=0, atol=0)


def test_republishing_deletes_remote_files_the_new_save_does_not_have(hub, checkpoint, published):
    with online(hub):
        gpt2_scratch.publish(checkpoint, REPO_ID, max_shard_size="1GB")
    files = hub.files(REPO_ID)
    assert "model.safetensors" in files
    assert not [name for name in files if name.startswith("model-") or name.endswith(".index.json")]


def test_create_pr_and_revision_leave_main_alone(hub, checkpoint, published, tmp_path):
    retrained = tmp_path / "retrained"
    shutil.copytree(checkpoint, retrained)  # outside its run folder: no plot
    for name in ("tokenizer.json", "tokenizer_config.json"):  # a run that saved its tokenizer: it is copied as is
        (retrained / name).write_bytes(hub.files(REPO_ID)[name])
    (retrained / "metrics.json").write_text(json.dumps({"train": {"loss": 0.41}, "validation": {"loss": 6.3}}))
    main_before = hub.repos[REPO_ID].refs["main"]
    with online(hub):
        pr = gpt2_scratch.publish(retrained, REPO_ID, create_pr=True, commit_message="Propose new weights")
        gpt2_scratch.publish(retrained, REPO_ID, revision="experiments")
    repo = hub.repos[REPO_ID]
    assert pr.pr_url.endswith("/discussions/1")
    assert repo.messages[repo.refs["refs/pr/1"]] == "Propose new weights"
    assert json.loads(hub.files(REPO_ID, "refs/pr/1")["metrics.json"])["train"]["loss"] == 0.41
    assert json.loads(hub.files(REPO_ID, "experiments")["metrics.json"])["train"]["loss"] == 0.41
    assert repo.refs["main"] == main_before


def test_missing_token_is_a_clear_error_before_any_request(hub, checkpoint, tmp_path):
    before, requests_before = digest(checkpoint), len(hub.requests)
    with online(hub) as patch:
        patch.delenv("HF_TOKEN")
        patch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token-here"))  # as if never logged in
        with pytest.raises(RuntimeError, match="no Hugging Face token.*hf auth login.*HF_TOKEN"):
            gpt2_scratch.publish(checkpoint, "user/another-repo")
    assert len(hub.requests) == requests_before
    assert digest(checkpoint) == before


def test_refused_push_is_a_clear_error_and_changes_nothing(hub, checkpoint, capsys):
    before = digest(checkpoint)
    with online(hub) as patch:
        patch.setenv("HF_TOKEN", "hf_revoked_token")
        exit_code = cli_main(["push", str(checkpoint), "user/refused-repo"])
    message = capsys.readouterr().err
    assert exit_code == 2
    assert "push to" in message and "Invalid user token" in message and "HF_TOKEN" in message
    assert "Nothing was changed locally" in message
    assert "user/refused-repo" not in hub.repos
    assert digest(checkpoint) == before


def test_a_refused_token_is_found_before_the_checkpoint_is_staged(hub, checkpoint, capsys, monkeypatch):
    # Only the headers and config are read before the Hub is asked (milliseconds, and a corrupt file is named at
    # once); staging, the work that grows with the model, comes after the token is accepted.
    def staging_must_not_start(*args, **kwargs):
        raise AssertionError("the checkpoint was staged before the token was checked")

    monkeypatch.setattr(sys.modules[stage.__module__], "stage", staging_must_not_start)
    requests_before = len(hub.requests)
    with online(hub) as patch:
        patch.setenv("HF_TOKEN", "hf_revoked_token")
        assert cli_main(["push", str(checkpoint), "user/refused-repo", "--no-progress"]) == 2
    assert "Invalid user token" in capsys.readouterr().err
    assert hub.requests[requests_before:] == [("GET", "/api/whoami-v2")]


@pytest.mark.parametrize("hub_user, role, repo_id, expected", [
    ("user", "read", "user/read-only", "can only read"),
    ("user", "write", "someone-else/repo", "belongs to user, who cannot write to someone-else/"),
])
def test_a_token_that_cannot_write_there_is_refused_before_staging(checkpoint, capsys, hub_user, role, repo_id,
                                                                   expected):
    with HubServer(token=TOKEN, user=hub_user, orgs=("team",), role=role) as other_hub, online(other_hub):
        assert cli_main(["push", str(checkpoint), repo_id, "--no-progress"]) == 2
        assert other_hub.requests == [("GET", "/api/whoami-v2")] and not other_hub.repos
    assert expected in capsys.readouterr().err


def test_the_weights_are_copied_as_they_are_and_still_checked(checkpoint, tmp_path):
    own = tmp_path / "own"
    shutil.copytree(checkpoint, own)
    weights = load_file(own / "model.safetensors")
    # Metadata that loading and saving the model again would drop: the staged file must be the checkpoint's own.
    save_file(weights, own / "model.safetensors", metadata={"format": "pt", "producer": "a test"})
    staged = stage(own, tmp_path / "staging", progress=False)
    assert (tmp_path / "staging" / "model.safetensors") in staged
    assert digest(tmp_path / "staging")["model.safetensors"] == digest(own)["model.safetensors"]
    del weights["transformer.ln_f.bias"]
    save_file(weights, own / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointMismatchError, match=r"missing \(1\): transformer.ln_f.bias \[64\]"):
        stage(own, tmp_path / "staging-2", progress=False)


def test_push_shows_its_progress_unless_told_not_to(hub, checkpoint, capsys):
    with online(hub):
        assert cli_main(["push", str(checkpoint), "user/progress"]) == 0
        shown = capsys.readouterr().err
        assert cli_main(["push", str(checkpoint), "user/progress", "--no-progress"]) == 0
        hidden = capsys.readouterr().err
    assert "staging weights" in shown and f"to {hub.url}/user/progress" in shown
    assert re.search(r"uploading \d+ files \([\d.,]+ MB\)", shown)
    assert hidden == ""
    assert not huggingface_hub.utils.are_progress_bars_disabled()  # as it was before the push
