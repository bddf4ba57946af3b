"""Fine-tune a ScratchGPT2 checkpoint into a text classifier with transformers' Trainer, and record the run.

`train_classifier(base, data, out)` does the whole path: load and check the labelled texts, put a fresh
classification head on the checkpoint, freeze it by policy, measure accuracy on every split, train, measure again,
and save into `out`:

    config.json, model.safetensors, tokenizer files   the classifier; loads with AutoModelForSequenceClassification
                                                       and pipeline("text-classification", model=out)
    metrics.json         labels, split sizes, parameter counts, and for each split before and after fine-tuning:
                         loss, accuracy, precision, recall, F1 and the confusion matrix
    training_args.json   the settings of the run (base, data, freezing policy, hyperparameters)
    provenance.json      kind, base model, method and data, for the model card (docs/hub.md)
    history.json         Trainer's log: training loss every few steps, train/validation metrics every epoch
    loss.png, accuracy.png, confusion_matrix.png

The folder is built under a temporary name beside `out` and renamed into place at the end, so a failed run leaves
no half-written classifier behind.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import (
    AutoModelForSequenceClassification,
    DataCollatorWithPadding,
    PrinterCallback,
    ProgressCallback,
    Trainer,
    TrainingArguments,
    set_seed,
)

from ..conversion.hparams import LM_HEAD, SCORE
from ..lora import merge_lora, parameter_counts
from ..modeling.configuration_scratch_gpt2 import dropouts
from ..conversion.pretrained import load_pretrained
from ..conversion.sources import check_readable
from ..provenance import Provenance, dataset_reference
from ..resources import write_atomically
from ..staging import staged_folder
from ..tokenization import load_tokenizer
from ..training.config import setting
from .data import SPLIT_NAMES, default_max_length, describe_source, label_names_of, load_labelled_texts, tokenize_splits
from .freezing import apply_freezing
from .metrics import ClassificationMetrics
from .accuracy_plots import plot_confusion_matrix, plot_curves

METRICS_FILE = "metrics.json"
SETTINGS_FILE = "training_args.json"
HISTORY_FILE = "history.json"
SMS_SPAM_DATASET = {"type": "sms_spam", "name": "SMS Spam Collection"}
LOSS_PLOT, ACCURACY_PLOT, CONFUSION_PLOT = "loss.png", "accuracy.png", "confusion_matrix.png"
LOG_POINTS_PER_EPOCH = 10  # how often the training loss is logged, for a smooth loss curve


FREEZING_HELP = (
    "what stays frozen: all-but-head (train the head only), all-but-last-block (the course's: last block + final "
    "LayerNorm + head), all-but-last-N-blocks (e.g. all-but-last-2-blocks), nothing (train everything), "
    "lora (LoRA adapters + head)"
)


@dataclass
class FineTuningSettings:
    """Everything that defines a classification fine-tune; saved as training_args.json, and the options of
    `gpt2-scratch train-classifier`. The defaults are the course's: AdamW at a constant lr of 5e-5 with weight
    decay 0.1, batch size 8, 5 epochs, last block trainable."""

    base: str = setting(help="checkpoint folder (causal LM or converted OpenAI weights)", metavar="CKPT")
    data: str = setting(help="'sms-spam', a CSV/TSV/JSON/JSONL/Parquet file (split 70/10/20), a folder of "
                        "*train*/*val*/*test* files, a save_to_disk folder, or a datasets name",
                        metavar="FILE_OR_DATASET")
    freeze: str = setting("all-but-last-block", FREEZING_HELP, metavar="POLICY")
    epochs: float = setting(5.0, "passes over the training split")
    max_steps: int | None = setting(None, "stop after this many optimizer steps, whatever --epochs says")
    learning_rate: float = setting(5e-5, "AdamW learning rate", flags=("--lr",))
    weight_decay: float = setting(0.1, "AdamW's decoupled weight decay")
    batch_size: int = setting(8, "texts per training batch")
    eval_batch_size: int = setting(32, "texts per evaluation batch")
    lr_scheduler: str = setting("constant", "a transformers scheduler name, e.g. linear, cosine")
    max_length: int | None = setting(None, "tokens kept per text (default: the model's context)")
    dropout: float | None = setting(None, "override the checkpoint's dropout rates (the course used 0)")
    seed: int = setting(123, "seeds the new head's weights and the data order")
    text_column: str = setting("text", "column holding the texts")
    label_column: str = setting("label", "column holding the labels")
    label_names: list[str] | None = setting(None, "comma-separated label names, in id order (integer labels index "
                                            "into them), e.g. ham,spam", flags=("--labels",), nargs=None,
                                            type=lambda names: names.split(","))
    tokenizer: str | None = setting(None, "tokenizer folder (default: the base checkpoint's, else GPT-2's)")
    lora_rank: int = setting(8, "rank of the LoRA adapters (--freeze lora)")
    lora_alpha: int = setting(16, "LoRA scaling numerator (the update is scaled by alpha / rank)")
    extra: dict = field(default_factory=dict)  # more TrainingArguments, passed through as given

    def validate(self):
        for name in ("epochs", "learning_rate", "batch_size", "eval_batch_size"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {self.max_steps!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")


@dataclass
class ClassifierRun:
    """What `train_classifier` returns: where the classifier is, and its metrics (the content of metrics.json)."""

    output_dir: Path
    metrics: dict

    def accuracy_table(self) -> str:
        return accuracy_table(self.metrics)


def train_classifier(base, data, out, overwrite: bool = False, progress: bool = True, **settings) -> ClassifierRun:
    """Fine-tune checkpoint `base` on the labelled texts `data` (see `load_labelled_texts`) and save the classifier
    with its metrics and plots in folder `out`. Keyword arguments are FineTuningSettings fields."""
    settings = FineTuningSettings(base=os.fspath(base), data=describe_source(data), **settings)
    settings.validate()
    out = Path(out)
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} already exists; choose another folder or pass overwrite=True (--overwrite)")

    check_readable(settings.base)
    set_seed(settings.seed)  # before the head is created, so that its initial weights depend on the seed only
    tokenizer = load_tokenizer(settings.base, settings.tokenizer)
    splits = load_labelled_texts(
        data, settings.text_column, settings.label_column, settings.label_names, seed=settings.seed
    )
    labels = label_names_of(splits)
    model = classification_model(settings.base, labels, tokenizer, settings.dropout)
    counts = parameter_counts(model)
    model = apply_freezing(model, settings.freeze, settings.lora_rank, settings.lora_alpha)
    counts["trainable"] = parameter_counts(model)["trainable"]
    max_length = default_max_length(model.config.max_position_embeddings, settings.max_length)
    encoded = tokenize_splits(splits, tokenizer, max_length)

    with staged_folder(out, replace=overwrite) as workdir:
        trainer = make_trainer(model, tokenizer, encoded, labels, settings, workdir, progress)
        before = evaluate_splits(trainer, encoded)
        trainer.train()
        after = evaluate_splits(trainer, encoded)

        classifier = merge_lora(trainer.model)
        classifier.config.classification_max_length = max_length  # the model reads no more, whoever calls it
        classifier.save_pretrained(workdir)
        tokenizer.model_max_length = max_length  # what the classifier saw: classify() truncates to it
        tokenizer.save_pretrained(workdir)
        metrics = {
            "labels": labels,
            "examples": {split: len(encoded[split]) for split in SPLIT_NAMES},
            "max_length": max_length,
            "parameters": counts,
            "before": before,
            "after": after,
        }
        write_run_records(workdir, settings, metrics, trainer.state.log_history)
        draw_plots(workdir, metrics, trainer.state.log_history)
    return ClassifierRun(out, metrics)


def classification_model(base: str, labels: list[str], tokenizer, dropout: float | None = None):
    """`base` (a causal-LM or classifier checkpoint of ours, or converted OpenAI weights) with a fresh `score` head
    for `labels`, in float32 for training. Only the head may be new: every other tensor must come from `base`."""
    overrides = {} if dropout is None else dropouts(dropout)
    model = load_pretrained(
        AutoModelForSequenceClassification,
        base,
        may_be_new={SCORE},  # a causal LM has no head to classify with; a classifier's may have another label count
        may_be_dropped={LM_HEAD},  # an untied LM head has no place in a classifier
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        pad_token_id=tokenizer.pad_token_id,
        problem_type="single_label_classification",
        dtype=torch.float32,
        **overrides,
    )
    if len(tokenizer) > model.config.vocab_size:
        raise ValueError(
            f"the tokenizer has {len(tokenizer)} tokens but {base} embeds only {model.config.vocab_size}; "
            "use the tokenizer the checkpoint was trained with"
        )
    return model


def make_trainer(model, tokenizer, encoded, labels, settings: FineTuningSettings, workdir: Path, progress: bool):
    steps_per_epoch = math.ceil(len(encoded["train"]) / settings.batch_size)
    arguments = TrainingArguments(
        output_dir=str(workdir),
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps or -1,  # -1: as many steps as the epochs take
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.eval_batch_size,
        learning_rate=settings.learning_rate,
        weight_decay=settings.weight_decay,
        lr_scheduler_type=settings.lr_scheduler,
        eval_strategy="epoch",
        logging_strategy="steps",
        logging_steps=max(1, steps_per_epoch // LOG_POINTS_PER_EPOCH),
        save_strategy="no",  # the classifier is saved once, at the end
        report_to="none",
        seed=settings.seed,
        dataloader_pin_memory=torch.cuda.is_available(),
        disable_tqdm=not progress,
        **settings.extra,
    )
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=encoded["train"],
        # Evaluating the training split too gives the train/validation accuracy curves of the course.
        eval_dataset={"train": encoded["train"], "validation": encoded["validation"]},
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=ClassificationMetrics(len(labels)),
    )
    if progress:
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(LossOnTheBar())
    else:
        trainer.remove_callback(PrinterCallback)  # without progress bars, Trainer prints every log line instead
    return trainer


class LossOnTheBar(ProgressCallback):
    """Trainer's progress bars, with the latest loss and validation accuracy shown on the training bar: Trainer's
    own writes each log as a raw dict between the bars. The numbers are all in history.json and metrics.json."""

    SHOWN = {"loss": "loss", "eval_validation_accuracy": "val_acc"}  # log key: name on the bar

    def on_train_begin(self, args, state, control, **kwargs):
        super().on_train_begin(args, state, control, **kwargs)
        self.latest = {}  # evaluation logs lack the loss, training logs the accuracy: show the latest of each

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None:
            self.latest.update({name: f"{logs[key]:.4g}" for key, name in self.SHOWN.items() if key in logs})
            self.training_bar.set_postfix(self.latest)


def evaluate_splits(trainer: Trainer, encoded) -> dict[str, dict]:
    """Loss and classification metrics on every split (predict does not log, so the history keeps training only)."""
    results = {}
    for split in SPLIT_NAMES:
        metrics = trainer.predict(encoded[split], metric_key_prefix=split).metrics
        prefix = f"{split}_"
        results[split] = {
            key[len(prefix) :]: value
            for key, value in metrics.items()
            if key.startswith(prefix) and not key.endswith(("runtime", "per_second", "preparation_time"))
        }
    return results


def write_run_records(folder: Path, settings: FineTuningSettings, metrics: dict, history: list[dict]) -> None:
    records = {
        METRICS_FILE: metrics,
        SETTINGS_FILE: asdict(settings),
        HISTORY_FILE: history,
    }
    for name, content in records.items():
        write_atomically(folder / name, json.dumps(content, indent=2) + "\n")
    provenance(settings).write(folder)


def provenance(settings: FineTuningSettings) -> Provenance:
    """Where the classifier comes from."""
    methods = {"nothing": "full fine-tuning", "lora": "lora"}
    dataset = SMS_SPAM_DATASET if settings.data == "sms-spam" else dataset_reference(settings.data)
    return Provenance(
        kind="classifier",
        base_model=settings.base,
        method=methods.get(settings.freeze, f"fine-tuning with frozen weights ({settings.freeze})"),
        datasets=[dataset["name"]],
        eval_dataset=dataset,
    )


def draw_plots(folder: Path, metrics: dict, history: list[dict]) -> None:
    """Loss and accuracy curves (epoch 0 is the model before fine-tuning), and the test confusion matrix."""
    train_size = metrics["examples"]["train"]

    def curve(key: str, phase_zero: float | None):
        points = [(entry["epoch"], entry[key]) for entry in history if key in entry]
        if phase_zero is not None:
            points.insert(0, (0.0, phase_zero))
        return [epoch for epoch, _ in points], [value for _, value in points]

    before = metrics["before"]
    plot_curves(
        {
            "training (running)": curve("loss", None),
            "train": curve("eval_train_loss", before["train"]["loss"]),
            "validation": curve("eval_validation_loss", before["validation"]["loss"]),
        },
        "loss",
        train_size,
        folder / LOSS_PLOT,
    )
    plot_curves(
        {
            "train": curve("eval_train_accuracy", before["train"]["accuracy"]),
            "validation": curve("eval_validation_accuracy", before["validation"]["accuracy"]),
        },
        "accuracy",
        train_size,
        folder / ACCURACY_PLOT,
    )
    plot_confusion_matrix(
        metrics["after"]["test"]["confusion_matrix"], metrics["labels"], folder / CONFUSION_PLOT, "test split"
    )


def accuracy_table(metrics: dict) -> str:
    """The course's table: accuracy on each split before and after fine-tuning."""
    lines = [f"{'split':<12}{'before':>10}{'after':>10}"]
    for split in SPLIT_NAMES:
        before, after = metrics["before"][split]["accuracy"], metrics["after"][split]["accuracy"]
        lines.append(f"{split:<12}{before:>10.2%}{after:>10.2%}")
    return "\n".join(lines)
