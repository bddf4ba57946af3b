"""Our `evaluate` metric modules load offline by path and agree with scikit-learn."""

import evaluate
import numpy as np
import pytest
from sklearn import metrics as sk
from transformers import EvalPrediction

from gpt2_scratch.classification import ClassificationMetrics, metric_path


def random_labels(num_labels, size, seed):
    rng = np.random.default_rng(seed)
    references = rng.integers(0, num_labels, size)
    # Mostly right, sometimes wrong, so that every score lies strictly between 0 and 1.
    predictions = np.where(rng.random(size) < 0.6, references, rng.integers(0, num_labels, size))
    return predictions, references


@pytest.mark.parametrize("num_labels,average", [(2, "binary"), (3, "macro"), (3, "micro"), (4, "weighted")])
def test_modules_loaded_by_path_match_scikit_learn(num_labels, average):
    predictions, references = random_labels(num_labels, 200, seed=num_labels)
    precision, recall, f1, _ = sk.precision_recall_fscore_support(references, predictions, average=average)
    for name, expected in (("precision", precision), ("recall", recall), ("f1", f1)):
        module = evaluate.load(metric_path(name), keep_in_memory=True)
        result = module.compute(predictions=predictions, references=references, average=average)
        assert result[name] == pytest.approx(expected, abs=1e-12), name
    accuracy = evaluate.load(metric_path("accuracy"), keep_in_memory=True)
    assert accuracy.compute(predictions=predictions, references=references)["accuracy"] == pytest.approx(
        sk.accuracy_score(references, predictions)
    )
    matrix = evaluate.load(metric_path("confusion_matrix"), keep_in_memory=True)
    assert matrix.compute(predictions=predictions, references=references, num_labels=num_labels)[
        "confusion_matrix"
    ] == sk.confusion_matrix(references, predictions, labels=range(num_labels)).tolist()


def test_scores_with_nothing_to_count_are_zero_as_in_scikit_learn():
    references, predictions = [0, 0, 2, 2], [0, 0, 0, 2]  # class 1 never occurs nor is predicted
    module = evaluate.load(metric_path("precision"), keep_in_memory=True)
    expected = sk.precision_score(references, predictions, average="macro", labels=[0, 1, 2], zero_division=0)
    result = module.compute(predictions=predictions, references=references, average="macro", num_labels=3)
    assert result["precision"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="needs two classes"):
        module.compute(predictions=predictions, references=references, average="binary")


def test_compute_metrics_for_trainer():
    predictions, references = random_labels(3, 60, seed=0)
    logits = np.eye(3)[predictions] + 0.01  # argmax gives back the predictions
    result = ClassificationMetrics(3)(EvalPrediction(predictions=logits, label_ids=references))
    assert result["accuracy"] == pytest.approx(sk.accuracy_score(references, predictions))
    assert result["f1"] == pytest.approx(sk.f1_score(references, predictions, average="macro"))
    assert result["confusion_matrix"] == sk.confusion_matrix(references, predictions).tolist()
    binary = ClassificationMetrics(2).compute(predictions=[1, 0, 1, 1], references=[1, 0, 0, 1])
    assert binary["precision"] == pytest.approx(2 / 3) and binary["recall"] == 1.0
