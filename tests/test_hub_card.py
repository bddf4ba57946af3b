"""Model cards built from checkpoint directories: metadata that round-trips through huggingface_hub's card loader,
eval results equal to the metrics file, one template per kind, usage snippets that run."""

import json
import re
import shutil

import pytest
import torch
import yaml
from huggingface_hub import ModelCard

import gpt2_scratch
from gpt2_scratch.cli import main as cli_main
from gpt2_scratch.hub_cards import KINDS, build_card, write_card
from gpt2_scratch.tokenization import gpt2_tokenizer

# metrics.json as `gpt2-scratch train-classifier` records it: run facts, then each split before and after fine-tuning.
METRICS = {
    "labels": ["ham", "spam"],
    "examples": {"train": 1045, "validation": 149, "test": 300},
    "max_length": 120,
    "parameters": {"total": 124441346, "trainable": 7090178},
    "before": {"test": {"loss": 2.71, "accuracy": 0.4633}},
    "after": {
        "train": {"loss": 0.083, "accuracy": 0.9721},
        "validation": {"loss": 0.074, "accuracy": 0.9732},
        "test": {"loss": 0.121, "accuracy": 0.9567, "precision": 0.9591, "recall": 0.9533, "f1": 0.9561,
                 "confusion_matrix": [[144, 6], [7, 143]]},
    },
}
# metrics.json as the pretraining loop records it: one flat object per evaluation.
PRETRAINING_METRICS = {
    "step": 90, "epoch": 10.0, "tokens_seen": 46080, "learning_rate": 0.0004, "step_loss": 0.52, "train_loss": 0.47,
    "val_loss": 6.41, "train_perplexity": 1.6, "val_perplexity": 608.4, "tokens_per_s": 212.5, "sample": " you know",
}


@pytest.fixture(scope="module")
def gpt2_tokenizer_files(tmp_path_factory, tokenizer_dir):
    folder = tmp_path_factory.mktemp("tokenizer")
    gpt2_tokenizer(tokenizer_dir).save_pretrained(folder)
    return folder


def save_checkpoint(folder, model, tokenizer_files=None, **records):
    """A checkpoint as a run leaves it: save_pretrained output, maybe its tokenizer, and JSON records."""
    model.save_pretrained(folder)
    if tokenizer_files is not None:
        shutil.copytree(tokenizer_files, folder, dirs_exist_ok=True)
    for name, content in records.items():
        (folder / f"{name}.json").write_text(json.dumps(content))
    return folder


def tiny(**overrides):
    torch.manual_seed(0)
    return gpt2_scratch.ScratchGPT2Config.from_preset("tiny", **overrides)


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory, gpt2_tokenizer_files):
    model = gpt2_scratch.ScratchGPT2ForSequenceClassification(
        tiny(num_labels=2, id2label={0: "ham", 1: "spam"}, label2id={"ham": 0, "spam": 1}, pad_token_id=50256)
    )
    folder = save_checkpoint(
        tmp_path_factory.mktemp("classifier"), model, gpt2_tokenizer_files,
        metrics=METRICS,
        provenance={"kind": "classifier", "base_model": "openai-community/gpt2", "datasets": ["ucirvine/sms_spam"]},
        training_args={"learning_rate": 5e-5, "num_train_epochs": 5, "per_device_train_batch_size": 8},
    )
    (folder / "confusion_matrix.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return folder


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


def rendered(markdown: str) -> dict:
    """What a GitHub-flavoured Markdown renderer (markdown-it-py, as the Hub renders cards) makes of a card's body:
    its headings, its tables (each a list of rows of cell texts) and its fenced code blocks."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("gfm-like", {"linkify": False}).parse(markdown)
    found = {"headings": [], "tables": [], "code": []}
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            found["headings"].append(tokens[i + 1].content)
        elif token.type == "table_open":
            found["tables"].append([])
        elif token.type == "tr_open":
            found["tables"][-1].append([])
        elif token.type in ("th_open", "td_open"):
            found["tables"][-1][-1].append(tokens[i + 1].content)
        elif token.type == "fence":
            found["code"].append(token.content)
    return found


def test_metadata_round_trips_and_eval_results_equal_the_metrics_file(classifier_dir):
    path = write_card(classifier_dir, repo_id="user/scratch-gpt2-spam")
    text = path.read_text()
    loaded = ModelCard.load(path)
    assert loaded.content == text  # huggingface_hub's loader writes back exactly what it read
    assert loaded.data.to_dict() == yaml.safe_load(text.split("---\n")[1])
    recorded = json.loads((classifier_dir / "metrics.json").read_text())
    expected = {(split, metric): value for split, results in recorded["after"].items()  # the fine-tuned model's
                for metric, value in results.items() if metric != "confusion_matrix"}
    in_card = {(r.dataset_split, r.metric_type): r.metric_value for r in loaded.data.eval_results}
    assert in_card == expected
    assert "| Test accuracy (before fine-tuning) | 0.4633 |" in loaded.text  # the baseline, in the text only
    assert "| **ham** | 144 | 6 |\n| **spam** | 7 | 143 |" in loaded.text  # the test split's confusion matrix
    assert {r.task_type for r in loaded.data.eval_results} == {"text-classification"}
    assert loaded.data.model_name == "scratch-gpt2-spam"
    assert loaded.data.pipeline_tag == "text-classification" and loaded.data.library_name == "transformers"
    assert loaded.data.base_model == "openai-community/gpt2" and loaded.data.datasets == ["ucirvine/sms_spam"]
    assert "| learning_rate | 5e-05 |" in loaded.text and "![confusion_matrix.png](confusion_matrix.png)" in loaded.text


def test_flat_metrics_of_a_pretraining_run(tmp_path):
    folder = save_checkpoint(tmp_path, gpt2_scratch.ScratchGPT2ForCausalLM(tiny()), metrics=PRETRAINING_METRICS)
    card = ModelCard(str(build_card(folder)))  # through text, as the Hub reads it
    in_card = {(r.dataset_split, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert in_card == {("train", "loss"): 0.47, ("validation", "loss"): 6.41, ("train", "perplexity"): 1.6,
                       ("validation", "perplexity"): 608.4}
    assert {r.dataset_type for r in card.data.eval_results} == {"the-verdict"}
    assert "pretrained from scratch" in card.text  # recorded metrics without provenance.json: a pretraining run


def test_each_kind_gets_its_own_template(tmp_path):
    folder = save_checkpoint(tmp_path, gpt2_scratch.ScratchGPT2ForCausalLM(tiny()))
    cards = {}
    for kind in KINDS:
        (folder / "provenance.json").write_text(
            json.dumps({"kind": kind, "source": "openai-community/gpt2-medium", "layout": "transformers"})
        )
        cards[kind] = build_card(folder, "user/scratch-gpt2-medium")
    assert "converted from `openai-community/gpt2-medium` (checkpoint layout `transformers`)" in cards["converted"].text
    assert "pretrained from scratch" in cards["pretrained"].text and cards["pretrained"].data.license == "apache-2.0"
    assert "AutoModelForSequenceClassification.from_pretrained" in cards["classifier"].text
    assert "### Instruction:" in cards["instruction-tuned"].text
    assert len({card.text for card in cards.values()}) == len(KINDS)
    for kind, card in cards.items():
        assert "scratch-gpt2" in card.data.tags and card.data.language == "en"
        assert card.data.pipeline_tag == ("text-classification" if kind == "classifier" else "text-generation")


def test_a_checkpoint_with_nothing_recorded_still_gets_a_card(tmp_path):
    model = gpt2_scratch.ScratchGPT2ForCausalLM(tiny(tie_word_embeddings=False))  # like the 163M untied model
    model.save_pretrained(tmp_path, max_shard_size="5MB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    (tmp_path / "model-00001-of-00009.safetensors").write_bytes(b"left by an earlier save; not in the index")
    card = build_card(tmp_path)
    parameters = sum(p.numel() for p in model.parameters())
    assert f"| Parameters | {parameters:,} " in card.text
    assert "| Output head tied to the token embedding | no |" in card.text
    assert "No evaluation results were recorded" in card.text
    assert card.data.eval_results is None and "model-index" not in str(card)
    assert f'"USER/{tmp_path.name}"' in card.text  # the snippets' placeholder repository


def test_usage_snippets_run(classifier_dir, gpt2_tokenizer_files, tmp_path, capsys):
    causal_dir = save_checkpoint(tmp_path, gpt2_scratch.ScratchGPT2ForCausalLM(tiny()), gpt2_tokenizer_files)
    classifier_snippets = python_blocks(str(build_card(classifier_dir, "user/repo")))
    generation_snippets = python_blocks(str(build_card(causal_dir, "user/repo")))
    assert len(classifier_snippets) == len(generation_snippets) == 2  # with the package, with trust_remote_code
    # The snippets with the package installed ("user/repo" becomes the local checkpoint, which from_pretrained takes
    # too); the remote-code path is test_hub_publish's subject, and importing transformers' pipelines costs ~10 s.
    exec(classifier_snippets[0].replace('"user/repo"', repr(str(classifier_dir))), {})
    generation = generation_snippets[0].replace('"user/repo"', repr(str(causal_dir)))
    exec(generation.replace("max_new_tokens=50", "max_new_tokens=5"), {})  # a random tiny model: 5 is plenty
    printed = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"\['(ham|spam)', '(ham|spam)'\]", printed[0])
    assert len(printed) >= 2  # the generated continuation


def test_bad_records_are_clear_errors(tmp_path):
    folder = save_checkpoint(tmp_path, gpt2_scratch.ScratchGPT2ForCausalLM(tiny()))
    (folder / "provenance.json").write_text(json.dumps({"kind": "distilled"}))
    with pytest.raises(ValueError, match="kind 'distilled' is not one of converted, pretrained"):
        build_card(folder)
    (folder / "provenance.json").write_text("{not json")
    with pytest.raises(ValueError, match="provenance.json is not valid JSON"):
        build_card(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        build_card(tmp_path / "empty")


def test_card_command_writes_readme(classifier_dir, tmp_path, capsys):
    output = tmp_path / "README.md"
    assert cli_main(["card", str(classifier_dir), "--repo-id", "user/spam", "-o", str(output)]) == 0
    assert ModelCard.load(output).data.model_name == "spam"
    assert f"wrote {output}" in capsys.readouterr().out


def test_staging_a_conversion_of_transformers_gpt2_keeps_its_outputs(tmp_path):
    """transformers' own GPT-2 (random weights) -> `gpt2-scratch convert` -> the staged repository: the staged
    model gives GPT2LMHeadModel's logits, and the card tells where the weights came from."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from gpt2_scratch.conversion import convert
    from gpt2_scratch.hub_cards import stage

    torch.manual_seed(0)
    reference = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=128)).eval()
    reference.save_pretrained(tmp_path / "hf-gpt2")
    converted = convert(tmp_path / "hf-gpt2", tmp_path / "converted")
    (converted / "provenance.json").write_text(json.dumps({"kind": "converted", "source": "openai-community/gpt2",
                                                           "layout": "transformers"}))
    staged = stage(converted, tmp_path / "staged", repo_id="user/scratch-gpt2")
    assert {"config.json", "model.safetensors", "modeling_scratch_gpt2.py", "tokenizer.json", "README.md"} <= {
        p.name for p in staged}
    model = gpt2_scratch.ScratchGPT2ForCausalLM.from_pretrained(tmp_path / "staged").eval()
    input_ids = torch.randint(0, 50257, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids).logits, reference(input_ids).logits, rtol=1e-5, atol=1e-5)
    card = ModelCard.load(tmp_path / "staged" / "README.md")
    assert "converted from `openai-community/gpt2` (checkpoint layout `transformers`)" in card.text
    assert card.data.license == "mit" and "openai-weights" in card.data.tags


def test_the_limitations_name_the_pretraining_the_weights_come_from(tmp_path):
    """A fine-tune's card warns about WebText only when its weights go back to OpenAI's GPT-2: its base is named
    like OpenAI's or is a converted checkpoint folder; a base pretrained here gets its own warning, found through a
    chain of fine-tunes too; an unknown base, a neutral paragraph."""
    model = gpt2_scratch.ScratchGPT2ForCausalLM(tiny())
    scratch = save_checkpoint(tmp_path / "scratch", model, metrics=PRETRAINING_METRICS)  # a pretraining run
    converted = save_checkpoint(tmp_path / "converted", model)  # what `gpt2-scratch convert` leaves: weights only

    def card_for(base, kind="classifier", name="fine-tune", **provenance):
        folder = save_checkpoint(tmp_path / name, model, provenance={"kind": kind, "base_model": base, **provenance})
        return build_card(folder, "user/fine-tune").text

    webtext = "trained on WebText"
    assert webtext in card_for("openai-community/gpt2-medium") and webtext in card_for("gpt2")
    assert webtext in card_for(str(converted), kind="instruction-tuned")
    from_scratch = card_for(str(scratch), name="from-scratch")
    assert webtext not in from_scratch and "`scratch`, a GPT-2 pretrained from scratch" in from_scratch
    chained = card_for(str(tmp_path / "from-scratch"), kind="instruction-tuned", name="chained")
    assert webtext not in chained and "pretrained from scratch with gpt2-scratch" in chained
    unknown = card_for("USER/scratch-gpt2-small")
    assert webtext not in unknown and "read the base model's\ncard as well" in unknown
    assert webtext in card_for("USER/scratch-gpt2-small", base_origin="openai")
    with pytest.raises(ValueError, match="base_origin 'webtext' is not one of 'openai', 'scratch'"):
        card_for("USER/scratch-gpt2-small", base_origin="webtext")


def test_a_multi_line_setting_renders_below_the_table_not_in_it(tmp_path):
    """An instruction-tuned run records its multi-line sample prompt in training_args.json: rendered as the Hub
    renders cards, the hyperparameter table keeps every row and the prompt's "### Instruction:" lines do not become
    headings; the prompt is shown whole in a code block, and a pipe inside a value stays in its cell."""
    prompt = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
              "request.\n\n### Instruction:\nName a colour.\n\n### Response:\n")
    args = {"learning_rate": 5e-05, "sample_prompt": prompt, "template": "alpaca | phi3", "epochs": 2}
    folder = save_checkpoint(tmp_path, gpt2_scratch.ScratchGPT2ForCausalLM(tiny()), training_args=args,
                             provenance={"kind": "instruction-tuned", "base_model": "openai-community/gpt2-medium"})
    card = rendered(build_card(folder, "user/scratch-gpt2-instruct").text)
    assert card["headings"] == ["scratch-gpt2-instruct", "Model", "Provenance", "Prompt format", "How to use",
                                "Training", "Evaluation", "Limitations and biases", "Citation"]
    hyperparameters = next(table for table in card["tables"] if table[0] == ["Hyperparameter", "Value"])
    assert hyperparameters[1:] == [["learning_rate", "5e-05"], ["template", "alpaca | phi3"], ["epochs", "2"]]
    assert prompt in card["code"]
    for table in card["tables"]:
        assert all(len(row) == len(table[0]) for row in table)


def test_cards_name_the_data_and_base_a_run_used_and_no_local_path(tmp_path, tokenizer):
    """The records written by `instruct` and `train-classifier` (their own writers, not hand-made files) give cards
    that name the run's own data once, keep local paths out (only the last component shows), tag a classifier by
    what it classifies, and tell a fine-tune of a preset's random weights from one of a pretrained model."""
    from dataclasses import asdict

    from gpt2_scratch.classification.training import FineTuningSettings, provenance
    from gpt2_scratch.instruct.finetune import InstructConfig, instruction_provenance, save_final_model
    from gpt2_scratch.training import TrainConfig

    model = gpt2_scratch.ScratchGPT2ForCausalLM(tiny())
    base = save_checkpoint(tmp_path / "runs" / "my-base", model, metrics=PRETRAINING_METRICS)
    metrics = {"train_loss": 1.5, "val_loss": 2.0, "val_perplexity": 7.39}

    def instruct_card(name, **config):
        train_config = TrainConfig(out_dir=str(tmp_path / name), extra={"data": {"train": 8, "test": 1}})
        settings = InstructConfig(**config)
        launch = {"num_processes": 1, "distributed_type": "NO", "mixed_precision": "no", "device": "cpu",
                  "asked_processes": None}
        save_final_model(model, tokenizer, tmp_path / name, settings, train_config, metrics,
                         instruction_provenance(settings), launch)
        card = build_card(tmp_path / name / "model", "user/instruct")
        return card, rendered(card.text), str(card)

    card, body, whole = instruct_card("own-data", model=str(base), data=str(tmp_path / "my_tasks.jsonl"))
    assert {(r.dataset_type, r.dataset_name) for r in card.data.eval_results} == {("my-tasks", "my_tasks.jsonl")}
    assert "instruction-data" not in whole and str(tmp_path) not in whole
    assert "Fine-tuned from `my-base` (full fine-tuning)." in card.text and "pretrained from scratch with gpt2-scratch" in card.text
    assert ["out_dir", "own-data"] in next(t for t in body["tables"] if t[0] == ["Hyperparameter", "Value"])
    assert card.data.license == "apache-2.0"  # the base was pretrained here

    card, _, whole = instruct_card("course-data", model="tiny")
    assert {r.dataset_name for r in card.data.eval_results} == {"instruction-data.json (LLMs from Scratch)"}
    assert card.text.count("instruction-data.json (LLMs from Scratch)") == 1
    assert "Fine-tuned from random weights in the shape of the `tiny` preset" in card.text.replace("\n", " ")
    assert "never\npretrained" in card.text and "WebText" not in card.text and card.data.license == "apache-2.0"

    labels = {0: "billing", 1: "delivery", 2: "other"}
    classifier = gpt2_scratch.ScratchGPT2ForSequenceClassification(
        tiny(num_labels=3, id2label=labels, label2id={v: k for k, v in labels.items()}, pad_token_id=50256))
    settings = FineTuningSettings(base="openai-community/gpt2", data=str(tmp_path / "grievances.csv"))
    folder = save_checkpoint(tmp_path / "grievances", classifier, training_args=asdict(settings),
                             provenance=provenance(settings).to_dict(), metrics={"test": {"accuracy": 0.8}})
    card = build_card(folder, "user/grievances")
    assert {(r.dataset_type, r.dataset_name) for r in card.data.eval_results} == {("grievances", "grievances.csv")}
    assert "spam-detection" not in card.data.tags and "text-classification" in card.data.tags
    assert "spam" not in card.text.lower() and "cruise" not in card.text and str(tmp_path) not in str(card)
    assert "as\nbilling or delivery or other" in card.text
