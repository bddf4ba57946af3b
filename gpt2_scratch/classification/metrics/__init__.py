"""Classification metrics as `evaluate` modules shipped inside the package, so they load without the Hub.

`evaluate.load("accuracy")` downloads the module's script from the Hub; `load_metric("accuracy")` loads ours by path
instead. `ClassificationMetrics` is the `compute_metrics` function for transformers' Trainer.
"""

from __future__ import annotations

from pathlib import Path

import evaluate
import numpy as np

METRIC_NAMES = ("accuracy", "precision", "recall", "f1", "confusion_matrix")


def metric_path(name: str) -> str:
    """The path of our `evaluate` module `name` (one of METRIC_NAMES), for `evaluate.load(path)`."""
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}; the package ships {', '.join(METRIC_NAMES)}")
    return str(Path(__file__).with_name(f"{name}.py"))


def load_metric(name: str) -> evaluate.EvaluationModule:
    # keep_in_memory: the predictions are small, and nothing is left behind in evaluate's cache folder.
    return evaluate.load(metric_path(name), keep_in_memory=True)


class ClassificationMetrics:
    """`compute_metrics` for Trainer: accuracy, precision, recall, F1 and the confusion matrix of the predictions.

    With two classes, precision/recall/F1 are those of class 1 (spam in the SMS data: the class one looks for);
    with more, they are macro averages (each class counts the same, however rare).
    """

    def __init__(self, num_labels: int):
        self.num_labels = num_labels
        self.average = "binary" if num_labels == 2 else "macro"
        self.modules = {name: load_metric(name) for name in METRIC_NAMES}

    def __call__(self, eval_prediction) -> dict[str, float | list[list[int]]]:
        logits, references = eval_prediction.predictions, eval_prediction.label_ids
        if isinstance(logits, tuple):  # some models return extra outputs after the logits
            logits = logits[0]
        return self.compute(np.argmax(logits, axis=-1), references)

    def compute(self, predictions, references) -> dict[str, float | list[list[int]]]:
        results = {}
        for name, module in self.modules.items():
            options = {}
            if name in ("precision", "recall", "f1"):
                options = {"average": self.average, "num_labels": self.num_labels}
            elif name == "confusion_matrix":
                options = {"num_labels": self.num_labels}
            results.update(module.compute(predictions=predictions, references=references, **options))
        return results
