"""What a checkpoint directory records about itself, read for its model card: every file is optional.

- config.json            the model's configuration (the only required file)
- *.safetensors          the weights: their headers give the exact parameter count without loading anything
- provenance.json        where the weights come from (schema in docs/hub.md): {"kind", "source", "layout", ...}
- training_args.json     the run's hyperparameters, one flat JSON object
- metrics.json           the results measured at the end of the run: flat ({"test_accuracy": 0.95}) or nested
                         by split ({"test": {"accuracy": 0.95}})
- *.png, *.svg           plots (loss curves, confusion matrix), shown in the card and uploaded beside it; for a
                         training loop's `checkpoint-<step>` folder without plots, those of its run folder
"""

from __future__ import annotations

import json
import math
import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..conversion.containers.safetensors_stream import SafetensorsFile
from ..provenance import Provenance, is_local_path

# The training loop's periodic checkpoints, checkpoint-<step>: the one rule for their names, here because this is
# the lowest layer that reads run folders (a card finds a run's model by it) and the training loop may import it.
CHECKPOINT_FOLDER = re.compile(r"checkpoint-(\d+)")
RECORD_FILES = ("provenance.json", "training_args.json", "metrics.json", "metrics.jsonl")
PLOT_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg")

# The split a result was measured on, named by a key of metrics.json ("val_loss", {"test": {"accuracy": ...}}).
SPLITS = {"train": "train", "training": "train", "val": "validation", "valid": "validation", "validation": "validation",
          "eval": "validation", "test": "test"}
# What counts as a result; other numbers (step, epoch, tokens_per_s, learning_rate, split sizes) are bookkeeping.
RESULT_SUFFIXES = ("loss", "perplexity", "accuracy", "precision", "recall", "f1", "score", "exact_match")
# Results measured on the model before its fine-tuning started: shown as a baseline, not claimed in model-index.
BASELINE = "before"


@dataclass(frozen=True)
class Measurement:
    """One measured result: metric "accuracy" on split "test" = 0.9567; `baseline` when measured before fine-tuning."""

    metric: str
    split: str | None
    value: float
    baseline: bool = False


@dataclass
class CheckpointRecords:
    directory: Path
    config: dict
    parameter_count: int
    provenance: Provenance = field(default_factory=Provenance)
    training_args: dict = field(default_factory=dict)
    measurements: list[Measurement] = field(default_factory=list)
    confusion_matrix: list[list[int]] | None = None  # rows: true label, columns: predicted, on the test split
    plots: list[Path] = field(default_factory=list)  # uploaded beside the card, under their file names
    record_files: list[str] = field(default_factory=list)  # the RECORD_FILES present

    @property
    def kind(self) -> str:
        """provenance.json's "kind"; without one, a classification head makes a classifier, a recorded training run
        a from-scratch pretraining, and anything else a conversion."""
        if self.provenance.kind is not None:
            return self.provenance.kind
        if any("SequenceClassification" in name for name in self.config.get("architectures") or []):
            return "classifier"
        return "pretrained" if self.training_args or self.measurements else "converted"


def model_folder(folder: str | Path) -> Path:
    """The checkpoint a folder stands for: itself when it holds config.json; for a run folder, the final model that
    `instruct` writes (model/), else the newest of the training loop's checkpoint-<step> folders."""
    folder = Path(folder)
    if (folder / "config.json").is_file() or not folder.is_dir():
        return folder
    if (folder / "model" / "config.json").is_file():
        return folder / "model"
    steps = [p for p in checkpoint_folders(folder) if (p / "config.json").is_file()]
    return steps[-1] if steps else folder


def checkpoint_folders(folder: str | Path) -> list[Path]:
    """The training loop's checkpoint-<step> folders in `folder`, oldest first (none when it is no folder)."""
    folder = Path(folder)
    found = [p for p in folder.iterdir() if p.is_dir() and CHECKPOINT_FOLDER.fullmatch(p.name)] if folder.is_dir() else []
    return sorted(found, key=lambda p: int(CHECKPOINT_FOLDER.fullmatch(p.name).group(1)))


def read_records(directory: str | Path) -> CheckpointRecords:
    """Read everything the card needs from a checkpoint directory (or a run folder: see model_folder); only
    config.json is required."""
    directory = model_folder(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory: give the folder a checkpoint was saved into")
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{directory} has no config.json: give a folder written by save_pretrained (a LoRA adapter folder must be "
            "merged into its base model first, with merge_and_unload)"
        )
    metrics = _read_json_object(directory / "metrics.json")
    return CheckpointRecords(
        directory=directory,
        config=_read_json_object(config_path),
        parameter_count=count_parameters(directory),
        provenance=Provenance.read(directory),
        training_args=_read_json_object(directory / "training_args.json"),
        measurements=measurements_from(metrics),
        confusion_matrix=test_confusion_matrix(metrics),
        plots=find_plots(directory),
        record_files=[name for name in RECORD_FILES if (directory / name).is_file()],
    )


def public_name(name: str) -> str:
    """`name` as a public card may show it: a local path by its last component, anything else unchanged."""
    return Path(name).name if is_local_path(name) else name


def find_plots(directory: Path) -> list[Path]:
    """The checkpoint's plots; a loop's `checkpoint-<step>` folder without any gets its run folder's (loss.png...)."""
    for folder in (directory, directory.parent):
        plots = sorted(p for p in folder.iterdir() if p.suffix.lower() in PLOT_SUFFIXES and p.is_file())
        if plots or not CHECKPOINT_FOLDER.fullmatch(directory.name):
            return plots
    return []


def weight_files(directory: Path) -> list[Path]:
    """The safetensors files from_pretrained would load (other .safetensors files left in the folder by earlier saves
    are not among them)."""
    index = directory / "model.safetensors.index.json"
    if (directory / "model.safetensors").is_file() or not index.is_file():  # from_pretrained's order of preference
        files = [directory / "model.safetensors"]
    else:
        files = sorted({directory / name for name in _read_json_object(index).get("weight_map", {}).values()})
    missing = [path.name for path in files if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"{directory} lacks the weights file(s) {', '.join(missing)}: save the model with "
                                "save_pretrained")
    return files


def count_parameters(directory: Path) -> int:
    """Parameters in the weights from_pretrained would load (tied weights are stored, and counted, once)."""
    total = 0
    for path in weight_files(directory):
        weights = SafetensorsFile(path)  # reads and checks the header only
        total += sum(math.prod(weights.shape(name)) for name in weights.names())
    return total


def measurements_from(metrics: dict) -> list[Measurement]:
    """Every result in a metrics object, with the split and metric its keys name. Keys nest ({"after": {"test":
    {"accuracy": 0.96}}}) or join with "_" ("test_accuracy"); a "before" level marks the pre-fine-tuning baseline.
    A result without a split is kept only when it is a score (an LLM judge's "judge_score")."""
    found = []
    for path, value in _leaves(metrics):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            continue
        first, _, rest = path[-1].partition("_")
        if first.lower() in SPLITS and rest:  # "val_loss" is the metric "loss" on the validation split
            path = (*path[:-1], first, rest)
        metric, qualifiers = path[-1], [part.lower() for part in path[:-1]]
        splits = [SPLITS[q] for q in qualifiers if q in SPLITS]
        if not metric.lower().endswith(RESULT_SUFFIXES) or (not splits and not metric.lower().endswith("score")):
            continue
        found.append(Measurement(metric=metric, split=splits[0] if splits else None, value=float(value),
                                 baseline=BASELINE in qualifiers))
    return found


def test_confusion_matrix(metrics: dict) -> list[list[int]] | None:
    """The test split's confusion matrix of the final model ({"after": {"test": {"confusion_matrix": ...}}} or
    {"test": {"confusion_matrix": ...}}), if the run recorded one."""
    final = metrics.get("after", metrics)
    matrix = final.get("test", {}).get("confusion_matrix") if isinstance(final.get("test"), dict) else None
    return matrix if isinstance(matrix, list) and all(isinstance(row, list) for row in matrix) else None


def _leaves(obj: dict, path: tuple[str, ...] = ()):
    for key, value in obj.items():
        if isinstance(value, dict):
            yield from _leaves(value, (*path, str(key)))
        else:
            yield (*path, str(key)), value


def _read_json_object(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}): fix or remove it") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold one JSON object, not a {type(data).__name__}")
    return data
