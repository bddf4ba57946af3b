"""Classification fine-tuning: GPT-2 as a text classifier (the course's spam/ham, or any labelled texts).

- Data: `load_labelled_texts` (any CSV/JSON/datasets source, checked), `tokenize_splits`; the SMS Spam Collection
  with `read_sms_spam`, `balanced_splits`, `sms_spam_splits`, `write_splits`.
- Model: `classification_model` (a checkpoint with a fresh head), `apply_freezing` (policies in POLICIES).
- Training: `train_classifier` (Trainer, before/after metrics, plots, saved classifier), `ClassificationMetrics`
  (compute_metrics through `evaluate` modules shipped in the package: `load_metric`, `metric_path`).
- Inference: `classify`, `load_classifier`.
"""

from ..lora import merge_lora, parameter_counts
from .data import label_names_of, load_labelled_texts, tokenize_splits
from .freezing import POLICIES, apply_freezing, trainable_parameter_names
from .inference import classify, load_classifier
from .metrics import ClassificationMetrics, load_metric, metric_path
from .sms_spam import balanced_splits, read_sms_spam, sms_spam_splits, write_splits
from .training import (
    ClassifierRun,
    FineTuningSettings,
    accuracy_table,
    classification_model,
    train_classifier,
)

__all__ = [
    "POLICIES",
    "ClassificationMetrics",
    "ClassifierRun",
    "FineTuningSettings",
    "accuracy_table",
    "apply_freezing",
    "balanced_splits",
    "classification_model",
    "classify",
    "label_names_of",
    "load_classifier",
    "load_labelled_texts",
    "load_metric",
    "merge_lora",
    "metric_path",
    "parameter_counts",
    "read_sms_spam",
    "sms_spam_splits",
    "tokenize_splits",
    "train_classifier",
    "trainable_parameter_names",
    "write_splits",
]
