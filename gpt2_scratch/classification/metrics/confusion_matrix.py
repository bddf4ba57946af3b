"""Confusion matrix: matrix[i][j] counts the examples of true class i predicted as class j; an `evaluate` metric that
loads offline. Pass `num_labels` so that classes absent from a batch still get their row and column.
"""

import datasets
import evaluate

from .class_counts import confusion_matrix


class ConfusionMatrix(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Counts of (true class, predicted class) pairs; rows are true classes, columns predictions.",
            citation="",
            inputs_description="predictions, references: class ids. num_labels: the matrix's size.",
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, num_labels=None):
        return {"confusion_matrix": confusion_matrix(predictions, references, num_labels).tolist()}
