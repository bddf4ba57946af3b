"""Counting shared by the metric modules next to this file: the confusion matrix and per-class precision/recall/F1.

Each metric module imports this file relatively, so `evaluate` copies it along when it loads a module by path.
"""

import numpy as np

AVERAGES = ("binary", "macro", "micro", "weighted")


def confusion_matrix(predictions, references, num_labels=None):
    """Counts[i, j] = how many examples of true class i were predicted as class j (rows true, columns predicted)."""
    predictions = np.asarray(predictions, dtype=np.int64)
    references = np.asarray(references, dtype=np.int64)
    if num_labels is None:
        num_labels = int(max(predictions.max(initial=0), references.max(initial=0))) + 1
    counts = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(counts, (references, predictions), 1)
    return counts


def precision_recall_f1(predictions, references, average="binary", pos_label=1, num_labels=None):
    """Precision, recall and F1 averaged as scikit-learn does; a ratio with nothing to count (0/0) is 0.

    binary: the scores of class `pos_label` only. macro: the plain mean over classes. weighted: the mean weighted by
    each class's number of true examples. micro: computed from the counts summed over classes.
    """
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {', '.join(AVERAGES)}, got {average!r}")
    if average == "binary" and num_labels is None:
        num_labels = max(2, pos_label + 1, len(confusion_matrix(predictions, references)))
    counts = confusion_matrix(predictions, references, num_labels)
    true_positives = np.diag(counts).astype(np.float64)
    predicted = counts.sum(axis=0).astype(np.float64)  # per class: how often it was predicted
    actual = counts.sum(axis=1).astype(np.float64)  # per class: how many examples truly have it
    if average == "micro":
        true_positives, predicted, actual = true_positives.sum(), predicted.sum(), actual.sum()
    precision = _ratio(true_positives, predicted)
    recall = _ratio(true_positives, actual)
    f1 = _ratio(2 * true_positives, predicted + actual)  # = 2PR / (P + R), without dividing twice
    if average == "binary":
        if counts.shape[0] > 2:
            raise ValueError(
                f"average='binary' needs two classes but the data has {counts.shape[0]}; "
                "use average='macro', 'micro' or 'weighted'"
            )
        return float(precision[pos_label]), float(recall[pos_label]), float(f1[pos_label])
    if average == "micro":
        return float(precision), float(recall), float(f1)
    weights = actual if average == "weighted" else None
    return tuple(float(np.average(score, weights=weights)) for score in (precision, recall, f1))


def _ratio(numerator, denominator):
    numerator, denominator = np.asarray(numerator), np.asarray(denominator)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)
