"""Classify texts with a fine-tuned classifier: labels with their probabilities, as the text-classification
pipeline returns them."""

from __future__ import annotations

import os

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from ..conversion.sources import check_readable


def load_classifier(path: str | os.PathLike) -> tuple[PreTrainedModel, object]:
    """The classifier saved in `path` (by train_classifier) and its tokenizer, ready for inference."""
    check_readable(path)
    model = AutoModelForSequenceClassification.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval(), tokenizer


@torch.inference_mode()
def classify(
    texts: str | list[str],
    model: str | os.PathLike | PreTrainedModel,
    tokenizer=None,
    batch_size: int = 32,
    max_length: int | None = None,
) -> list[dict[str, float | str]]:
    """[{"label": ..., "score": probability of that label}] for each text: the most probable label.

    model: a checkpoint folder, or a loaded model together with its `tokenizer`. Texts longer than max_length
    tokens (default: the length the classifier was trained with, at most the model's context) keep their beginning.
    """
    if isinstance(model, (str, os.PathLike)):
        model, tokenizer = load_classifier(model)
    elif tokenizer is None:
        raise ValueError("pass the tokenizer together with a loaded model (or pass a checkpoint folder)")
    texts = [texts] if isinstance(texts, str) else list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"text {i} is {text!r}; give each text some content to classify")
    max_length = max_length or min(tokenizer.model_max_length, model.config.max_position_embeddings)
    results = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            texts[start : start + batch_size], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        ).to(model.device)
        probabilities = model(**batch).logits.float().softmax(-1)
        scores, ids = probabilities.max(-1)
        results += [
            {"label": model.config.id2label[int(i)], "score": float(score)} for i, score in zip(ids, scores)
        ]
    return results
