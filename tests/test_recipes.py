"""The seed's six published variants, rebuilt by the commands docs/hub.md gives (read from the page, so the docs cannot
drift from what is tested), at toy scale: a tiny GPT-2 stands in for OpenAI's weights on a local Hub
(tests/hub_server.py), the fine-tunes stop after a few optimizer steps, and the reasoning data is a JSONL in the data
set's chat format made here. Every result is pushed, loaded by a Python without gpt2_scratch, and its card rendered."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import huggingface_hub
import pytest
import torch
from huggingface_hub import ModelCard, constants
from safetensors.torch import load_file
from transformers import (AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, GPT2Config,
                          GPT2LMHeadModel)

from gpt2_scratch.cli import main as cli_main

from hub_server import HubServer
from test_hub_card import rendered

DOCS = Path(__file__).resolve().parents[1] / "docs" / "hub.md"
TOKEN = "hf_test_write_token"
TEXT = "Every effort moves you forward, said the painter."
# What turns each documented command into a toy run; appended, so that these values win over the documented ones.
TOY_SCALE = {
    "convert": ["--no-progress"],
    "push": ["--no-progress"],
    "instruct": ["--max-steps", "2", "--batch-size", "2", "--num-responses", "2", "--max-new-tokens", "4",
                 "--no-progress"],
    "pretrain": ["--preset", "tiny", "--context", "32", "--max-steps", "2", "--no-progress"],
    "train-classifier": ["--max-steps", "2", "--max-length", "32", "--no-progress"],
}
OPENAI_REPOS = ("openai-community/gpt2", "openai-community/gpt2-medium")

# Run by a fresh interpreter: loads every published repository as someone without gpt2_scratch would.
LOADER = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class RefuseGpt2Scratch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):  # installed editable: refuse it explicitly
            if name.split(".")[0] == "gpt2_scratch":
                raise ModuleNotFoundError(f"No module named {name!r} (refused by the test)")

    sys.meta_path.insert(0, RefuseGpt2Scratch())
    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    text, *repos = sys.argv[1:]
    classes, outputs = {}, {}
    for repo in repos:
        config = AutoConfig.from_pretrained(repo, trust_remote_code=True)
        classifier = any("SequenceClassification" in name for name in config.architectures)
        auto = AutoModelForSequenceClassification if classifier else AutoModelForCausalLM
        model = auto.from_pretrained(repo, trust_remote_code=True).eval()
        tokenizer = AutoTokenizer.from_pretrained(repo, trust_remote_code=True)
        with torch.no_grad():
            outputs[repo] = model(**tokenizer(text, return_tensors="pt")).logits
        classes[repo] = type(model).__module__
    save_file(outputs, "logits.safetensors")
    print(json.dumps(classes))
    """
)


def documented_recipes() -> dict[str, list[list[str]]]:
    """{recipe name: its commands as argument lists}, from the ```bash blocks of docs/hub.md that start with
    "# recipe: NAME"."""
    recipes = {}
    for block in re.findall(r"```bash\n(# recipe: .*?)```", DOCS.read_text(), flags=re.S):
        name, *lines = block.strip().splitlines()
        recipes[name.removeprefix("# recipe: ")] = [shlex.split(line)[1:] for line in lines]
    return recipes


def reasoning_records(instructions: list[dict], count: int) -> list[dict]:
    """Records in AM-DeepSeek-R1-Distilled's chat format: the answer preceded by its reasoning."""
    return [
        {"messages": [
            {"role": "user", "content": record["instruction"] + (f"\n{record['input']}" if record["input"] else "")},
            {"role": "assistant", "content": f"<think>\nThe task asks: {record['instruction']}\n</think>\n"
                                             f"<answer>\n{record['output']}\n</answer>"},
        ]}
        for record in instructions[:count]
    ]


@pytest.fixture(scope="module")
def hub():
    with HubServer(token=TOKEN, orgs=("openai-community",)) as server:
        yield server


@pytest.fixture(scope="module")
def online(hub, tmp_path_factory):
    """This process talking to the local Hub, with a Hub cache of its own (never the user's)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(constants, "ENDPOINT", hub.url)
        patch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
        patch.setattr(constants, "HF_HUB_OFFLINE", False)
        patch.setattr(constants, "HF_HUB_CACHE", str(tmp_path_factory.mktemp("hub-cache")))
        patch.setenv("HF_TOKEN", TOKEN)
        yield patch


@pytest.fixture(scope="module")
def runs(hub, online, tmp_path_factory, tokenizer_dir, shared_data):
    """Every documented recipe, run in order in one folder: {recipe: the repository it pushed and the local folder}."""
    # OpenAI's weights, as users download them: a transformers GPT-2 folder with OpenAI's tokenizer files.
    torch.manual_seed(0)
    weights = tmp_path_factory.mktemp("openai-weights")
    GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=128)).save_pretrained(weights)
    shutil.copyfile(tokenizer_dir / "encoder.json", weights / "vocab.json")
    shutil.copyfile(tokenizer_dir / "vocab.bpe", weights / "merges.txt")
    api = huggingface_hub.HfApi()
    for repo in OPENAI_REPOS:
        api.create_repo(repo)
        api.upload_folder(folder_path=weights, repo_id=repo)

    workdir = tmp_path_factory.mktemp("recipes")
    instructions = json.loads((shared_data / "instruction-data.json").read_text())
    (workdir / "am-reasoning-1k.jsonl").write_text(
        "".join(json.dumps(record) + "\n" for record in reasoning_records(instructions, 40)))
    online.chdir(workdir)
    results = {}
    for name, commands in documented_recipes().items():
        for argv in commands:
            argv = [arg.replace("USER/", "user/") for arg in argv] + TOY_SCALE[argv[0]]
            assert cli_main(argv) == 0, (name, argv)
        pushed = commands[-1]
        assert pushed[0] == "push", f"recipe {name!r} must end by pushing what it built"
        results[name] = {"repo": pushed[2].replace("USER/", "user/"), "folder": workdir / pushed[1],
                         "source": commands[0][1]}
    return {"workdir": workdir, "recipes": results}


@pytest.fixture(scope="module")
def loaded_elsewhere(hub, runs, tmp_path_factory):
    """What a Python without gpt2_scratch makes of every pushed repository, through HF_ENDPOINT."""
    workdir = tmp_path_factory.mktemp("remote-load")
    (workdir / "load.py").write_text(LOADER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "PYTHON", "TRANSFORMERS_OFFLINE"))}
    env.update(HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0", HF_HOME=str(workdir / "hf-home"))
    repos = [recipe["repo"] for recipe in runs["recipes"].values()]
    result = subprocess.run([sys.executable, "-I", "load.py", TEXT, *repos], cwd=workdir, env=env,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return {"classes": json.loads(result.stdout.strip().splitlines()[-1]), **load_file(workdir / "logits.safetensors")}


def test_the_docs_hold_the_six_variants_of_the_seed():
    recipes = documented_recipes()
    assert len(recipes) == 6
    assert [commands[0][0] for commands in recipes.values()] == [
        "convert", "convert", "instruct", "pretrain", "train-classifier", "instruct"]
    assert len({commands[-1][2] for commands in recipes.values()}) == 6  # six repositories


def final_model(folder: Path) -> Path:
    """The folder a recipe's push publishes: a checkpoint, instruct's model/, or a pretraining run's last step."""
    if (folder / "config.json").is_file():
        return folder
    if (folder / "model").is_dir():
        return folder / "model"
    return max(folder.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))


def test_every_pushed_repository_loads_without_the_package_and_computes_what_the_run_saved(runs, loaded_elsewhere):
    for name, recipe in runs["recipes"].items():
        repo, folder = recipe["repo"], final_model(recipe["folder"])
        assert loaded_elsewhere["classes"][repo].startswith("transformers_modules."), name
        classifier = "SequenceClassification" in json.loads((folder / "config.json").read_text())["architectures"][0]
        model = (AutoModelForSequenceClassification if classifier else AutoModelForCausalLM).from_pretrained(folder)
        with torch.no_grad():
            expected = model.eval()(**AutoTokenizer.from_pretrained(folder)(TEXT, return_tensors="pt")).logits
        torch.testing.assert_close(loaded_elsewhere[repo], expected, rtol=0, atol=0, msg=name)


def measured(metrics: dict) -> set[float]:
    """Every number a metrics file holds, wherever it is nested."""
    found = set()
    for value in metrics.values():
        if isinstance(value, dict):
            found |= measured(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            found.add(float(value))
    return found


def test_every_card_renders_tells_the_truth_and_reports_the_runs_metrics(hub, runs):
    for name, recipe in runs["recipes"].items():
        files = hub.files(recipe["repo"])
        card = ModelCard(files["README.md"].decode())
        body = rendered(card.text)
        for table in body["tables"]:
            assert len({len(row) for row in table}) == 1, (name, table)  # no row broken by a cell's content
        assert not {"Instruction:", "Response:", "Input:"} & set(body["headings"]), name
        assert str(runs["workdir"]) not in str(card) and "/tmp" not in str(card), name  # no local path
        metrics = json.loads(files["metrics.json"]) if "metrics.json" in files else {}
        results = card.data.eval_results or []
        if "OpenAI's weights" in name:
            assert not results and "openai-weights" in card.data.tags and card.data.license == "mit"
            assert card.data.base_model == recipe["source"] and recipe["source"] in OPENAI_REPOS, name
            continue
        assert results, name
        # model-index claims exactly the run's final numbers (a classifier's accuracy before fine-tuning is no claim)
        final = metrics.get("after", metrics)
        assert {r.metric_value for r in results} <= measured(final), name
        if "classifier" in name:
            assert "spam-detection" in card.data.tags and card.data.license == "mit"
            test_accuracy = next(r.metric_value for r in results if r.dataset_split == "test" and
                                 r.metric_type == "accuracy")
            assert test_accuracy == metrics["after"]["test"]["accuracy"]
        elif "pretrained" in name:
            assert card.data.license == "apache-2.0" and "pretrained-from-scratch" in card.data.tags
            assert {r.metric_value for r in results} >= {metrics["val_loss"]}
        else:  # instruction-tuned, on OpenAI's (converted) weights
            assert card.data.license == "mit" and "instruction-tuned" in card.data.tags
            dataset = {r.dataset_name for r in results}
            assert dataset == ({"am-reasoning-1k.jsonl"} if "reasoning" in name
                               else {"instruction-data.json (LLMs from Scratch)"}), name
            assert "### Instruction:" in "".join(body["code"])  # the prompt format, shown whole in a code block
