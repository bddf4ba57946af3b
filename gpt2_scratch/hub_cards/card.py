"""Model cards built from a checkpoint directory and what its run recorded, never typed by hand.

The YAML metadata is a huggingface_hub `ModelCardData` (license, language, library_name, pipeline_tag, tags,
base_model, datasets, metrics and a `model-index` with one `EvalResult` per recorded result); the Markdown body comes
from one Jinja template per kind of checkpoint (templates/<kind>.md.j2, all extending templates/base.md.j2).
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..modeling import PRESETS, ScratchGPT2Config
from ..resources import write_atomically
from ..provenance import dataset_reference, is_hub_id, is_local_path
from .records import CheckpointRecords, Measurement, model_folder, public_name, read_records

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,  # a misspelt variable is an error, not a silently empty card section
)
# A table cell's text: a bare "|" would end the cell and shift the rest of the row.
TEMPLATES.filters["cell"] = lambda value: str(value).replace("|", "\\|")

# What each kind of checkpoint was evaluated on when provenance.json names no "eval_dataset".
DEFAULT_EVAL_DATASETS = {
    "converted": {"type": "the-verdict", "name": "The Verdict (Edith Wharton)"},
    "pretrained": {"type": "the-verdict", "name": "The Verdict (Edith Wharton)"},
    "classifier": {"type": "sms_spam", "name": "SMS Spam Collection"},
    "instruction-tuned": {"type": "instruction-data", "name": "instruction-data.json (LLMs from Scratch)"},
}
SMS_SPAM = "sms-spam"  # `gpt2-scratch train-classifier --data sms-spam`: the course's data set
SMS_SPAM_TYPE = DEFAULT_EVAL_DATASETS["classifier"]["type"]
COMMON_TAGS = ["gpt2", "scratch-gpt2", "from-scratch", "pytorch", "safetensors", "custom_code"]
KIND_TAGS = {
    "converted": ["openai-weights"],
    "pretrained": ["pretrained-from-scratch"],
    "classifier": ["text-classification"],  # plus "spam-detection" for a classifier of the SMS Spam Collection
    "instruction-tuned": ["instruction-tuned"],
}
# GPT-2's weights were released by OpenAI under the MIT license; a model pretrained here carries the project's license,
# and so does one fine-tuned from weights made here (pretrained from scratch, or a preset's random initialisation).
DEFAULT_LICENSES = {"converted": "mit", "pretrained": "apache-2.0", "classifier": "mit", "instruction-tuned": "mit"}
LICENSE_OF_ORIGIN = {"openai": "mit", "scratch": "apache-2.0", "random": "apache-2.0"}
# The example texts of a classifier's usage snippets: spam and ham for the course's classifier, else placeholders.
EXAMPLE_TEXTS = {SMS_SPAM_TYPE: ["You won a free cruise! Text WIN to 80082", "See you at dinner tonight?"],
                 None: ["A text like the ones it was trained on", "Another text to classify"]}

# The names OpenAI's GPT-2 weights go by on the Hub, with and without the organisation.
OPENAI_GPT2 = re.compile(r"(openai-community/)?gpt2(-medium|-large|-xl)?")
# Where a base checkpoint's weights come from, by its kind (a fine-tuned base: from wherever its own base's came).
ORIGIN_OF_KIND = {"converted": "openai", "pretrained": "scratch"}
SPLIT_NAMES = {"train": "Train", "validation": "Validation", "test": "Test", None: ""}


def build_card(checkpoint_dir: str | Path, repo_id: str | None = None) -> ModelCard:
    """The model card of a checkpoint directory. `repo_id` ("user/name") goes into the usage snippets and names
    the model in `model-index`; without it the card uses "USER/<directory name>"."""
    records = read_records(checkpoint_dir)
    repo_id = repo_id or f"USER/{records.directory.resolve().name}"
    card_data = _card_data(records, repo_id)
    body = TEMPLATES.get_template(f"{records.kind}.md.j2").render(
        card_data=card_data.to_yaml(), **_template_context(records, repo_id)
    )
    return ModelCard(body)


def write_card(checkpoint_dir: str | Path, repo_id: str | None = None, output: str | Path | None = None) -> Path:
    """Write the card of `checkpoint_dir` to `output` (default: README.md inside the checkpoint) and return its path."""
    output = Path(output) if output is not None else model_folder(checkpoint_dir) / "README.md"
    write_atomically(output, str(build_card(checkpoint_dir, repo_id)))
    return output


def eval_dataset(records: CheckpointRecords) -> dict:
    """What the metrics were measured on: provenance.json's "eval_dataset", else the data a classifier was trained
    on (its run measures every split of it), else the usual data of the kind."""
    data = records.training_args.get("data")
    if records.kind == "classifier" and isinstance(data, str) and data != SMS_SPAM:
        dataset = records.provenance.eval_dataset or dataset_reference(data)
    else:
        dataset = records.provenance.eval_dataset or DEFAULT_EVAL_DATASETS[records.kind]
    if is_local_path(dataset["type"]):  # recorded by an older run: model-index wants an id, the card no path
        return {"type": dataset_reference(dataset["type"])["type"], "name": public_name(dataset["name"])}
    return dataset


def eval_results(records: CheckpointRecords) -> list[EvalResult]:
    dataset = eval_dataset(records)
    task = "text-classification" if records.kind == "classifier" else "text-generation"
    return [
        EvalResult(
            task_type=task,
            dataset_type=dataset["type"],
            dataset_name=dataset["name"],
            dataset_split=m.split,
            metric_type=m.metric,
            metric_name=_pretty_name(m),
            metric_value=m.value,
        )
        for m in records.measurements
        if not m.baseline  # the base model's numbers, before fine-tuning, are not this model's results
    ]


def _card_data(records: CheckpointRecords, repo_id: str) -> ModelCardData:
    provenance = records.provenance
    results = eval_results(records)
    return ModelCardData(
        license=provenance.license or LICENSE_OF_ORIGIN.get(base_origin(records),
                                                                   DEFAULT_LICENSES[records.kind]),
        language="en",
        library_name="transformers",
        pipeline_tag="text-classification" if records.kind == "classifier" else "text-generation",
        tags=[*COMMON_TAGS, *KIND_TAGS[records.kind], *(["spam-detection"] if _is_spam_classifier(records) else [])],
        base_model=_hub_id(base_model(records)),
        datasets=[name for name in provenance.datasets if _hub_id(name)] or None,
        metrics=sorted({r.metric_type for r in results}) or None,
        model_name=repo_id.split("/")[-1] if results else None,  # names the model in model-index, only there
        eval_results=results or None,
    )


def _template_context(records: CheckpointRecords, repo_id: str) -> dict:
    config = records.config
    provenance = records.provenance.to_dict()
    id2label = config.get("id2label") or {}
    return {
        "repo_id": repo_id,
        "model_name": repo_id.split("/")[-1],
        "size": f"{round(records.parameter_count / 1e6)}M",
        "parameter_count": f"{records.parameter_count:,}",
        "architecture": {
            "Layers": config.get("n_layer"),
            "Hidden size": config.get("n_embd"),
            "Attention heads": config.get("n_head"),
            "Context length": config.get("n_positions"),
            "Vocabulary": config.get("vocab_size"),
            "Feed-forward size": ScratchGPT2Config.from_dict(config).intermediate_size,
            "Activation": config.get("activation_function"),
            "Output head tied to the token embedding": "yes" if config.get("tie_word_embeddings", True) else "no",
        },
        "provenance": {**provenance, **_public(provenance, "source", "base_model", "datasets")},
        "base_model": public_name(base) if (base := base_model(records)) else None,
        "base_origin": base_origin(records),
        "eval_dataset": eval_dataset(records),
        "other_datasets": [name for name in _public(provenance, "datasets").get("datasets", [])
                           if name != eval_dataset(records)["name"]],
        "example_texts": EXAMPLE_TEXTS[SMS_SPAM_TYPE if _is_spam_classifier(records) else None],
        **_hyperparameters(records.training_args),
        "results": [(_pretty_name(m), f"{m.value:.4g}") for m in records.measurements],
        "plots": [plot.name for plot in records.plots],
        "labels": [id2label[str(i)] for i in range(len(id2label))],
        "confusion_matrix": records.confusion_matrix,
    }


def _is_spam_classifier(records: CheckpointRecords) -> bool:
    return records.kind == "classifier" and eval_dataset(records)["type"] == SMS_SPAM_TYPE


def _public(provenance: dict, *keys: str) -> dict:
    """The provenance entries `keys` (a name or a list of names) as a public card may show them: local paths by
    their last component."""
    public = {}
    for key in keys:
        value = provenance.get(key)
        if isinstance(value, str):
            public[key] = public_name(value)
        elif isinstance(value, list):
            public[key] = [public_name(item) if isinstance(item, str) else item for item in value]
    return public


def _hyperparameters(training_args: dict) -> dict:
    """The run's settings, in two parts: "hyperparameters", one line each, for the table; "long_hyperparameters",
    the multi-line ones (an instruction-tuned run's sample prompt), which a Markdown table cannot hold: in a cell,
    a line such as "### Response:" would end the table and become a heading."""
    settings = {
        name: str(value) for name, value in training_args.items()
        if value is not None and not isinstance(value, (dict, list))  # the table holds settings, not structures
    }
    settings = {name: value if "\n" in value else public_name(value) for name, value in settings.items()}
    return {
        "hyperparameters": {name: value for name, value in settings.items() if "\n" not in value},
        "long_hyperparameters": {  # the block's closing fence takes the place of a final newline
            name: (value.removesuffix("\n"), _fence(value)) for name, value in settings.items() if "\n" in value
        },
    }


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in `text`, so that the text cannot close it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _pretty_name(m: Measurement) -> str:
    name = f"{SPLIT_NAMES[m.split]} {m.metric.replace('_', ' ')}".strip()
    return f"{name} (before fine-tuning)" if m.baseline else name


def base_model(records: CheckpointRecords) -> str | None:
    """The model this one was fine-tuned or converted from: provenance.json's "base_model", else the run's "base"."""
    args = records.training_args
    return records.provenance.base_model or args.get("base_model") or args.get("base")


def base_origin(records: CheckpointRecords) -> str | None:
    """Where a fine-tuned model's weights first came from, so that its card warns about the right pretraining data:
    "openai" (OpenAI's GPT-2, trained on WebText), "scratch" (pretrained from scratch by one of our runs),
    "random" (a preset's random initialisation: fine-tuned without any pretraining), or None
    when that is not known (no base recorded, or a base that is neither a GPT-2 name nor a checkpoint folder here).
    provenance.json's "base_origin" says it outright; otherwise a base folder tells by its own records (docs/hub.md:
    a folder without any is a conversion), and a fine-tuned base passes the question on to its own base."""
    seen = set()
    while True:
        if records.provenance.base_origin is not None:  # checked against BASE_ORIGINS when read
            return records.provenance.base_origin
        base = base_model(records)
        if base is None:
            return None
        if base in PRESETS:  # fine-tuning commands build a preset's random model before looking for a folder
            return "random"
        if OPENAI_GPT2.fullmatch(base):
            return "openai"
        seen.add(records.directory.resolve())
        folder = Path(base)
        if folder.resolve() in seen or not (folder / "config.json").is_file():
            return None
        records = read_records(folder)
        if records.kind in ORIGIN_OF_KIND:
            return ORIGIN_OF_KIND[records.kind]


def _hub_id(name: str | None) -> str | None:
    """`name` if it is a Hub repository id ("user/name"), else None: the Hub rejects metadata naming anything else,
    such as a local folder, so those stay in the card's text only."""
    return name if is_hub_id(name) else None
