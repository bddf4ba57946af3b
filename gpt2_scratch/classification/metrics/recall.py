"""Recall: of the examples of a class, the fraction predicted as that class; an `evaluate` metric that loads
offline. `average` is "binary" (class `pos_label`, default 1), "macro", "micro" or "weighted", as in scikit-learn.
"""

import datasets
import evaluate

from .class_counts import precision_recall_f1


class Recall(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Recall: true positives / actual positives, per class then averaged.",
            citation="",
            inputs_description="predictions, references: class ids. average, pos_label, num_labels: see the module.",
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, average="binary", pos_label=1, num_labels=None):
        _, recall, _ = precision_recall_f1(predictions, references, average, pos_label, num_labels)
        return {"recall": recall}
